package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bestofn/bestofn/sampler"
)

// referenceRun decodes one candidate the plain way, on its own backend: the prompt token by token, then one
// token per Forward, with a sampler seeded Seed+i. It shares no code with the scheduler.
func referenceRun(t *testing.T, be backend, voc vocab, req Request, i int) []int32 {
	t.Helper()
	ids := req.PromptTokens
	if ids == nil {
		var err error
		parts := req.PromptParts
		if parts == nil {
			parts = []PromptPart{{Text: req.Prompt}}
		}
		if ids, err = voc.encode(parts); err != nil {
			t.Fatal(err)
		}
	}
	seq, err := be.newSeq()
	if err != nil {
		t.Fatal(err)
	}
	defer be.free(seq)
	logits := make([]float32, be.vocabSize())
	var b batch
	for k, id := range ids {
		b.reset()
		b.add(id, seq, k == len(ids)-1)
		if err := be.forward(&b, logits); err != nil {
			t.Fatal(err)
		}
	}
	sp := req.Sampling
	smp, err := sampler.New(sampler.Params{Temperature: sp.Temperature, TopK: sp.TopK, TopP: sp.TopP, MinP: sp.MinP,
		RepeatPenalty: sp.RepeatPenalty, RepeatLastN: sp.RepeatLastN, PresencePenalty: sp.PresencePenalty,
		FrequencyPenalty: sp.FrequencyPenalty, LogitBias: sp.LogitBias, Seed: sp.Seed + uint64(i)}, be.vocabSize())
	if err != nil {
		t.Fatal(err)
	}
	var toks []int32
	for {
		id, _ := smp.Sample(logits)
		smp.Accept(id)
		toks = append(toks, id)
		if voc.isEOG(id) || len(toks) >= req.MaxTokens {
			return toks
		}
		b.reset()
		b.add(id, seq, true)
		if err := be.forward(&b, logits); err != nil {
			t.Fatal(err)
		}
	}
}

