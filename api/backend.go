package api

import "time"

// Circuit breaker states of a BackendStatus.
const (
	// BackendClosed: requests go through (the backend is healthy, or has failed fewer times in a row than the
	// breaker's threshold).
	BackendClosed = "closed"
	// BackendOpen: the backend failed too often in a row; requests fail at once (502) until RetryAt.
	BackendOpen = "open"
	// BackendHalfOpen: the open period is over and one probe request is let through; its outcome closes or
	// re-opens the circuit.
	BackendHalfOpen = "half_open"
)

// BackendStatus is the state of one remote backend bestofn forwards to (a generator or a reward model), as
// GET /readyz lists it under "backends".
type BackendStatus struct {
	// Name is the backend's configured name (the "backend" label of metrics).
	Name string `json:"name"`
	// Kind is "generator" or "scorer".
	Kind string `json:"kind"`
	// API is the protocol spoken: "openai", "ollama", "vllm-classify", "vllm-pooling", "tei", "openrlhf".
	API string `json:"api"`
	// URL is the backend's base URL, without credentials.
	URL string `json:"url"`
	// Model is the model name sent to the backend, when it takes one.
	Model string `json:"model,omitempty"`
	// State is BackendClosed, BackendOpen or BackendHalfOpen.
	State string `json:"state"`
	// ConsecutiveFailures counts failed requests since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastError is the last failure's reason and LastErrorAt its time; absent before any failure.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// RetryAt is when an open circuit lets a probe through.
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// InFlight counts requests being sent to the backend now; Waiting those queued for an in-flight slot.
	InFlight int `json:"in_flight"`
	Waiting  int `json:"waiting"`
	// NSupport says how a generator gets N candidates: "native" (one request with n), "fanout" (N requests
	// with seeds seed+i) or "unknown" (n is tried first; fewer choices than asked switch it to fanout).
	NSupport string `json:"n_support,omitempty"`
}
