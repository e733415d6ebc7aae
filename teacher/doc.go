// Package teacher is the client of a strong model behind an OpenAI-compatible or Ollama endpoint, used as the
// paper's teacher (it writes answers), rater (it scores answers 1-10) and judge (it compares systems).
//
// A Client sends chat requests through github.com/openai/openai-go (Provider "openai": hosted APIs, vLLM,
// llama.cpp's server, bestofn itself) or github.com/ollama/ollama/api (Provider "ollama"), and adds what a long
// offline job needs around them:
//
//   - the API key comes from an environment variable named in Config.APIKeyEnv, read once by New and kept only
//     inside the Client, never in a Config, an error or an event;
//   - at most Config.Concurrency requests in flight, and requests-per-minute and tokens-per-minute limits
//     (token buckets of golang.org/x/time/rate);
//   - retries of connection errors, timeouts, 408, 409 and 5xx with capped exponential backoff and jitter from
//     a seeded source, honouring Retry-After; 429s are retried without limit: a short Retry-After is waited
//     out, a long one (beyond Config.PauseAfterSeconds) or repeated 429s pause the whole client (every request
//     waits; an event says so) instead of failing the job;
//   - a timeout per attempt;
//   - token usage and an optional cost estimate per client (Stats), and on every Response the raw response
//     body next to the parsed text.
//
// Errors that reach the caller are *Error values classified by Kind (rate limited, transient, permanent), or
// the context's error when the caller's context ended.
package teacher
