package remote

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/bestofn/bestofn/engine"
)

// APIs a Generator speaks.
const (
	APIOpenAI = "openai" // OpenAI-compatible: /chat/completions and /completions under the base URL (vLLM, SGLang, llama.cpp, TGI, bestofn)
	APIOllama = "ollama" // Ollama: /api/chat and /api/generate under the server's root
)

// How a Generator gets N candidates (Config.NSupport).
const (
	// NAuto asks once with n and seed; a backend that returns fewer choices than asked ignores n (Ollama has
	// none, llama.cpp's server before late 2025 drops it) and is switched to NFanout for good, one that
	// returns them all to NNative.
	NAuto = "auto"
	// NNative always asks once with n (vLLM, SGLang, bestofn: candidate i is seeded seed+i).
	NNative = "native"
	// NFanout sends N requests of one choice each, seeded seed+i.
	NFanout = "fanout"
)

// Config configures a Generator. Zero fields take the defaults documented on each.
type Config struct {
	// Name names the backend in metrics (label backend), errors ("backend NAME: ...") and /readyz. Required.
	Name string
	// API is APIOpenAI (the default) or APIOllama.
	API string
	// URL is the backend's base URL: for APIOpenAI the URL that /chat/completions is appended to (e.g.
	// "http://vllm:8000/v1"); for APIOllama the server's root ("http://ollama:11434"). Required.
	URL string
	// Model is the model name sent to the backend. Required.
	Model string
	// APIKeyEnv names the environment variable holding the backend's API key (sent as a bearer token); ""
	// means none. The key is read once by New.
	APIKeyEnv string
	// NSupport is NAuto (the default), NNative or NFanout; APIOllama always fans out.
	NSupport string
	// MaxN bounds Request.N; 0 means engine.DefaultMaxN.
	MaxN int
	// MaxInFlight caps the HTTP requests in flight to the backend (a fanned-out request holds N); more wait
	// for a slot, and that wait is the request's queue time. 0 means 64.
	MaxInFlight int
	// MaxWaiting bounds the requests waiting for a slot; beyond it Generate fails with engine.ErrQueueFull
	// (429). 0 means no bound (the request deadline bounds the wait).
	MaxWaiting int
	// ConnectTimeout bounds each TCP connect; 0 means 5 s.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers of each request (streaming backends send them
	// at once, Ollama after loading the model); 0 means none beyond the request's deadline.
	HeaderTimeout time.Duration
	// Breaker opens the circuit after consecutive failures (see BreakerConfig).
	Breaker BreakerConfig
	// Scorer ranks reranked requests that carry no Scorer of their own (engine.Request.Scorer); nil means
	// such requests are answered unranked and Degraded.
	Scorer engine.Scorer
	// ScoreTimeout bounds the Scorer call; 0 means engine.DefaultScoreTimeout.
	ScoreTimeout time.Duration
	// Logger receives what the generator notices (a backend that ignores n, failed candidates); nil means
	// slog.Default().
	Logger *slog.Logger
}

// BreakerConfig tunes a backend's circuit breaker: after Failures requests in a row fail (connection errors,
// timeouts, 5xx, 401/403/404, malformed or cut-off responses; not the client's cancellations, 4xx that reject
// the request, or 429), requests fail at once with a BackendError for OpenFor; then one probe request goes
// through: success closes the circuit, failure re-opens it for twice as long (at most MaxOpenFor).
type BreakerConfig struct {
	// Failures opens the circuit; 0 means 5, negative disables the breaker.
	Failures int
	// OpenFor is the first open period; 0 means 5 s.
	OpenFor time.Duration
	// MaxOpenFor caps the doubled open periods; 0 means 1 minute.
	MaxOpenFor time.Duration
}

func (b BreakerConfig) withDefaults() BreakerConfig {
	if b.Failures == 0 {
		b.Failures = 5
	}
	if b.OpenFor <= 0 {
		b.OpenFor = 5 * time.Second
	}
	if b.MaxOpenFor <= 0 {
		b.MaxOpenFor = time.Minute
	}
	if b.MaxOpenFor < b.OpenFor {
		b.MaxOpenFor = b.OpenFor
	}
	return b
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ConfigError names a bad configuration field.
type ConfigError struct {
	Field   string
	Message string
}

func (e *ConfigError) Error() string { return "remote: " + e.Field + ": " + e.Message }

// checkURL validates a backend base URL.
func checkURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, &ConfigError{"url", "is required"}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{"url", fmt.Sprintf("must be an http(s) URL, not %q", raw)}
	}
	return u, nil
}

// publicURL is u without credentials, query or fragment, for status pages.
func publicURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}

// readKey reads the API key from the environment variable env names ("" for none).
func readKey(env string) (string, error) {
	if env == "" {
		return "", nil
	}
	if !envName.MatchString(env) {
		return "", &ConfigError{"api_key_env", "must name an environment variable (letters, digits, _), not hold a key"}
	}
	key, ok := os.LookupEnv(env)
	if !ok || key == "" {
		return "", &ConfigError{"api_key_env", "environment variable " + env + " is not set"}
	}
	return key, nil
}

func (c Config) validate() error {
	if c.Name == "" {
		return &ConfigError{"name", "is required"}
	}
	switch c.API {
	case "", APIOpenAI, APIOllama:
	default:
		return &ConfigError{"api", fmt.Sprintf("must be %q or %q, not %q", APIOpenAI, APIOllama, c.API)}
	}
	if _, err := checkURL(c.URL); err != nil {
		return err
	}
	if c.Model == "" {
		return &ConfigError{"model", "is required"}
	}
	switch c.NSupport {
	case "", NAuto, NNative, NFanout:
	default:
		return &ConfigError{"n_support", fmt.Sprintf("must be %q, %q or %q, not %q", NAuto, NNative, NFanout, c.NSupport)}
	}
	if c.MaxN < 0 || c.MaxInFlight < 0 || c.MaxWaiting < 0 {
		return &ConfigError{"max_n", "max_n, max_in_flight and max_waiting must be >= 0"}
	}
	return nil
}
