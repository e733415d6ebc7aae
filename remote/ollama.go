package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	ollama "github.com/ollama/ollama/api"

	"github.com/bestofn/bestofn/engine"
)

// ollamaProtocol speaks Ollama's API through ollama/api: streamed /api/chat for chat requests and /api/generate
// with raw set (the prompt is already rendered) for prompts. Ollama has no n: a Generator fans out. ollama/api
// returns nil when a stream breaks off and reports a line that is not JSON as an error holding the line, so
// every response body goes through a lineCheck that records both.
type ollamaProtocol struct {
	client *ollama.Client
	model  string
}

func newOllamaProtocol(cfg Config, hc *http.Client) (*ollamaProtocol, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, &ConfigError{"url", err.Error()}
	}
	hc = &http.Client{Transport: checkLines{base: hc.Transport}}
	return &ollamaProtocol{client: ollama.NewClient(u, hc), model: cfg.Model}, nil
}

func (p *ollamaProtocol) hasN() bool { return false }

// ollamaOptions are the request's sampling options, every one set (Ollama's defaults differ from the
// request's: top_k 40, top_p 0.9, repeat_penalty 1.1).
func ollamaOptions(req *engine.Request, seed uint64) (map[string]any, error) {
	sp := req.Sampling
	if len(sp.LogitBias) > 0 {
		return nil, fmt.Errorf("%w: logit_bias is not supported by Ollama backends", engine.ErrBadRequest)
	}
	rp := sp.RepeatPenalty
	if rp <= 0 {
		rp = 1
	}
	last := sp.RepeatLastN
	if last == 0 {
		last = 64
	}
	opts := map[string]any{
		"temperature": sp.Temperature, "top_p": topP(sp.TopP), "top_k": sp.TopK, "min_p": sp.MinP,
		"repeat_penalty": rp, "repeat_last_n": last, "presence_penalty": sp.PresencePenalty,
		"frequency_penalty": sp.FrequencyPenalty, "seed": seedOf(seed),
	}
	if m := maxTokens(req); m > 0 {
		opts["num_predict"] = m
	}
	if len(req.Stop) > 0 {
		opts["stop"] = req.Stop
	}
	return opts, nil
}

func (p *ollamaProtocol) stream(ctx context.Context, q *query, r *reply, piece func(int, string)) error {
	req := q.req
	opts, err := ollamaOptions(req, q.seed)
	if err != nil {
		return err
	}
	stream := true
	var format json.RawMessage
	if req.Sampling.JSON {
		format = json.RawMessage(`"json"`)
	}
	c := r.choice(0)
	lc := &lineState{}
	ctx = context.WithValue(ctx, lineStateKey{}, lc)
	add := func(text string, lps []ollama.Logprob, m ollama.Metrics, done bool, reason string) {
		if text != "" {
			if r.firstPiece.IsZero() {
				r.firstPiece = time.Now()
			}
			c.text.WriteString(text)
			c.pieces++
			piece(0, text)
		}
		if len(lps) > 0 {
			c.hasLogprobs = true
			for _, lp := range lps {
				t := engine.TokenLogprob{Text: lp.Token, Logprob: float32(lp.Logprob)}
				for _, top := range lp.TopLogprobs {
					t.Top = append(t.Top, engine.TokenLogprob{Text: top.Token, Logprob: float32(top.Logprob)})
				}
				c.logprobs = append(c.logprobs, t)
			}
		}
		if done {
			c.finish = reason
			if c.finish == "" {
				c.finish = "stop"
			}
			r.promptTokens, r.genTokens = m.PromptEvalCount, m.EvalCount
		}
	}
	if req.Messages != nil {
		cr := &ollama.ChatRequest{Model: p.model, Stream: &stream, Options: opts, Logprobs: q.logprobs,
			TopLogprobs: req.TopLogprobs, Format: format}
		for _, m := range req.Messages {
			cr.Messages = append(cr.Messages, ollama.Message{Role: m.Role, Content: m.Content})
		}
		err = p.client.Chat(ctx, cr, func(resp ollama.ChatResponse) error {
			add(resp.Message.Content, resp.Logprobs, resp.Metrics, resp.Done, resp.DoneReason)
			return nil
		})
	} else {
		gr := &ollama.GenerateRequest{Model: p.model, Prompt: promptText(req), Raw: true, Stream: &stream, Options: opts,
			Logprobs: q.logprobs, TopLogprobs: req.TopLogprobs, Format: format}
		err = p.client.Generate(ctx, gr, func(resp ollama.GenerateResponse) error {
			add(resp.Response, resp.Logprobs, resp.Metrics, resp.Done, resp.DoneReason)
			return nil
		})
	}
	return ollamaError(err, lc, c.finish != "")
}

// ollamaError classifies the end of an Ollama stream.
func ollamaError(err error, lc *lineState, done bool) error {
	var se ollama.StatusError
	var ae ollama.AuthorizationError
	bad, readErr := lc.get()
	switch {
	case err == nil && done:
		return nil
	case errors.As(err, &se):
		return httpFailure(se.StatusCode, se.ErrorMessage, err)
	case errors.As(err, &ae):
		return httpFailure(ae.StatusCode, "unauthorized", err)
	case bad != "":
		return malformed("a line is not JSON", fmt.Errorf("%q", truncate(bad, 200)))
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isConnectFailure(err)):
		return err
	case err != nil && readErr == nil:
		return &failure{msg: "the backend failed mid-stream: " + truncate(err.Error(), 300), err: err}
	}
	if readErr == nil {
		readErr = errors.New("no final object")
	}
	return incomplete(readErr)
}

// lineState is what checkLines saw of one response body: its first line that is not JSON, and the read
// error that broke it off, if any.
type lineState struct {
	mu      sync.Mutex
	bad     string
	readErr error
}

func (l *lineState) get() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bad, l.readErr
}

type lineStateKey struct{}

// checkLines wraps each response body whose request context holds a *lineState in a lineCheck.
type checkLines struct{ base http.RoundTripper }

func (t checkLines) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if ls, ok := r.Context().Value(lineStateKey{}).(*lineState); ok && resp.StatusCode < 400 {
		resp.Body = &lineCheck{rc: resp.Body, st: ls}
	}
	return resp, nil
}

// lineCheck passes a body through while checking that each complete line is JSON.
type lineCheck struct {
	rc      io.ReadCloser
	st      *lineState
	partial []byte
}

func (b *lineCheck) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	data := p[:n]
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(b.partial) < 1<<20 {
				b.partial = append(b.partial, data...)
			}
			break
		}
		line := append(b.partial, data[:i]...)
		b.partial = b.partial[:0]
		data = data[i+1:]
		if len(bytes.TrimSpace(line)) > 0 && !json.Valid(line) {
			b.st.mu.Lock()
			if b.st.bad == "" {
				b.st.bad = string(line[:min(len(line), 300)])
			}
			b.st.mu.Unlock()
		}
	}
	if err != nil {
		b.st.mu.Lock()
		if err != io.EOF {
			b.st.readErr = err
		} else if line := bytes.TrimSpace(b.partial); len(line) > 0 && !json.Valid(line) && b.st.bad == "" {
			b.st.bad = string(line[:min(len(line), 300)])
		}
		b.st.mu.Unlock()
	}
	return n, err
}

func (b *lineCheck) Close() error { return b.rc.Close() }
