// Package api holds the wire types of the OpenAI-compatible HTTP API and its bestofn extensions. It imports only
// the standard library.
package api
