// Package remote makes bestofn a reranking gateway in front of other inference servers: a Generator that
// samples candidates on a remote OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp's server, TGI's Messages
// API, another bestofn) through github.com/openai/openai-go, or on Ollama through github.com/ollama/ollama/api,
// and a Scorer that scores them with a reward model served remotely (vLLM /classify or /pooling, TEI
// /predict, OpenRLHF /get_reward).
//
// # Candidates
//
// A best-of-N request asks the backend once with n and seed where the backend honours n (candidate i is
// then seeded seed+i, as vLLM seeds its child requests and bestofn its candidates), and otherwise sends N
// requests of one choice seeded seed+i. With Config.NSupport "auto" (the default) the first request with
// n > 1 tells: a backend that returns fewer choices than asked (llama.cpp builds before late 2025 drop n)
// is fanned out from then on; Ollama has no n and is always fanned out. Every sampling parameter of the
// request is sent explicitly (the backend's defaults do not leak in): temperature, top_p, seed, max_tokens,
// stop, penalties, and top_k, min_p, repetition/repeat_penalty as the engines that accept them spell them.
// Seeds are sent modulo 2^53, the integers every JSON parser reads exactly (llama.cpp keeps 32 bits of them).
//
// Chat requests (engine.Request.Messages, which the server fills for a generator that reports
// AppliesChatTemplate) go to the backend's chat endpoint, so the backend applies its model's own template;
// prompts go to its completions endpoint (Ollama: /api/generate with raw). The reward model judges the same
// (prompt, answer) pairs as with the local engine: the request's RewardText and each answer without its
// leading white space, ranked by engine.Rank.
//
// Streaming follows the engine's contract: with N == 1 (the paper's B) or StreamCandidates, text reaches
// Request.OnEvent as the backend streams it; a reranked best-of-N answer (R1) is sent once ranked.
//
// # Faults
//
// Requests in flight to one backend are capped (Config.MaxInFlight); the wait for a slot is the request's
// queue time, and the time from dispatch to the first streamed text its time to first token, as seen by
// bestofn (engine.Timings). A backend that is down, answers 5xx, 401/403/404, malformed JSON or cuts a
// response off fails the request with a *engine.BackendError (the server answers 502 naming the backend and
// logs the cause); a backend 4xx that rejects the request (400, 413, 422) is engine.ErrBadRequest (400), a
// 429 engine.ErrQueueFull (429); the request's own deadline ends a slow backend's request (504). When some
// of N fanned-out candidates fail, the others are ranked and the result is Degraded with the reason. A
// circuit breaker per backend (BreakerConfig) fails requests at once after consecutive failures, so a dead
// backend does not hold every request until its deadline; half-open, it lets one probe through.
// BackendStatus reports the breaker's state for /readyz and the bestofn:backend_* gauges.
//
// A Scorer failure (backend down, an open circuit, a malformed answer) is the scorer's error: the request is
// answered with its first sample and marked degraded, as when a local reward model fails.
package remote
