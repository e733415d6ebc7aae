package teacher

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"time"
)

// Providers of Config.Provider.
const (
	ProviderOpenAI = "openai" // OpenAI-compatible /v1/chat/completions
	ProviderOllama = "ollama" // Ollama /api/chat
)

// Config says which endpoint to use and how hard to push it. It is the JSON the job types take as their
// "teacher" (or "judge") parameter; zero fields take the defaults documented on each.
type Config struct {
	// Provider is ProviderOpenAI (the default) or ProviderOllama.
	Provider string `json:"provider,omitempty"`
	// BaseURL is the endpoint's root: for OpenAI-compatible servers the URL that /chat/completions is appended
	// to (e.g. "https://api.openai.com/v1", "http://127.0.0.1:8080/v1"); for Ollama the server's root
	// ("http://127.0.0.1:11434"). Required.
	BaseURL string `json:"base_url"`
	// Model is the model name sent with every request. Required.
	Model string `json:"model"`
	// APIKeyEnv names the environment variable holding the API key (e.g. "OPENAI_API_KEY"); "" means no key.
	// The key itself is never part of a Config.
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// Concurrency bounds the requests in flight; 0 means 4.
	Concurrency int `json:"concurrency,omitempty"`
	// RequestsPerMinute and TokensPerMinute limit the request rate (token buckets); 0 means unlimited. Tokens
	// are counted before a request as its prompt's length / 4 plus its max_tokens, corrected by the usage the
	// response reports.
	RequestsPerMinute float64 `json:"requests_per_minute,omitempty"`
	TokensPerMinute   float64 `json:"tokens_per_minute,omitempty"`
	// MaxRetries bounds the retries of one request after transient errors (connection errors, timeouts, 408,
	// 409, 5xx); 0 means 5, negative means none. 429s do not count: they are waited out.
	MaxRetries int `json:"max_retries,omitempty"`
	// TimeoutSeconds bounds each attempt; 0 means 300.
	TimeoutSeconds float64 `json:"timeout_s,omitempty"`
	// MaxBackoffSeconds caps the backoff between retries; 0 means 30.
	MaxBackoffSeconds float64 `json:"max_backoff_s,omitempty"`
	// PauseAfterSeconds: a 429 whose Retry-After is longer than this, or the third 429 in a row, pauses the
	// whole client until the wait is over (an event is emitted when it pauses and when it resumes); 0 means 30.
	PauseAfterSeconds float64 `json:"pause_after_s,omitempty"`
	// PromptPricePer1K and CompletionPricePer1K estimate the cost (in any currency) per 1000 prompt and
	// completion tokens; 0 means no estimate.
	PromptPricePer1K     float64 `json:"prompt_price_per_1k,omitempty"`
	CompletionPricePer1K float64 `json:"completion_price_per_1k,omitempty"`
	// Seed seeds the backoff jitter.
	Seed uint64 `json:"seed,omitempty"`
}

// ConfigError names a bad Config field (its JSON name).
type ConfigError struct {
	Field   string
	Message string
}

func (e *ConfigError) Error() string { return "teacher: " + e.Field + ": " + e.Message }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the fields without any I/O (it does not read the API key's variable).
func (c Config) Validate() error {
	switch c.Provider {
	case "", ProviderOpenAI, ProviderOllama:
	default:
		return &ConfigError{"provider", fmt.Sprintf("must be %q or %q, not %q", ProviderOpenAI, ProviderOllama, c.Provider)}
	}
	if c.BaseURL == "" {
		return &ConfigError{"base_url", "is required"}
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &ConfigError{"base_url", fmt.Sprintf("must be an http(s) URL, not %q", c.BaseURL)}
	}
	if c.Model == "" {
		return &ConfigError{"model", "is required"}
	}
	if c.APIKeyEnv != "" && !envName.MatchString(c.APIKeyEnv) {
		return &ConfigError{"api_key_env", "must name an environment variable (letters, digits, _), not hold a key"}
	}
	if c.Concurrency < 0 || c.Concurrency > 1024 {
		return &ConfigError{"concurrency", "must be in [0, 1024]"}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"requests_per_minute", c.RequestsPerMinute}, {"tokens_per_minute", c.TokensPerMinute},
		{"timeout_s", c.TimeoutSeconds}, {"max_backoff_s", c.MaxBackoffSeconds}, {"pause_after_s", c.PauseAfterSeconds},
		{"prompt_price_per_1k", c.PromptPricePer1K}, {"completion_price_per_1k", c.CompletionPricePer1K},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return &ConfigError{f.name, "must be a finite number >= 0"}
		}
	}
	return nil
}

func (c Config) provider() string {
	if c.Provider == "" {
		return ProviderOpenAI
	}
	return c.Provider
}

func (c Config) concurrency() int {
	if c.Concurrency == 0 {
		return 4
	}
	return c.Concurrency
}

func (c Config) maxRetries() int {
	switch {
	case c.MaxRetries == 0:
		return 5
	case c.MaxRetries < 0:
		return 0
	}
	return c.MaxRetries
}

func seconds(v, def float64) time.Duration {
	if v == 0 {
		v = def
	}
	return time.Duration(v * float64(time.Second))
}

func (c Config) timeout() time.Duration    { return seconds(c.TimeoutSeconds, 300) }
func (c Config) maxBackoff() time.Duration { return seconds(c.MaxBackoffSeconds, 30) }
func (c Config) pauseAfter() time.Duration { return seconds(c.PauseAfterSeconds, 30) }
