package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// backend is what generators and scorers share about one remote server: its HTTP client, the cap on requests
// in flight and the circuit breaker.
type backend struct {
	name, kind, api, url, model string
	hc                          *http.Client
	slots                       chan struct{}
	waiting                     atomic.Int64
	maxWaiting                  int64
	br                          breaker
	nSupport                    atomic.Value // string; generators only
}

func newBackend(name, kind, apiName, rawURL, model, key string, maxInFlight, maxWaiting int, connect, header time.Duration, bc BreakerConfig) (*backend, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	if maxInFlight == 0 {
		maxInFlight = 64
	}
	if connect <= 0 {
		connect = 5 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = header
	tr.MaxIdleConnsPerHost = maxInFlight
	tr.Proxy = nil // a backend is addressed directly, never through the environment's proxy
	var rt http.RoundTripper = tr
	if key != "" {
		rt = bearer{base: tr, key: key}
	}
	b := &backend{
		name: name, kind: kind, api: apiName, url: publicURL(u), model: model,
		hc:         &http.Client{Transport: rt},
		slots:      make(chan struct{}, maxInFlight),
		maxWaiting: int64(maxWaiting),
		br:         breaker{cfg: bc.withDefaults()},
	}
	return b, nil
}

// bearer adds the API key to every request that has no Authorization header.
type bearer struct {
	base http.RoundTripper
	key  string
}

func (t bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.key)
	}
	return t.base.RoundTrip(r)
}

// status reports the backend's state for /readyz.
func (b *backend) status() api.BackendStatus {
	st := api.BackendStatus{Name: b.name, Kind: b.kind, API: b.api, URL: b.url, Model: b.model,
		InFlight: len(b.slots), Waiting: int(b.waiting.Load())}
	b.br.fill(&st, time.Now())
	if v, ok := b.nSupport.Load().(string); ok {
		st.NSupport = v
	}
	return st
}

// do runs one request to the backend: it waits for an in-flight slot (the wait is returned as queue time),
// asks the circuit breaker, runs send and records its outcome. Errors are the context's (wrapped), a
// *engine.BackendError, or errors wrapping engine.ErrBadRequest / engine.ErrQueueFull.
func (b *backend) do(ctx context.Context, send func(ctx context.Context) error) (queued time.Duration, err error) {
	if err := b.br.check(time.Now()); err != nil {
		return 0, b.backendError(err)
	}
	start := time.Now()
	if b.maxWaiting > 0 && b.waiting.Load() >= b.maxWaiting {
		return 0, fmt.Errorf("%w: backend %q has %d requests waiting", engine.ErrQueueFull, b.name, b.maxWaiting)
	}
	b.waiting.Add(1)
	select {
	case b.slots <- struct{}{}:
		b.waiting.Add(-1)
	case <-ctx.Done():
		b.waiting.Add(-1)
		return time.Since(start), fmt.Errorf("remote: waiting for a request slot of backend %q: %w", b.name, ctx.Err())
	}
	defer func() { <-b.slots }()
	queued = time.Since(start)
	probe, err := b.br.allow(time.Now())
	if err != nil {
		return queued, b.backendError(err)
	}
	err = send(ctx)
	verdict, reason := judge(ctx, err)
	b.br.record(verdict, probe, reason, time.Now())
	if err == nil {
		return queued, nil
	}
	if ctx.Err() != nil {
		if errors.Is(err, ctx.Err()) {
			return queued, fmt.Errorf("remote: backend %q: %w", b.name, err)
		}
		return queued, fmt.Errorf("remote: backend %q: %w (%v)", b.name, ctx.Err(), err)
	}
	return queued, b.publicError(err)
}

func (b *backend) backendError(err error) error {
	return &engine.BackendError{Backend: b.name, Message: err.Error(), Err: err}
}

// verdict is what one request says about the backend's health.
type verdict int

const (
	healthy verdict = iota // it answered
	failing                // it is down, broken or too slow
	neutral                // the request says nothing about the backend (cancelled by the client, rejected as invalid, 429)
)

// failure is an error of a request to a backend, classified.
type failure struct {
	// status is the HTTP status, 0 when no response came.
	status int
	// msg is what the client may see; err the cause, for logs.
	msg string
	err error
}

func (f *failure) Error() string {
	if f.err != nil && f.err.Error() != f.msg {
		return f.msg + ": " + f.err.Error()
	}
	return f.msg
}

func (f *failure) Unwrap() error { return f.err }

// httpFailure is a failure answered with status; msg is the backend's message (truncated).
func httpFailure(status int, msg string, err error) *failure {
	text := "HTTP " + strconv.Itoa(status)
	if s := http.StatusText(status); s != "" {
		text += " " + s
	}
	if msg = truncate(msg, 300); msg != "" {
		text += ": " + msg
	}
	return &failure{status: status, msg: text, err: err}
}

// malformed is a response that is not the protocol's JSON.
func malformed(what string, err error) *failure {
	return &failure{msg: "malformed response: " + what, err: err}
}

// incomplete is a response cut off before its end.
func incomplete(err error) *failure {
	return &failure{msg: "the connection closed before the response was complete", err: err}
}

