// Package admin serves bestofn's job platform over HTTP at /admin/v1: files (raw or multipart uploads,
// listing, content, deletion), jobs (submit, list, show, events as JSON or server-sent events, cancel, retry),
// the model registry (register, list, activate: hot swap) and the live A/B report (GET /admin/v1/ab/report). It
// consumes three interfaces it declares: Service (what *jobs.Service does), Activator (loads a registered model
// version and swaps it into the server) and ABReporter (judges the server's A/B log; cmd/bestofn implements
// both over the server and package pipeline). Client is the matching Go client, used by the CLI and the tests.
//
// Every route answers JSON; errors have OpenAI's shape {"error":{"message","type","param","code"}}:
// 400 names the bad parameter (jobs.ParamError, an unknown job type, a malformed body), 401 a missing or wrong
// bearer token, 404 an unknown id, 409 a change the current state forbids (cancelling a finished job, deleting
// a file in use), 413 an upload over the limit, 422 a model version that fails to load (the serving one stays).
//
// # Security
//
// Handler checks "Authorization: Bearer <token>" against Config.Token in constant time on every request. With
// an empty token it does no check: cmd/bestofn only serves it so when it listens on loopback alone and was told
// --admin-insecure-loopback; otherwise, without a token, the admin API is Disabled (404).
package admin
