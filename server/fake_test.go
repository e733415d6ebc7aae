package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/engine"
)

// fakeGen is a Generator whose candidate i is a few words derived from the prompt and seed+i, streamed word by
// word; its "reward" prefers longer candidates. It can fail, block until cancelled, or panic.
type fakeGen struct {
	mu         sync.Mutex
	reqs       []engine.Request
	err        error         // returned by Generate
	block      bool          // wait for ctx.Done()
	panicMsg   string        // panic with this
	started    chan struct{} // closed-on-first-call signal, when not nil
	release    chan struct{} // when not nil, wait on it before answering
	cancelled  chan error    // receives ctx.Err() when a blocked call ends
	degrade    bool
	lead       string        // prepended to every candidate's text (e.g. the space a SentencePiece continuation starts with)
	scoreDelay time.Duration // how long reranking takes
}

func (f *fakeGen) last() engine.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeGen) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// fakeText is candidate i's text: 1 + (seed+i)%4 words.
func fakeText(prompt string, seed uint64, i int) string {
	words := []string{"once", "upon", "a", "time"}
	n := 1 + int((seed+uint64(i))%4)
	out := make([]string, n)
	for k := range out {
		out[k] = fmt.Sprintf("%s%d", words[k], i)
	}
	return strings.Join(out, " ")
}

func (f *fakeGen) Generate(ctx context.Context, req engine.Request) (*engine.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	started, release := f.started, f.release
	f.started = nil
	f.mu.Unlock()
	if started != nil {
		close(started)
	}
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	if f.block {
		<-ctx.Done()
		if f.cancelled != nil {
			f.cancelled <- ctx.Err()
		}
		return nil, ctx.Err()
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	n := max(req.N, 1)
	live := req.OnEvent != nil && (n == 1 || req.StreamCandidates) // the engine's streaming contract
	res := &engine.Result{PromptTokens: len(strings.Fields(req.Prompt)) + 1,
		Timings: engine.Timings{Queue: time.Millisecond, Prefill: 2 * time.Millisecond, Decode: 3 * time.Millisecond,
			FirstToken: 2 * time.Millisecond}}
	for i := 0; i < n; i++ {
		text := fakeText(req.Prompt, req.Sampling.Seed, i)
		words := strings.Fields(text)
		c := engine.Candidate{Index: i, Text: f.lead + text, FinishReason: engine.FinishStop, Rank: i + 1}
		for k, w := range words {
			piece := f.lead + w
			if k > 0 {
				piece = " " + w
			}
			c.Tokens = append(c.Tokens, int32(100+k))
			if req.Logprobs {
				lp := engine.TokenLogprob{Token: int32(100 + k), Text: piece, Logprob: -0.5}
				for t := 0; t < req.TopLogprobs; t++ {
					lp.Top = append(lp.Top, engine.TokenLogprob{Token: int32(t), Text: fmt.Sprint(t), Logprob: -1 - float32(t)})
				}
				c.Logprobs = append(c.Logprobs, lp)
			}
			if live {
				req.OnEvent(engine.Event{Candidate: i, Text: piece})
			}
		}
		if live {
			req.OnEvent(engine.Event{Candidate: i, Done: true, FinishReason: engine.FinishStop})
		}
		// Mean logprob per token -(1 + (seed+i)%3): the candidates with (seed+i)%3 == 0 are the likeliest.
		c.CumLogprob = -float64(1+(req.Sampling.Seed+uint64(i))%3) * float64(len(c.Tokens))
		res.Candidates = append(res.Candidates, c)
	}
	if req.Rerank {
		time.Sleep(f.scoreDelay)
		res.Timings.Scoring = 4*time.Millisecond + f.scoreDelay
		if f.degrade {
			res.Degraded, res.DegradedReason = true, "scorer timed out"
		} else {
			for i := range res.Candidates {
				res.Candidates[i].Score = float32(len(res.Candidates[i].Text))/10 - 1
				res.Candidates[i].Scored = true
			}
			sort.SliceStable(res.Candidates, func(a, b int) bool { return res.Candidates[a].Score > res.Candidates[b].Score })
			for i := range res.Candidates {
				res.Candidates[i].Rank = i + 1
			}
		}
	}
	if req.OnEvent != nil && !live {
		best := res.Candidates[0]
		req.OnEvent(engine.Event{Candidate: best.Index, Text: best.Text, Done: true, FinishReason: best.FinishReason})
	}
	return res, nil
}

// echoTemplate renders messages as "role: content" lines and a final "assistant:".
// The role names are the template's own text, the contents plain text.
var echoTemplate = TemplateFunc(func(msgs []Message) ([]engine.PromptPart, error) {
	var parts []engine.PromptPart
	for _, m := range msgs {
		if m.Content == "FAIL" {
			return nil, fmt.Errorf("template refuses %q", m.Content)
		}
		parts = append(parts, engine.PromptPart{Text: m.Role + ": ", Special: true}, engine.PromptPart{Text: m.Content},
			engine.PromptPart{Text: "\n", Special: true})
	}
	return append(parts, engine.PromptPart{Text: "assistant:", Special: true}), nil
})

// testEnv is a server over fake generators: "base" (N=1), "base:r1" (N=5, rerank), "norm" (no reward model),
// and an experiment "ab" splitting base / base:r1 50/50 as variants "B" / "R1".
type testEnv struct {
	gen     *fakeGen
	srv     *Server
	h       http.Handler
	reg     *prometheus.Registry
	metrics *Metrics
}

func newEnv(t testing.TB, mod func(*Config)) *testEnv {
	t.Helper()
	gen := &fakeGen{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := Config{
		Models: []Model{
			{Name: "base", Generator: gen, Template: echoTemplate, N: 1, CanRerank: true, Info: ModelInfo{Family: "llama", Format: "gguf", ParameterSize: "260K", QuantizationLevel: "F32", ContextLength: 512, TemplateName: "alpaca"}},
			{Name: "base:r1", Generator: gen, Template: echoTemplate, N: 5, Rerank: true},
			{Name: "norm", Generator: gen, Template: echoTemplate},
			{Name: "raw", Generator: gen},
		},
		Experiments: []Experiment{{Name: "ab", Variants: []Variant{{Name: "B", Model: "base", Weight: 1}, {Name: "R1", Model: "base:r1", Weight: 1}}}},
		Limits:      Limits{MaxTokens: 100, MaxN: 8},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:     m,
		Gatherer:    reg,
		Seed:        1,
		Version:     "test-1",
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{gen: gen, srv: s, h: s.Handler(), reg: reg, metrics: m}
}

func (e *testEnv) do(t testing.TB, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}
