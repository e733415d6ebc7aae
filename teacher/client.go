package teacher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Message is one chat turn; Role is "system", "user" or "assistant".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// User is a one-message conversation.
func User(content string) []Message { return []Message{{Role: "user", Content: content}} }

// Options are the sampling options of one request; nil and zero fields are left to the endpoint.
type Options struct {
	Temperature *float64
	TopP        *float64
	// MaxTokens bounds the completion; 0 leaves it to the endpoint.
	MaxTokens int
	// Seed asks for reproducible sampling where the endpoint supports it.
	Seed *int64
	Stop []string
	// N asks for N choices (OpenAI only); 0 means 1.
	N int
	// Extra holds additional top-level body fields (OpenAI only), e.g. bestofn's "best_of",
	// "return_candidates" and "rerank".
	Extra map[string]any
}

// Usage counts the tokens of one response.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Response is a successful answer.
type Response struct {
	// Text is the first choice's content; Choices holds every choice's content (Text is Choices[0]).
	Text    string
	Choices []string
	// FinishReason is the first choice's ("stop", "length", ...).
	FinishReason string
	// Model is the model name the endpoint reported.
	Model string
	Usage Usage
	// Raw is the response body exactly as received.
	Raw json.RawMessage
	// Attempts is the number of requests sent for this answer (1 without retries).
	Attempts int
	// Latency is the time of the successful attempt.
	Latency time.Duration
}