func newFakeEngine(t *testing.T, cfg Config, scorer Scorer) (*Engine, *fakeBackend) {
	t.Helper()
	be := newFakeBackend(fakeVocabSize, 256, 4, 1024)
	e, err := newEngine(be, fakeVocab{}, scorer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, be
}

func sameTokens(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBestOfNMatchesSingleRuns checks that each candidate of a best-of-5 request is what a single run seeded
// Seed+i gives, with the prompt in one step or in chunks, and with a vocabulary large enough (20,000) that the
// scheduler draws the five rows on several goroutines (drawRows).
func TestBestOfNMatchesSingleRuns(t *testing.T) {
	type variant struct{ chunk, vocab int }
	for _, v := range []variant{{0, fakeVocabSize}, {3, fakeVocabSize}, {0, 20000}} {
		chunk := v.chunk
		t.Run(fmt.Sprintf("chunk%d-vocab%d", chunk, v.vocab), func(t *testing.T) {
			if v.vocab*5 < parallelDrawValues && v.vocab != fakeVocabSize {
				t.Fatalf("vocabulary %d is too small for parallel draws", v.vocab)
			}
			be := newFakeBackend(v.vocab, 256, 4, 1024)
			e, err := newEngine(be, fakeVocab{}, nil, Config{PrefillChunk: chunk})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			req := Request{Prompt: "once upon a time", N: 5, MaxTokens: 40, Sampling: SamplingParams{Temperature: 1, Seed: 42}}
			res, err := e.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Candidates) != 5 {
				t.Fatalf("%d candidates, want 5", len(res.Candidates))
			}
			distinct := map[string]bool{}
			for i, c := range res.Candidates {
				if c.Index != i {
					t.Errorf("candidate %d has index %d (no rerank: sampling order)", i, c.Index)
				}
				want := referenceRun(t, newFakeBackend(v.vocab, 256, 4, 1024), fakeVocab{}, req, i)
				if !sameTokens(c.Tokens, want) {
					t.Errorf("candidate %d tokens %v, single run with seed %d gives %v", i, c.Tokens, 42+i, want)
				}
				distinct[fmt.Sprint(c.Tokens)] = true
			}
			if len(distinct) < 2 {
				t.Errorf("all 5 candidates are identical: seeds not applied per candidate")
			}
			if got := be.maxBatch.Load(); got < 2 {
				t.Errorf("largest decode batch %d: candidates were not decoded together", got)
			}
			if st := e.Stats(); st.PrefillTokens != uint64(res.PromptTokens) {
				t.Errorf("Stats.PrefillTokens %d, want %d", st.PrefillTokens, res.PromptTokens)
			}
		})
	}
}

func TestPrefillOnce(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	req := Request{Prompt: "the quick brown fox", N: 5, MaxTokens: 20, Sampling: SamplingParams{Temperature: 1, Seed: 7}}
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := fakeVocab{}.encode([]PromptPart{{Text: req.Prompt}})
	p := len(ids)
	if res.PromptTokens != p {
		t.Errorf("PromptTokens %d, want %d", res.PromptTokens, p)
	}
	// Each candidate evaluates all its tokens but the last one sampled; the prompt is evaluated once.
	want := p
	for _, c := range res.Candidates {
		want += len(c.Tokens) - 1
	}
	if got := be.evalToks.Load(); got != int64(want) {
		t.Errorf("backend evaluated %d tokens, want %d (prompt %d once + candidates)", got, want, p)
	}
	if st := e.Stats(); st.PrefillTokens != uint64(p) {
		t.Errorf("Stats.PrefillTokens %d, want %d", st.PrefillTokens, p)
	}
}

func waitIdle(t *testing.T, e *Engine) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.Stats()
		if st.ActiveRequests == 0 && st.QueueDepth == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not idle: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestKVBlocksReturn(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	for k := range 40 {
		req := Request{Prompt: "a story about a cat", N: 1 + k%5, MaxTokens: 10 + k, Sampling: SamplingParams{Temperature: 1, Seed: uint64(k)}}
		if _, err := e.Generate(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	st := waitIdle(t, e)
	if st.KVBlocksUsed != 0 || st.KVBlocksReserved != 0 || len(be.seqs) != 0 {
		t.Errorf("after 40 requests: %d blocks used, %d reserved, %d sequences live; want 0", st.KVBlocksUsed,
			st.KVBlocksReserved, len(be.seqs))
	}
	if st.Requests != 40 {
		t.Errorf("Stats.Requests %d, want 40", st.Requests)
	}
}

func TestCancelFreesBlocks(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	be.eogBias = -100 // never stop by itself
	be.delay = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var events int
	req := Request{Prompt: "hello", N: 3, StreamCandidates: true, Sampling: SamplingParams{Temperature: 1},
		OnEvent: func(ev Event) {
			events++
			if events == 10 {
				cancel()
			}
		}}
	_, err := e.Generate(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate error %v, want context.Canceled", err)
	}
	st := waitIdle(t, e)
	if st.KVBlocksUsed != 0 || len(be.seqs) != 0 || st.ActiveSeqs != 0 {
		t.Errorf("after cancel: %d blocks used, %d sequences, %d active; want 0", st.KVBlocksUsed, len(be.seqs), st.ActiveSeqs)
	}
	if st.Cancelled != 1 {
		t.Errorf("Stats.Cancelled %d, want 1", st.Cancelled)
	}
	// The engine keeps working.
	if _, err := e.Generate(context.Background(), Request{Prompt: "hi", MaxTokens: 5}); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringPrefill(t *testing.T) {
	e, be := newFakeEngine(t, Config{PrefillChunk: 2}, nil)
	be.gate = make(chan struct{})
	be.entered = make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.Generate(ctx, Request{Prompt: "a long prompt here", N: 3, MaxTokens: 10})
		errc <- err
	}()
	<-be.entered // first prompt chunk in Forward
	cancel()
	close(be.gate)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	st := waitIdle(t, e)
	if st.KVBlocksUsed != 0 || len(be.seqs) != 0 {
		t.Errorf("after cancel during prefill: %d blocks, %d sequences", st.KVBlocksUsed, len(be.seqs))
	}
	if st.PrefillTokens >= uint64(len("a long prompt here")+1) {
		t.Errorf("prefill ran to the end (%d tokens) despite the cancellation", st.PrefillTokens)
	}
}

func TestQueueFull(t *testing.T) {
	e, be := newFakeEngine(t, Config{MaxQueue: 2, MaxActiveSeqs: 1}, nil)
	be.gate = make(chan struct{})
	be.entered = make(chan struct{}, 1000)
	req := Request{Prompt: "x", MaxTokens: 3}
	errs := make(chan error, 3)
	go func() { _, err := e.Generate(context.Background(), req); errs <- err }()
	<-be.entered // the first request holds the only sequence slot, blocked in Forward
	for range 2 {
		go func() { _, err := e.Generate(context.Background(), req); errs <- err }()
	}
	for e.Stats().QueueDepth < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.Generate(context.Background(), req); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fourth request: error %v, want ErrQueueFull", err)
	}
	if e.Stats().Rejected != 1 {
		t.Errorf("Stats.Rejected %d, want 1", e.Stats().Rejected)
	}
	close(be.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("queued request failed: %v", err)
		}
	}
}

type scorerFunc func(ctx context.Context, prompt string, cands []string) ([]float32, error)

func (f scorerFunc) Score(ctx context.Context, prompt string, cands []string) ([]float32, error) {
	return f(ctx, prompt, cands)
}

func TestRerank(t *testing.T) {
	var gotPrompt string
	var gotN int
	var seen []string
	scorer := scorerFunc(func(_ context.Context, prompt string, cands []string) ([]float32, error) {
		gotPrompt, gotN, seen = prompt, len(cands), cands
		return []float32{1, 3, 3, 0, 2}, nil
	})
	e, _ := newFakeEngine(t, Config{}, scorer)
	req := Request{Prompt: "templated", RewardPrompt: "raw", N: 5, Rerank: true, MaxTokens: 8,
		Sampling: SamplingParams{Temperature: 1, Seed: 3, LogitBias: map[int32]float32{29: 4}}} // spaces are likely
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if gotPrompt != "raw" || gotN != 5 {
		t.Errorf("scorer saw prompt %q and %d candidates, want \"raw\" and 5", gotPrompt, gotN)
	}
	// The reward model scores each answer as a reply: without the white space the continuation starts with.
	spaced := 0
	for _, c := range res.Candidates {
		if want := strings.TrimLeftFunc(c.Text, unicode.IsSpace); seen[c.Index] != want {
			t.Errorf("scorer saw candidate %d as %q, want %q", c.Index, seen[c.Index], want)
		}
		if strings.HasPrefix(c.Text, " ") {
			spaced++
		}
	}
	if spaced == 0 {
		t.Error("no candidate starts with a space: the trimming is not exercised")
	}
	wantOrder := []int{1, 2, 4, 0, 3} // by score, ties by sampling index
	for r, c := range res.Candidates {
		if c.Index != wantOrder[r] || c.Rank != r+1 || !c.Scored {
			t.Errorf("rank %d: candidate %d (rank %d, scored %v), want candidate %d", r+1, c.Index, c.Rank, c.Scored, wantOrder[r])
		}
	}
	if res.Degraded {
		t.Errorf("degraded: %s", res.DegradedReason)
	}
}

func TestRankNaNLast(t *testing.T) {
	nan := float32(0)
	nan = nan / nan
	c := []Candidate{{Index: 0}, {Index: 1}, {Index: 2}}
	rankCandidates(c, []float32{nan, -5, 1})
	if c[0].Index != 2 || c[1].Index != 1 || c[2].Index != 0 {
		t.Errorf("order %d %d %d, want 2 1 0", c[0].Index, c[1].Index, c[2].Index)
	}
}

func TestScorerDegraded(t *testing.T) {
	cases := []struct {
		name   string
		scorer Scorer
		reason string
	}{
		{"nil", nil, "no scorer"},
		{"error", scorerFunc(func(context.Context, string, []string) ([]float32, error) {
			return nil, errors.New("onnx exploded")
		}), "onnx exploded"},
		{"count", scorerFunc(func(context.Context, string, []string) ([]float32, error) {
			return []float32{1}, nil
		}), "1 scores for 4"},
		{"slow", scorerFunc(func(context.Context, string, []string) ([]float32, error) {
			time.Sleep(2 * time.Second) // ignores its context
			return []float32{1, 2, 3, 4}, nil
		}), "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newFakeEngine(t, Config{ScoreTimeout: 50 * time.Millisecond}, tc.scorer)
			req := Request{Prompt: "q", N: 4, Rerank: true, MaxTokens: 6, Sampling: SamplingParams{Temperature: 1, Seed: 9}}
			start := time.Now()
			res, err := e.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > time.Second {
				t.Errorf("took %v: the score timeout was not applied", time.Since(start))
			}
			if !res.Degraded || !strings.Contains(res.DegradedReason, tc.reason) {
				t.Errorf("Degraded %v reason %q, want degraded with %q", res.Degraded, res.DegradedReason, tc.reason)
			}
			if len(res.Candidates) != 4 {
				t.Fatalf("%d candidates, want all 4", len(res.Candidates))
			}
			for i, c := range res.Candidates {
				if c.Index != i || c.Scored || len(c.Tokens) == 0 {
					t.Errorf("candidate %d: index %d scored %v with %d tokens", i, c.Index, c.Scored, len(c.Tokens))
				}
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	e, be := newFakeEngine(t, Config{MaxActiveSeqs: 8}, nil)
	be.delay = 200 * time.Microsecond
	reqs := make([]Request, 8)
	for k := range reqs {
		reqs[k] = Request{Prompt: fmt.Sprintf("request number %c", 'a'+k), N: 1 + k%3, MaxTokens: 15 + k,
			Sampling: SamplingParams{Temperature: 0.8, TopK: 20, Seed: uint64(100 * k)}}
	}
	results := make([]*Result, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for k := range reqs {
		wg.Go(func() { results[k], errs[k] = e.Generate(context.Background(), reqs[k]) })
	}
	wg.Wait()
	for k, res := range results {
		if errs[k] != nil {
			t.Fatalf("request %d: %v", k, errs[k])
		}
		for i, c := range res.Candidates {
			want := referenceRun(t, newFakeBackend(fakeVocabSize, 256, 4, 1024), fakeVocab{}, reqs[k], i)
			if !sameTokens(c.Tokens, want) {
				t.Errorf("request %d candidate %d: %v, want %v", k, i, c.Tokens, want)
			}
		}
	}
	if st := waitIdle(t, e); st.KVBlocksUsed != 0 {
		t.Errorf("%d blocks still used", st.KVBlocksUsed)
	}
	if be.maxBatch.Load() <= 3 {
		t.Errorf("largest batch %d rows: requests were not batched together", be.maxBatch.Load())
	}
}

func TestStopStringAcrossTokens(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	be.eogBias = -100 // no end-of-sequence: the reference runs its 60 one-character tokens
	base := Request{Prompt: "stop test", MaxTokens: 60, Sampling: SamplingParams{Temperature: 1, Seed: 5}}
	full, err := e.Generate(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	text := full.Candidates[0].Text
	if len(full.Candidates[0].Tokens) != 60 || len(text) < 12 {
		t.Fatalf("reference text %q of %d tokens, want 60", text, len(full.Candidates[0].Tokens))
	}
	stop := text[8:11] // three one-character tokens
	req := base
	req.Stop = []string{stop}
	var streamed strings.Builder
	var last Event
	req.OnEvent = func(ev Event) { streamed.WriteString(ev.Text); last = ev }
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Candidates[0]
	if want := text[:strings.Index(text, stop)]; c.Text != want || c.FinishReason != FinishStop {
		t.Errorf("text %q (%s), want %q (stop)", c.Text, c.FinishReason, want)
	}
	if streamed.String() != c.Text || !last.Done || last.FinishReason != FinishStop {
		t.Errorf("streamed %q (last event %+v), want %q and a Done event", streamed.String(), last, c.Text)
	}
}

func TestStreamingUTF8AndLength(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	be.eogBias = -100
	req := Request{Prompt: "é", MaxTokens: 80, Sampling: SamplingParams{Temperature: 1, Seed: 11,
		LogitBias: map[int32]float32{31: 3, 32: 3}}}
	var pieces []string
	req.OnEvent = func(ev Event) {
		if !utf8.ValidString(ev.Text) {
			t.Errorf("event text %q is not valid UTF-8", ev.Text)
		}
		pieces = append(pieces, ev.Text)
	}
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Candidates[0]
	if len(c.Tokens) != 80 || c.FinishReason != FinishLength {
		t.Errorf("%d tokens (%s), want 80 (length)", len(c.Tokens), c.FinishReason)
	}
	if strings.Join(pieces, "") != c.Text {
		t.Errorf("streamed %q, result %q", strings.Join(pieces, ""), c.Text)
	}
}

func TestStreamModes(t *testing.T) {
	e, _ := newFakeEngine(t, Config{}, scorerFunc(func(_ context.Context, _ string, c []string) ([]float32, error) {
		s := make([]float32, len(c))
		for i, t := range c {
			s[i] = float32(len(t))
		}
		return s, nil
	}))
	base := Request{Prompt: "modes", N: 3, Rerank: true, MaxTokens: 30, Sampling: SamplingParams{Temperature: 1, Seed: 1}}

	per := base
	per.StreamCandidates = true
	got := map[int]string{}
	dones := 0
	per.OnEvent = func(ev Event) {
		got[ev.Candidate] += ev.Text
		if ev.Done {
			dones++
		}
	}
	res, err := e.Generate(context.Background(), per)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Candidates {
		if got[c.Index] != c.Text {
			t.Errorf("candidate %d streamed %q, text %q", c.Index, got[c.Index], c.Text)
		}
	}
	if dones != 3 {
		t.Errorf("%d Done events, want 3", dones)
	}

	after := base
	var evs []Event
	after.OnEvent = func(ev Event) { evs = append(evs, ev) }
	res, err = e.Generate(context.Background(), after)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Text != res.Candidates[0].Text || evs[0].Candidate != res.Candidates[0].Index || !evs[0].Done {
		t.Errorf("after-ranking events %+v, want one Done event with the best candidate %+v", evs, res.Candidates[0])
	}
}

func TestLogprobs(t *testing.T) {
	e, _ := newFakeEngine(t, Config{}, nil)
	res, err := e.Generate(context.Background(), Request{Prompt: "lp", MaxTokens: 5, Logprobs: true, TopLogprobs: 3,
		Sampling: SamplingParams{Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Candidates[0]
	if len(c.Logprobs) != len(c.Tokens) {
		t.Fatalf("%d logprobs for %d tokens", len(c.Logprobs), len(c.Tokens))
	}
	for i, lp := range c.Logprobs {
		if lp.Token != c.Tokens[i] || len(lp.Top) != 3 || lp.Logprob > 0 {
			t.Errorf("logprob %d: %+v", i, lp)
		}
		// Greedy: the chosen token is the most likely one.
		if lp.Top[0].Token != lp.Token || lp.Top[0].Logprob != lp.Logprob {
			t.Errorf("greedy token %d is not the top alternative %+v", lp.Token, lp.Top[0])
		}
	}
}

// TestCumLogprob checks that every candidate carries the sum of its tokens' log-probabilities, whether or not
// the request asked for them, as the per-token logprobs of the same run add up.
func TestCumLogprob(t *testing.T) {
	e, _ := newFakeEngine(t, Config{}, nil)
	req := Request{Prompt: "lp", N: 3, MaxTokens: 12, Sampling: SamplingParams{Temperature: 1, Seed: 4}}
	plain, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.Logprobs = true
	withLogprobs, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range withLogprobs.Candidates {
		var sum float64
		for _, lp := range c.Logprobs {
			sum += float64(lp.Logprob)
		}
		if math.Abs(c.CumLogprob-sum) > 1e-4 || c.CumLogprob >= 0 || plain.Candidates[i].CumLogprob != c.CumLogprob {
			t.Errorf("candidate %d: CumLogprob %v (without logprobs %v), sum of its logprobs %v", i, c.CumLogprob,
				plain.Candidates[i].CumLogprob, sum)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	e, _ := newFakeEngine(t, Config{MaxN: 8, MaxActiveSeqs: 8}, nil)
	long := strings.Repeat("a", 300)
	var cle *ContextLengthError
	if _, err := e.Generate(context.Background(), Request{Prompt: long}); !errors.As(err, &cle) || cle.PromptTokens != 301 {
		t.Errorf("long prompt: %v, want ContextLengthError with 301 tokens", err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "ab", MaxTokens: 254}); !errors.As(err, &cle) {
		t.Errorf("prompt + max tokens past the context: %v, want ContextLengthError", err)
	}
	for _, req := range []Request{{Prompt: "a", N: 9}, {Prompt: "a", N: -1}, {Prompt: "a", MaxTokens: -2},
		{Prompt: "a", Sampling: SamplingParams{Temperature: -1}}, {Prompt: "a", Stop: []string{""}}} {
		if _, err := e.Generate(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", req, err)
		}
	}
	small, _ := newEngine(newFakeBackend(fakeVocabSize, 256, 4, 16), fakeVocab{}, nil, Config{})
	defer small.Close()
	if _, err := small.Generate(context.Background(), Request{Prompt: "a", N: 4, MaxTokens: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("worst case over the cache: %v, want ErrTooLarge", err)
	}
}

func TestKVBudgetQueuesInsteadOfFailing(t *testing.T) {
	// 64 blocks of 4 tokens: each request's worst case is 1 + 3*ceil(31/4)... about 25 blocks, so only two run
	// at once; the rest wait for admission and all complete without a cache-full error.
	be := newFakeBackend(fakeVocabSize, 256, 4, 64)
	e, err := newEngine(be, fakeVocab{}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	be.eogBias = -100
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for k := range 6 {
		wg.Go(func() {
			_, err := e.Generate(context.Background(), Request{Prompt: "ab", N: 3, MaxTokens: 30,
				Sampling: SamplingParams{Temperature: 1, Seed: uint64(k)}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := waitIdle(t, e); st.KVBlocksUsed != 0 {
		t.Errorf("%d blocks used after all requests", st.KVBlocksUsed)
	}
}

func TestForwardErrorFreesAndReports(t *testing.T) {
	e, be := newFakeEngine(t, Config{}, nil)
	be.fail = errors.New("gpu on fire")
	_, err := e.Generate(context.Background(), Request{Prompt: "x", N: 2, MaxTokens: 4})
	if err == nil || !strings.Contains(err.Error(), "gpu on fire") {
		t.Fatalf("error %v, want the forward error", err)
	}
	if st := waitIdle(t, e); st.KVBlocksUsed != 0 || len(be.seqs) != 0 {
		t.Errorf("%d blocks, %d sequences after a failed forward", st.KVBlocksUsed, len(be.seqs))
	}
}

func TestClose(t *testing.T) {
	be := newFakeBackend(fakeVocabSize, 256, 4, 1024)
	e, err := newEngine(be, fakeVocab{}, nil, Config{MaxActiveSeqs: 1})
	if err != nil {
		t.Fatal(err)
	}
	be.gate = make(chan struct{})
	be.entered = make(chan struct{}, 100)
	be.eogBias = -100
	errs := make(chan error, 2)
	go func() { _, err := e.Generate(context.Background(), Request{Prompt: "a", MaxTokens: 50}); errs <- err }()
	<-be.entered
	go func() { _, err := e.Generate(context.Background(), Request{Prompt: "b", MaxTokens: 50}); errs <- err }()
	for e.Stats().QueueDepth < 1 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		for range be.entered {
		}
	}()
	go func() { time.Sleep(10 * time.Millisecond); close(be.gate) }()
	e.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("request during Close: %v, want ErrClosed", err)
		}
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "c"}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if len(be.seqs) != 0 {
		t.Errorf("%d sequences live after Close", len(be.seqs))
	}
	e.Close()
}

func TestWorstBlocksAndFit(t *testing.T) {
	// Against a direct count: the prompt's blocks, plus per candidate the blocks of positions
	// [bs*floor(p/bs), p+g-1) it may write (a shared partial block is copied on write).
	for _, bs := range []int{1, 4, 16} {
		for p := 1; p <= 40; p += 3 {
			for g := 1; g <= 40; g += 5 {
				for _, n := range []int{1, 2, 5} {
					own := 0
					for pos := bs * (p / bs); pos < p+g-1; pos += bs {
						own++
					}
					want := (p+bs-1)/bs + n*own
					if got := worstBlocks(p, g, n, bs); got != want {
						t.Fatalf("worstBlocks(%d, %d, %d, %d) = %d, want %d", p, g, n, bs, got, want)
					}
				}
			}
		}
	}
	for _, total := range []int{5, 17, 64} {
		for p := 1; p < 30; p += 4 {
			for _, n := range []int{1, 3, 5} {
				g := fitTokens(p, n, 4, total)
				if g > 0 && worstBlocks(p, g, n, 4) > total {
					t.Errorf("fitTokens(%d, %d, 4, %d) = %d does not fit", p, n, total, g)
				}
				if worstBlocks(p, g+1, n, 4) <= total {
					t.Errorf("fitTokens(%d, %d, 4, %d) = %d is not the largest", p, n, total, g)
				}
			}
		}
	}
}

func TestMaxTokensZeroFitsBudget(t *testing.T) {
	be := newFakeBackend(fakeVocabSize, 256, 4, 40)
	be.eogBias = -100
	e, err := newEngine(be, fakeVocab{}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Generate(context.Background(), Request{Prompt: "abc", N: 4, Sampling: SamplingParams{Temperature: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Candidates {
		if c.FinishReason != FinishLength || len(c.Tokens) != fitTokens(4, 4, 4, 40) {
			t.Errorf("candidate %d: %d tokens (%s), want %d (length)", c.Index, len(c.Tokens), c.FinishReason, fitTokens(4, 4, 4, 40))
		}
	}
	// DefaultMaxTokens bounds the fit when it is smaller, and is no demand when it is larger.
	for _, def := range []int{5, 1000} {
		res, err := e.Generate(context.Background(), Request{Prompt: "abc", N: 4, DefaultMaxTokens: def, Sampling: SamplingParams{Temperature: 1}})
		if err != nil {
			t.Fatal(err)
		}
		want := min(def, fitTokens(4, 4, 4, 40))
		for _, c := range res.Candidates {
			if c.FinishReason != FinishLength || len(c.Tokens) != want {
				t.Errorf("default %d: candidate %d: %d tokens (%s), want %d (length)", def, c.Index, len(c.Tokens), c.FinishReason, want)
			}
		}
	}
}