// judge classifies the outcome of one request.
func judge(ctx context.Context, err error) (verdict, string) {
	if err == nil {
		return healthy, ""
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return neutral, ""
	}
	if ctx.Err() != nil {
		return failing, "no complete response before the request's deadline"
	}
	var f *failure
	if errors.As(err, &f) && f.status != 0 {
		switch s := f.status; {
		case s == http.StatusTooManyRequests:
			return neutral, ""
		case s == http.StatusRequestTimeout || s >= 500 || s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusNotFound:
			return failing, f.msg
		default:
			return neutral, "" // the backend rejected this request (400, 413, 422, ...): it is alive
		}
	}
	return failing, describe(err)
}

// publicError maps a failed request's error to what the server answers: 4xx rejections of the request become
// engine.ErrBadRequest (400), 429 engine.ErrQueueFull, everything else a *engine.BackendError (502).
func (b *backend) publicError(err error) error {
	var f *failure
	if errors.As(err, &f) && f.status != 0 {
		switch s := f.status; {
		case s == http.StatusTooManyRequests:
			return fmt.Errorf("%w: backend %q answered 429", engine.ErrQueueFull, b.name)
		case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusUnauthorized && s != http.StatusForbidden && s != http.StatusNotFound:
			return fmt.Errorf("%w: backend %q rejected the request: %s", engine.ErrBadRequest, b.name, f.msg)
		}
	}
	if errors.As(err, &f) {
		return &engine.BackendError{Backend: b.name, Message: f.msg, Err: f.err}
	}
	return &engine.BackendError{Backend: b.name, Message: describe(err), Err: err}
}

// describe is a short, client-safe description of a request error.
func describe(err error) string {
	var f *failure
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &f):
		return f.msg
	case errors.As(err, &oe) && oe.Op == "dial":
		return "unreachable (connection failed)"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, &oe):
		return "connection error"
	}
	return "request failed"
}

// isConnectFailure says whether err is a failed connect or a timeout before any response: not a response cut
// off midway.
func isConnectFailure(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial" || errors.As(err, &ne) && ne.Timeout()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// breaker is a consecutive-failure circuit breaker (see BreakerConfig).
type breaker struct {
	cfg BreakerConfig

	mu        sync.Mutex
	state     string // api.BackendClosed, BackendOpen, BackendHalfOpen; "" means closed
	failures  int
	openFor   time.Duration
	retryAt   time.Time
	probing   bool
	lastErr   string
	lastErrAt time.Time
}

var errProbing = errors.New("unavailable: circuit half-open, a probe request is under way")

func (br *breaker) openError(now time.Time) error {
	return fmt.Errorf("unavailable: circuit open after %d consecutive failures (last: %s); next try in %s",
		br.failures, br.lastErr, br.retryAt.Sub(now).Round(100*time.Millisecond))
}

// check fails fast while the circuit is open, before a request queues for a slot.
func (br *breaker) check(now time.Time) error {
	if br.cfg.Failures < 0 {
		return nil
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	if br.state == api.BackendOpen && now.Before(br.retryAt) {
		return br.openError(now)
	}
	return nil
}

// allow says whether a request may go now and whether it is the half-open circuit's probe.
func (br *breaker) allow(now time.Time) (probe bool, err error) {
	if br.cfg.Failures < 0 {
		return false, nil
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	switch br.state {
	case api.BackendOpen:
		if now.Before(br.retryAt) {
			return false, br.openError(now)
		}
		br.state, br.probing = api.BackendHalfOpen, true
		return true, nil
	case api.BackendHalfOpen:
		if br.probing {
			return false, errProbing
		}
		br.probing = true
		return true, nil
	}
	return false, nil
}

// record takes a request's verdict.
func (br *breaker) record(v verdict, probe bool, reason string, now time.Time) {
	if br.cfg.Failures < 0 {
		return
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	if probe {
		br.probing = false
	}
	switch v {
	case healthy:
		br.state, br.failures, br.openFor = api.BackendClosed, 0, 0
	case failing:
		br.failures++
		br.lastErr, br.lastErrAt = reason, now
		switch {
		case br.state == api.BackendHalfOpen && probe:
			br.openFor = min(2*br.openFor, br.cfg.MaxOpenFor)
			br.state, br.retryAt = api.BackendOpen, now.Add(br.openFor)
		case br.state != api.BackendOpen && br.state != api.BackendHalfOpen && br.failures >= br.cfg.Failures:
			br.openFor = br.cfg.OpenFor
			br.state, br.retryAt = api.BackendOpen, now.Add(br.openFor)
		}
	}
}

// fill copies the breaker's state into st.
func (br *breaker) fill(st *api.BackendStatus, now time.Time) {
	br.mu.Lock()
	defer br.mu.Unlock()
	st.State = br.state
	if st.State == "" {
		st.State = api.BackendClosed
	}
	st.ConsecutiveFailures = br.failures
	if br.lastErr != "" {
		t := br.lastErrAt.UTC()
		st.LastError, st.LastErrorAt = br.lastErr, &t
	}
	if br.state == api.BackendOpen {
		t := br.retryAt.UTC()
		st.RetryAt = &t
	}
}
