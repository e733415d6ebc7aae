package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bestofn/bestofn/engine"
)

// tagGen answers every candidate with its tag and the tag of the scorer it was given; it fails a request that
// arrives after it was closed, and can hold requests at a gate.
type tagGen struct {
	tag     string
	gate    chan struct{} // when not nil, the first hold calls of Generate wait for it to close
	hold    atomic.Int64
	entered chan struct{} // receives one value per Generate call that reached the gate
	closed  atomic.Bool
}

func (g *tagGen) Generate(ctx context.Context, req engine.Request) (*engine.Result, error) {
	if g.closed.Load() {
		return nil, engine.ErrClosed
	}
	if g.gate != nil && g.hold.Add(-1) >= 0 {
		g.entered <- struct{}{}
		<-g.gate
	}
	if g.closed.Load() {
		return nil, engine.ErrClosed
	}
	text := g.tag
	if sc, ok := req.Scorer.(*tagScorer); ok && req.Rerank {
		text += "+" + sc.tag
	}
	n := max(req.N, 1)
	res := &engine.Result{PromptTokens: 1}
	for i := 0; i < n; i++ {
		res.Candidates = append(res.Candidates, engine.Candidate{Index: i, Text: text, FinishReason: engine.FinishStop, Rank: i + 1})
	}
	return res, nil
}

func (g *tagGen) Close() error { g.closed.Store(true); return nil }

type tagScorer struct {
	tag    string
	closed atomic.Bool
}

func (s *tagScorer) Score(ctx context.Context, prompt string, cands []string) ([]float32, error) {
	return make([]float32, len(cands)), nil
}

func (s *tagScorer) Close() error { s.closed.Store(true); return nil }

