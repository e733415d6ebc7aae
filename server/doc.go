// Package server puts the engine behind OpenAI- and Ollama-compatible HTTP APIs with A/B routing between
// baseline and best-of-N variants and Prometheus metrics.
package server
