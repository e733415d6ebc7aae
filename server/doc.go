// Package server puts the engine behind OpenAI- and Ollama-compatible HTTP APIs with A/B routing between
// baseline and best-of-N variants and Prometheus metrics.
//
// The server consumes two interfaces it declares: Generator (what *engine.Engine does, and package remote's
// generator over another inference server) and Template (a chat template; cmd/bestofn adapts package chat's).
// A Generator that applies its own chat template (ChatTemplater: a remote chat endpoint) gets chat requests as
// engine.Request.Messages instead of a rendered prompt. Generators and scorers that forward to a remote backend
// report its state (BackendReporter) on /readyz and as gauges. Handler returns every route in one place:
//
//	POST /v1/chat/completions   OpenAI chat (SSE streaming, n, logprobs; extensions best_of, rerank, return_candidates)
//	POST /v1/completions        OpenAI legacy completion (prompt not templated)
//	GET  /v1/models, /v1/models/{model}
//	POST /api/chat              Ollama chat (NDJSON streaming by default)
//	POST /api/generate          Ollama generate (raw or templated; empty prompt = "load" answer)
//	GET  /api/tags, GET /api/ps, POST /api/show, GET /api/version, HEAD / (heartbeat)
//	GET  /healthz, /readyz (503 after BeginShutdown; lists remote backends' states), /metrics
//	     /admin/...                  Config.Admin when set (package admin's /admin/v1 API)
//
// Middleware: request id (echoed in X-Request-Id), real IP, slog request log, panic recovery; on generation
// routes also a body size limit (413), a body-read deadline (408; the body is read whole before anything else)
// and a per-request deadline (504). A request takes one of Limits.MaxConcurrent generation slots only once it
// is decoded and valid, for the time of its generation (429 with Retry-After when none is free), so a slow
// client holds no slot.
//
// # Models, variants and experiments
//
// A Model is a public name with defaults for the number of candidates (N) and reranking, e.g. "llama-gpt4"
// (N=1, the paper's baseline B) and "llama-gpt4:r1" (N=5 ranked by the reward model, the paper's R1). An
// Experiment is a name that splits traffic between models by weight: the variant is a hash of (experiment,
// sticky key), where the key is the OpenAI "user" field, else the X-Bestofn-User header, else the request id.
// The X-Bestofn-Variant request header forces a variant. The chosen variant is returned in the
// X-Bestofn-Variant header and the body's "variant" field, labels every metric, and is written with the
// prompt, answer and reward scores to the optional JSONL ABLog. A request naming a model directly is labelled
// with the model's name as its variant.
//
// # Hot swap
//
// Swap replaces the generator (with its template and info) or the scorer of served models while the server
// runs. A generation request pins its model's current generator and scorer when it is routed and releases them
// when its handler returns, so requests in flight finish on what they started with; a generator or scorer that
// no served model uses any more is closed (if it implements io.Closer) once its last request is done.
// Model.Scorer, set per request as engine.Request.Scorer, is what makes the reward model swappable apart from
// the engine.
//
// # Options at the edge
//
// Both APIs' options (OpenAI's typed fields, Ollama's options map) are converted once into a typed
// engine.Request and validated against Limits; out-of-range values are 400s naming the field. Unset max tokens
// (and Ollama's num_predict 0, -1 and -2) mean as many as fit: at most Limits.MaxTokens, the room the prompt
// leaves in the context and what the engine's KV budget holds for the request's candidates
// (engine.Request.DefaultMaxTokens). Unset seeds come from a source seeded by Config.Seed.
//
// # Streaming
//
// Without reranking, candidates stream as the engine produces them (choice i is candidate i). With reranking
// the answer is unknown until scoring, so the ranked choices are sent when it is done. Headers are written with
// the first event, so errors before it keep their status; later errors end the stream with an error event. Token
// logprobs of a streamed choice come with its finishing chunk (the engine streams text only).
//
// # Errors
//
// writeError maps every error (decoding, validation, engine.ContextLengthError, engine.ErrQueueFull -> 429,
// engine.ErrClosed -> 503, deadline -> 504, body too large -> 413, *engine.BackendError -> 502 naming the
// backend, anything else -> 500) to OpenAI's
// {"error":{"message","type","param","code"}} on /v1 and Ollama's {"error":"..."} on /api. The internal cause
// is logged with the request id and never sent. A client that disconnects cancels its generation.
//
// # Metrics
//
// NewMetrics registers, in vLLM's naming style: histograms bestofn:e2e_request_latency_seconds,
// bestofn:time_to_first_token_seconds (until the client gets the first answer text: for R1 after ranking, so
// that the A/B comparison is the users'), bestofn:engine_time_to_first_token_seconds (the engine's first
// sampled token), bestofn:request_queue_time_seconds, bestofn:request_prefill_time_seconds,
// bestofn:request_decode_time_seconds, bestofn:reward_scoring_time_seconds,
// bestofn:request_generation_tokens_per_candidate and bestofn:reward_score (labels model, variant and backend,
// ModelInfo.Backend or "local"; latency buckets from 1 ms to 640 s); counters bestofn:requests_total (endpoint, model, variant, status),
// bestofn:prompt_tokens_total, bestofn:generation_tokens_total, bestofn:degraded_reranks_total; gauges
// bestofn:http_requests_in_flight and, per engine (WatchEngine), bestofn:num_requests_waiting,
// bestofn:num_requests_running, bestofn:num_sequences_running, bestofn:kv_cache_blocks_used and
// bestofn:kv_cache_blocks_total, and per remote backend bestofn:backend_up, bestofn:backend_consecutive_failures
// and bestofn:backend_requests_in_flight. deploy/grafana/bestofn-dashboard.json plots them by variant.
package server