func newSwapServer(t *testing.T, models ...Model) *Server {
	t.Helper()
	s, err := New(Config{Models: models, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Experiments: []Experiment{{Name: "x", Variants: []Variant{{Name: "A", Model: models[0].Name, Weight: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answer posts a completion for model and returns the status and the answer's text.
func answer(t *testing.T, h http.Handler, model string) (int, string) {
	t.Helper()
	body := `{"model":"` + model + `","prompt":"hi","max_tokens":4}`
	w := (&testEnv{h: h}).do(t, http.MethodPost, "/v1/completions", body)
	if w.Code != http.StatusOK {
		return w.Code, w.Body.String()
	}
	var out struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Choices) == 0 {
		t.Fatalf("bad body %q: %v", w.Body.String(), err)
	}
	return w.Code, out.Choices[0].Text
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSwapGeneratorDrainsInFlight(t *testing.T) {
	a := &tagGen{tag: "A", gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	a.hold.Store(1 << 30)
	b := &tagGen{tag: "B"}
	s := newSwapServer(t, Model{Name: "m", Generator: a, Template: echoTemplate})
	h := s.Handler()

	const inflight = 3
	var wg sync.WaitGroup
	results := make(chan string, inflight)
	for i := 0; i < inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, text := answer(t, h, "m")
			if code != http.StatusOK {
				text = "status " + text
			}
			results <- text
		}()
	}
	for i := 0; i < inflight; i++ {
		<-a.entered
	}
	if err := s.Swap(Swap{Models: []string{"m"}, Generator: b, Template: echoTemplate, Info: ModelInfo{Digest: "b"}}); err != nil {
		t.Fatal(err)
	}
	if code, text := answer(t, h, "m"); code != http.StatusOK || text != "B" {
		t.Fatalf("after swap: %d %q, want 200 B", code, text)
	}
	if code, text := answer(t, h, "x"); code != http.StatusOK || text != "B" {
		t.Fatalf("experiment after swap: %d %q, want 200 B", code, text)
	}
	if a.closed.Load() {
		t.Fatal("old generator closed while requests were in flight")
	}
	close(a.gate)
	wg.Wait()
	close(results)
	for text := range results {
		if text != "A" {
			t.Errorf("in-flight request answered %q, want A (finished on the old generator)", text)
		}
	}
	waitFor(t, "the old generator to be closed", a.closed.Load)
	if b.closed.Load() {
		t.Fatal("new generator closed")
	}
	if got := s.Serving()[0].Info.Digest; got != "b" {
		t.Fatalf("Serving info digest %q, want b", got)
	}
}

func TestSwapScorerPinnedPerRequest(t *testing.T) {
	a := &tagGen{tag: "G", gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	a.hold.Store(1) // only the first request waits
	s1, s2 := &tagScorer{tag: "s1"}, &tagScorer{tag: "s2"}
	s := newSwapServer(t, Model{Name: "r1", Generator: a, Template: echoTemplate, N: 2, Rerank: true, Scorer: s1})
	h := s.Handler()
	first := make(chan string, 1)
	go func() { _, text := answer(t, h, "r1"); first <- text }()
	<-a.entered
	if err := s.Swap(Swap{Models: []string{"r1"}, Scorer: s2, RewardModel: "rm-v2"}); err != nil {
		t.Fatal(err)
	}
	if code, text := answer(t, h, "r1"); code != http.StatusOK || text != "G+s2" {
		t.Fatalf("new request: %d %q, want G+s2", code, text)
	}
	if s1.closed.Load() {
		t.Fatal("old scorer closed while a request held it")
	}
	if got := s.Serving()[0].Info.RewardModel; got != "rm-v2" {
		t.Fatalf("reward model %q, want rm-v2", got)
	}
	close(a.gate)
	if text := <-first; text != "G+s1" {
		t.Fatalf("in-flight request scored by %q, want G+s1 (pinned before the swap)", text)
	}
	waitFor(t, "the old scorer to be closed", s1.closed.Load)
	if a.closed.Load() || s2.closed.Load() {
		t.Fatal("a scorer swap closed the generator or the new scorer")
	}
}

func TestSwapSharedGeneratorClosedWhenUnused(t *testing.T) {
	a, b := &tagGen{tag: "A"}, &tagGen{tag: "B"}
	s := newSwapServer(t, Model{Name: "m", Generator: a, Template: echoTemplate},
		Model{Name: "m:r1", Generator: a, Template: echoTemplate, N: 2})
	if err := s.Swap(Swap{Models: []string{"m"}, Generator: b, Template: echoTemplate}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if a.closed.Load() {
		t.Fatal("generator closed while m:r1 still serves it")
	}
	if code, text := answer(t, s.Handler(), "m:r1"); code != http.StatusOK || text != "A" {
		t.Fatalf("m:r1: %d %q", code, text)
	}
	if err := s.Swap(Swap{Models: []string{"m:r1"}, Generator: b, Template: echoTemplate}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unused generator to be closed", a.closed.Load)
}

func TestSwapRejectsBadSwapsAndChangesNothing(t *testing.T) {
	a, b := &tagGen{tag: "A"}, &tagGen{tag: "B"}
	s := newSwapServer(t, Model{Name: "m", Generator: a, Template: echoTemplate})
	for _, sw := range []Swap{
		{Models: []string{"m", "nope"}, Generator: b, Template: echoTemplate},
		{Models: []string{"x"}, Generator: b, Template: echoTemplate},
		{Models: []string{"m"}, Generator: b},
		{Models: []string{"m", "m"}, Generator: b, Template: echoTemplate},
		{Models: []string{"m"}},
		{Generator: b, Template: echoTemplate},
	} {
		if err := s.Swap(sw); err == nil {
			t.Errorf("Swap(%v %v) succeeded", sw.Models, sw.Generator != nil)
		} else if !strings.HasPrefix(err.Error(), "server: ") {
			t.Errorf("error %q lacks the package prefix", err)
		}
	}
	if code, text := answer(t, s.Handler(), "m"); code != http.StatusOK || text != "A" {
		t.Fatalf("after failed swaps: %d %q, want A", code, text)
	}
	if a.closed.Load() {
		t.Fatal("a failed swap closed the serving generator")
	}
}