// Stats are a client's totals since New.
type Stats struct {
	// Requests counts requests sent (every attempt); Succeeded and Failed count Chat calls.
	Requests  int64 `json:"requests"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	// Retries counts attempts after transient errors; RateLimited counts 429 answers.
	Retries     int64 `json:"retries"`
	RateLimited int64 `json:"rate_limited"`
	// Pauses counts pauses of the whole client after long or repeated 429s; PausedSeconds their total length.
	Pauses        int64   `json:"pauses"`
	PausedSeconds float64 `json:"paused_s"`
	// PromptTokens and CompletionTokens are the usage of successful responses.
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// Cost is the estimate from the Config's prices (0 without prices).
	Cost float64 `json:"cost"`
}

// EventFunc receives what the client wants a job's log to show: pauses, resumptions and retries. level is
// "info" or "warn".
type EventFunc func(level, msg string, data map[string]any)

// Option configures a Client.
type Option func(*Client)

// WithEvents sends the client's events to fn.
func WithEvents(fn EventFunc) Option { return func(c *Client) { c.events = fn } }

// WithHTTPClient sets the HTTP client whose transport requests go through (default: a clone of
// http.DefaultTransport). Its Timeout is ignored: Config.TimeoutSeconds bounds each attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil && hc.Transport != nil {
			c.baseTransport = hc.Transport
		}
	}
}

// Client sends chat requests to one endpoint. It is safe for concurrent use; make one per job so that its
// limits and Stats are the job's.
type Client struct {
	cfg           Config
	backend       backend
	baseTransport http.RoundTripper
	events        EventFunc
	sem           chan struct{}
	reqLimit      *rate.Limiter // nil: unlimited
	tokLimit      *rate.Limiter // nil: unlimited

	mu           sync.Mutex
	rng          *rand.Rand
	pausedUntil  time.Time
	consecutive  int // 429s in a row, over all requests
	stats        Stats
	pauseStarted time.Time
}

// backend sends one attempt.
type backend interface {
	send(ctx context.Context, msgs []Message, opts Options) (*Response, error)
}

// New checks cfg, reads the API key from the environment variable it names and builds a client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := ""
	if cfg.APIKeyEnv != "" {
		var ok bool
		if key, ok = os.LookupEnv(cfg.APIKeyEnv); !ok || key == "" {
			return nil, &ConfigError{"api_key_env", fmt.Sprintf("environment variable %s is not set", cfg.APIKeyEnv)}
		}
	}
	c := &Client{
		cfg:           cfg,
		baseTransport: http.DefaultTransport.(*http.Transport).Clone(),
		sem:           make(chan struct{}, cfg.concurrency()),
		rng:           rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	for _, o := range opts {
		o(c)
	}
	if cfg.RequestsPerMinute > 0 {
		c.reqLimit = rate.NewLimiter(rate.Limit(cfg.RequestsPerMinute/60), max(1, int(cfg.RequestsPerMinute/60)))
	}
	if cfg.TokensPerMinute > 0 {
		c.tokLimit = rate.NewLimiter(rate.Limit(cfg.TokensPerMinute/60), max(1, int(cfg.TokensPerMinute)))
	}
	switch cfg.provider() {
	case ProviderOllama:
		b, err := newOllama(cfg, &http.Client{Transport: &transport{base: c.baseTransport, bearerKey: key}})
		if err != nil {
			return nil, err
		}
		c.backend = b
	default:
		c.backend = newOpenAI(cfg, key, &http.Client{Transport: &transport{base: c.baseTransport}})
	}
	return c, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Stats returns the totals so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if !c.pauseStarted.IsZero() {
		s.PausedSeconds += time.Since(c.pauseStarted).Seconds()
	}
	return s
}

// Cost estimates the cost of usage u from the Config's prices.
func (c *Client) Cost(u Usage) float64 {
	return float64(u.PromptTokens)/1000*c.cfg.PromptPricePer1K + float64(u.CompletionTokens)/1000*c.cfg.CompletionPricePer1K
}

func (c *Client) emit(level, msg string, data map[string]any) {
	if c.events != nil {
		c.events(level, msg, data)
	}
}

// Chat sends msgs and returns the answer, retrying as the Config says. It returns ctx's error when ctx ends
// first, an *Error of KindPermanent at once, or an *Error of KindTransient when the retries are spent; 429s
// never end it (they wait, pausing the client when long).
func (c *Client) Chat(ctx context.Context, msgs []Message, opts Options) (*Response, error) {
	if len(msgs) == 0 {
		return nil, &Error{Kind: KindPermanent, Message: "no messages"}
	}
	estimate := estimateTokens(msgs, opts)
	retries := 0
	for attempt := 1; ; attempt++ {
		if err := c.waitTurn(ctx, estimate); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.stats.Requests++
		c.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, c.cfg.timeout())
		start := time.Now()
		resp, err := c.backend.send(actx, msgs, opts)
		cancel()
		<-c.sem
		if err == nil {
			resp.Attempts = attempt
			resp.Latency = time.Since(start)
			c.succeeded(resp, estimate)
			return resp, nil
		}
		if ctx.Err() != nil {
			c.failed()
			return nil, ctx.Err()
		}
		var e *Error
		if !errors.As(err, &e) {
			e = classify(err, nil)
		}
		e.Attempts = attempt
		switch e.Kind {
		case KindPermanent:
			c.failed()
			return nil, e
		case KindRateLimited:
			if err := c.rateLimited(ctx, e); err != nil {
				c.failed()
				return nil, err
			}
		case KindTransient:
			if retries >= c.cfg.maxRetries() {
				c.failed()
				return nil, e
			}
			c.mu.Lock()
			c.stats.Retries++
			c.mu.Unlock()
			wait := max(e.RetryAfter, c.backoff(retries))
			retries++
			c.emit("warn", "teacher: retrying after a transient error", map[string]any{
				"attempt": attempt, "status": e.StatusCode, "error": e.Message, "wait_s": wait.Seconds()})
			if err := sleep(ctx, wait); err != nil {
				c.failed()
				return nil, err
			}
		}
	}
}

// waitTurn waits for a pause to end, for the rate limits and for a concurrency slot (which the caller then
// holds).
func (c *Client) waitTurn(ctx context.Context, tokens int) error {
	for {
		c.mu.Lock()
		until := c.pausedUntil
		c.mu.Unlock()
		if d := time.Until(until); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue
		}
		break
	}
	if c.reqLimit != nil {
		if err := c.reqLimit.Wait(ctx); err != nil {
			return ctxErr(ctx, err)
		}
	}
	if c.tokLimit != nil {
		if err := c.tokLimit.WaitN(ctx, min(tokens, c.tokLimit.Burst())); err != nil {
			return ctxErr(ctx, err)
		}
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ctxErr prefers the context's error to the limiter's "would exceed context deadline".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("teacher: rate limit: %w", err)
}

// rateLimited handles a 429: a short wait is slept; a long or repeated one pauses every request of the client.
func (c *Client) rateLimited(ctx context.Context, e *Error) error {
	c.mu.Lock()
	c.stats.RateLimited++
	c.consecutive++
	n := c.consecutive
	wait := e.RetryAfter
	if wait <= 0 {
		wait = c.backoffLocked(n - 1)
	}
	pause := wait > c.cfg.pauseAfter() || n >= 3
	started := false
	if pause {
		until := time.Now().Add(wait)
		if until.After(c.pausedUntil) {
			if c.pausedUntil.Before(time.Now()) {
				c.stats.Pauses++
				c.pauseStarted = time.Now()
				started = true
			}
			c.pausedUntil = until
		}
	}
	c.mu.Unlock()
	if started {
		c.emit("warn", "teacher: rate limited; paused until the endpoint accepts requests again", map[string]any{
			"status": e.StatusCode, "retry_after_s": e.RetryAfter.Seconds(), "pause_s": wait.Seconds(), "consecutive_429": n})
	}
	if !pause {
		return sleep(ctx, wait)
	}
	// waitTurn sleeps out the pause; the first request through it reports the resumption (see succeeded).
	return nil
}

func (c *Client) succeeded(resp *Response, estimate int) {
	c.mu.Lock()
	c.consecutive = 0
	resumed := !c.pauseStarted.IsZero()
	var paused time.Duration
	if resumed {
		paused = time.Since(c.pauseStarted)
		c.stats.PausedSeconds += paused.Seconds()
		c.pauseStarted = time.Time{}
	}
	c.stats.Succeeded++
	c.stats.PromptTokens += resp.Usage.PromptTokens
	c.stats.CompletionTokens += resp.Usage.CompletionTokens
	c.stats.Cost += c.Cost(resp.Usage)
	c.mu.Unlock()
	if c.tokLimit != nil {
		if extra := int(resp.Usage.PromptTokens+resp.Usage.CompletionTokens) - estimate; extra > 0 {
			c.tokLimit.ReserveN(time.Now(), min(extra, c.tokLimit.Burst())) // charge the difference to later requests
		}
	}
	if resumed {
		c.emit("info", "teacher: resumed after a rate-limit pause", map[string]any{"paused_s": paused.Seconds()})
	}
}

func (c *Client) failed() {
	c.mu.Lock()
	c.stats.Failed++
	c.mu.Unlock()
}

// backoff is the wait before retry k (0-based): full jitter over [d/2, d] with d = 0.5 s * 2^k, capped.
func (c *Client) backoff(k int) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backoffLocked(k)
}

func (c *Client) backoffLocked(k int) time.Duration {
	d := c.cfg.maxBackoff()
	if k < 30 {
		d = min(d, 500*time.Millisecond<<k)
	}
	return d/2 + time.Duration(c.rng.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// estimateTokens is the tokens a request is charged before its usage is known: 4 characters per token of the
// conversation, plus what it may generate.
func estimateTokens(msgs []Message, opts Options) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Content)/4 + 4
	}
	gen := opts.MaxTokens
	if gen == 0 {
		gen = 256
	}
	return n + gen*max(1, opts.N)
}

// Concurrency is the number of requests the client lets run at once (Config.Concurrency or its default): the
// number of workers worth running against it.
func (c *Client) Concurrency() int { return cap(c.sem) }
