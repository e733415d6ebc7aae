package teacher

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
)

// capture records what came back for one attempt: status, headers and the body as read by the client library,
// so the raw response can be kept beside the parsed fields (and a Retry-After read where the library hides
// headers, as ollama/api does).
type capture struct {
	mu      sync.Mutex
	status  int
	header  http.Header
	body    bytes.Buffer
	readErr error
}

type captureKey struct{}

func withCapture(ctx context.Context, c *capture) context.Context {
	return context.WithValue(ctx, captureKey{}, c)
}

// transport wraps the base RoundTripper: it adds the bearer key for Ollama (openai-go sets its own) and tees
// each response into the request's capture.
type transport struct {
	base      http.RoundTripper
	bearerKey string // "" for none
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.bearerKey != "" && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+t.bearerKey)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if c, ok := req.Context().Value(captureKey{}).(*capture); ok {
		c.mu.Lock()
		c.status = resp.StatusCode
		c.header = resp.Header.Clone()
		c.body.Reset()
		c.readErr = nil
		c.mu.Unlock()
		resp.Body = &teeBody{rc: resp.Body, c: c}
	}
	return resp, nil
}

type teeBody struct {
	rc io.ReadCloser
	c  *capture
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.c.mu.Lock()
	b.c.body.Write(p[:n])
	if err != nil && err != io.EOF {
		b.c.readErr = err
	}
	b.c.mu.Unlock()
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }
