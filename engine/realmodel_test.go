package engine

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const storiesPath = "../../shared/models/stories260K/stories260K.gguf"

// loadStories loads the real stories260K model (context capped at 512) and its tokenizer.
func loadStories(t *testing.T) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	ck, err := weights.Open(storiesPath)
	if err != nil {
		t.Skipf("stories260K not available: %v", err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(ck, model.Options{Threads: 1, ContextLen: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// freshBackend is a second KV cache on the same model, for reference runs outside the engine.
func freshBackend(t *testing.T, m *model.Model) *modelBackend {
	t.Helper()
	cache, err := model.NewKVCache(m.Config(), model.CacheOptions{MaxTokens: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return &modelBackend{gen: m, cache: cache, cfg: m.Config()}
}

func TestRealGreedyStory(t *testing.T) {
	m, tok := loadStories(t)
	e, err := New(m, tok, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Generate(context.Background(), Request{Prompt: "", MaxTokens: 30, Logprobs: true})
	if err != nil {
		t.Fatal(err)
	}
	const want = "Once upon a time, there was a little girl named Lily. She loved to play outside"
	if got := res.Candidates[0].Text; !strings.HasPrefix(got, want) {
		t.Errorf("greedy text %q, want it to start with %q", got, want)
	}
	// Logprob tokens carry the output text of each token (spaces, not U+2581): together they spell the answer,
	// with SentencePiece's leading space that Decode drops.
	var pieces strings.Builder
	for _, lp := range res.Candidates[0].Logprobs {
		pieces.WriteString(lp.Text)
	}
	if got := pieces.String(); got != " "+res.Candidates[0].Text {
		t.Errorf("logprob token texts spell %q, want %q", got, " "+res.Candidates[0].Text)
	}
}

// TestRealBestOfNMatchesSingleRuns checks, on the real model, that the batched best-of-N path (prefill once,
// fork, decode 5 together) gives the tokens of 5 plain token-by-token runs seeded Seed+i, and that the prompt
// was evaluated once (model token counter).
func TestRealBestOfNMatchesSingleRuns(t *testing.T) {
	m, tok := loadStories(t)
	refModel, _ := loadStories(t) // a second instance, so m's counters see only the engine's work
	be := newCheckBackend(t, m, refModel, 2048)
	e, err := newEngine(be, tokVocab{tok}, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	req := Request{Prompt: "Once upon a time, there was a little dog", N: 5, MaxTokens: 60,
		Sampling: SamplingParams{Temperature: 1, Seed: 1234}}
	before := m.Stats()
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	after := m.Stats()
	want := int64(res.PromptTokens)
	for _, c := range res.Candidates {
		want += int64(len(c.Tokens) - 1)
	}
	if got := after.Tokens - before.Tokens; got != want {
		t.Errorf("model evaluated %d tokens, want %d (prompt of %d once + each candidate's tokens but its last)", got,
			want, res.PromptTokens)
	}
	if got, wantCalls := after.ForwardCalls-before.ForwardCalls, int64(1+maxLen(res)-1); got != wantCalls {
		t.Errorf("%d Forward calls, want %d (one prefill, then one per step for all candidates together)", got, wantCalls)
	}
	distinct := map[string]bool{}
	voc := tokVocab{tok}
	for i, c := range res.Candidates {
		ref := referenceRun(t, freshBackend(t, refModel), voc, req, i)
		if !sameTokens(c.Tokens, ref) {
			t.Errorf("candidate %d:\n batched %v\n single  %v", i, c.Tokens, ref)
		}
		// The text is what decoding prompt + candidate adds after the prompt (its leading space included).
		prompt := tok.Encode(req.Prompt, true, false)
		whole := tok.Decode(append(prompt, c.Tokens[:len(c.Tokens)-btoi(c.FinishReason == FinishStop)]...))
		if want := strings.TrimPrefix(whole, tok.Decode(prompt)); c.Text != want {
			t.Errorf("candidate %d text %q, want %q (decoding prompt + tokens after the prompt)", i, c.Text, want)
		}
		distinct[c.Text] = true
	}
	if len(distinct) < 3 {
		t.Errorf("only %d distinct candidates of 5 at temperature 1", len(distinct))
	}
	if be.maxDiff > 1e-4 {
		t.Errorf("batched logits differ from single-sequence ones by %g, want <= 1e-4", be.maxDiff)
	}
	if st := waitIdle(t, e); st.KVBlocksUsed != 0 {
		t.Errorf("%d KV blocks used after the request", st.KVBlocksUsed)
	}
}

// maxLen is the length of the longest candidate.
func maxLen(r *Result) int {
	n := 0
	for _, c := range r.Candidates {
		n = max(n, len(c.Tokens))
	}
	return n
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkBackend runs the engine's batches on the model and, for every logits row, checks it against an
// independent single-token evaluation of the same sequence by a second model instance on its own cache (forks
// mirrored there), within 1e-4; then it substitutes the reference row. Batched kernels round differently from single rows (~1e-5),
// which can flip a sampled token once in a while; with the reference rows substituted the engine's tokens
// must equal plain single runs exactly, so scheduling, forking and batching bugs show and float noise does not.
type checkBackend struct {
	*modelBackend
	t       *testing.T
	refM    *model.Model
	ref     *model.KVCache
	refSeq  map[seqID]model.SeqID
	buf     []float32
	maxDiff float64
}

func newCheckBackend(t *testing.T, m, refM *model.Model, kvTokens int) *checkBackend {
	cache, err := model.NewKVCache(m.Config(), model.CacheOptions{MaxTokens: kvTokens})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := model.NewKVCache(m.Config(), model.CacheOptions{MaxTokens: kvTokens})
	if err != nil {
		t.Fatal(err)
	}
	return &checkBackend{modelBackend: &modelBackend{gen: m, cache: cache, cfg: m.Config()}, t: t, refM: refM, ref: ref,
		refSeq: map[seqID]model.SeqID{}, buf: make([]float32, m.Config().VocabSize)}
}

func (c *checkBackend) newSeq() (seqID, error) {
	s, err := c.modelBackend.newSeq()
	if err != nil {
		return s, err
	}
	r, err := c.ref.NewSeq()
	c.refSeq[s] = r
	return s, err
}

func (c *checkBackend) fork(src seqID) (seqID, error) {
	s, err := c.modelBackend.fork(src)
	if err != nil {
		return s, err
	}
	r, err := c.ref.Fork(c.refSeq[src])
	c.refSeq[s] = r
	return s, err
}

func (c *checkBackend) free(s seqID) {
	c.modelBackend.free(s)
	c.ref.Free(c.refSeq[s])
	delete(c.refSeq, s)
}

func (c *checkBackend) forward(b *batch, logits []float32) error {
	if err := c.modelBackend.forward(b, logits); err != nil {
		return err
	}
	v := c.cfg.VocabSize
	row := 0
	for i, tok := range b.tokens {
		r := c.refSeq[b.seqs[i]]
		if err := c.refM.Forward(c.ref, model.Batch{Tokens: []int32{tok}, Seqs: []model.SeqID{r}}, c.buf); err != nil {
			return err
		}
		if !b.logits[i] {
			continue
		}
		out := logits[row*v : (row+1)*v]
		for j, x := range c.buf {
			d := math.Abs(float64(out[j] - x))
			if d > c.maxDiff {
				c.maxDiff = d
			}
		}
		copy(out, c.buf)
		row++
	}
	return nil
}

func TestRealConcurrentAndNoGrowth(t *testing.T) {
	m, tok := loadStories(t)
	refModel, _ := loadStories(t)
	be := newCheckBackend(t, m, refModel, 4*512)
	e, err := newEngine(be, tokVocab{tok}, nil, Config{MaxActiveSeqs: 12})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompts := []string{"Tom had a red ball", "The sun was hot", "Lily saw a bird", "One day, a cat"}
	voc := tokVocab{tok}
	for round := range 3 {
		var wg sync.WaitGroup
		results := make([]*Result, len(prompts))
		errs := make([]error, len(prompts))
		reqs := make([]Request, len(prompts))
		for k := range prompts {
			reqs[k] = Request{Prompt: prompts[k], N: 1 + k%3, MaxTokens: 40,
				Sampling: SamplingParams{Temperature: 0.9, TopP: 0.95, Seed: uint64(round*10 + k)}}
			wg.Go(func() { results[k], errs[k] = e.Generate(context.Background(), reqs[k]) })
		}
		wg.Wait()
		for k := range prompts {
			if errs[k] != nil {
				t.Fatal(errs[k])
			}
			for i, c := range results[k].Candidates {
				if ref := referenceRun(t, freshBackend(t, refModel), voc, reqs[k], i); !sameTokens(c.Tokens, ref) {
					t.Errorf("round %d request %d candidate %d differs from its single run:\n%v\n%v", round, k, i,
						c.Tokens, ref)
				}
			}
		}
		if st := waitIdle(t, e); st.KVBlocksUsed != 0 {
			t.Fatalf("round %d: %d KV blocks used when idle", round, st.KVBlocksUsed)
		}
	}
	t.Logf("largest difference of a batched logit from its single-row evaluation: %g", be.maxDiff)
	if be.maxDiff > 1e-4 {
		t.Errorf("batched logits differ from single-sequence ones by %g, want <= 1e-4", be.maxDiff)
	}
	if be.ref.Stats().BlocksUsed != 0 {
		t.Errorf("reference cache not empty: the engine did not free every sequence")
	}
}

func TestRealTokenOnlyEngine(t *testing.T) {
	m, _ := loadStories(t)
	e, err := New(m, nil, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Generate(context.Background(), Request{PromptTokens: []int32{1, 400, 50}, N: 2, MaxTokens: 20,
		Sampling: SamplingParams{Temperature: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Candidates {
		if len(c.Tokens) != 20 || c.FinishReason != FinishLength || c.Text != "" {
			t.Errorf("candidate %d: %d tokens (%s) text %q, want 20 tokens (length) and no text", c.Index,
				len(c.Tokens), c.FinishReason, c.Text)
		}
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "text"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("text prompt without a tokenizer: %v, want ErrBadRequest", err)
	}
	if _, err := e.Generate(context.Background(), Request{PromptTokens: []int32{1, 512}}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("prompt token outside the vocabulary: %v, want ErrBadRequest", err)
	}
}

// TestRealDecodeAllocations checks that the decode loop allocates nothing per token (beyond the amortized
// growth of each candidate's token slice and text): the allocations of a 250-token request minus those of a
// 50-token one, per extra token and candidate.
func TestRealDecodeAllocations(t *testing.T) {
	m, tok := loadStories(t)
	e, err := New(m, tok, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	run := func(n int) float64 {
		return testing.AllocsPerRun(2, func() {
			res, err := e.Generate(context.Background(), Request{Prompt: "Once", N: 3, MaxTokens: n,
				Sampling: SamplingParams{Temperature: 1, LogitBias: map[int32]float32{tok.EOS(): float32(math.Inf(-1))}}})
			if err != nil || len(res.Candidates[0].Tokens) != n {
				t.Fatalf("generate: %v", err)
			}
		})
	}
	short, long := run(50), run(250)
	perToken := (long - short) / (3 * 200)
	t.Logf("allocations: %.0f for 3x50 tokens, %.0f for 3x250: %.3f per extra token", short, long, perToken)
	if perToken > 0.1 {
		t.Errorf("%.3f allocations per decoded token, want ~0 (amortized)", perToken)
	}
}

// TestRealPromptControlText checks that control-token text in a plain prompt or in a non-special part stays
// text, while a Special part's "</s>" is the end-of-sequence token (the real tokenizer's ids are the reference).
func TestRealPromptControlText(t *testing.T) {
	m, tok := loadStories(t)
	e, err := New(m, tok, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	count := func(req Request) int {
		t.Helper()
		req.MaxTokens = 1
		res, err := e.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res.PromptTokens
	}
	plain := len(tok.Encode("</s>", true, false))
	if plain <= 2 {
		t.Fatalf("\"</s>\" as text is %d tokens with BOS; the case tests nothing", plain)
	}
	if got := count(Request{Prompt: "</s>"}); got != plain {
		t.Errorf("prompt \"</s>\": %d tokens, want %d (BOS + the text's tokens, not BOS + EOS)", got, plain)
	}
	parts := []PromptPart{{Text: "Once upon a time</s>", Special: true}, {Text: "</s>"}}
	want := len(tok.Encode("Once upon a time</s>", true, true)) + plain - 1
	if got := count(Request{PromptParts: parts}); got != want {
		t.Errorf("parts %+v: %d tokens, want %d", parts, got, want)
	}
}

// TestRealJSONMode checks JSON mode on the real model: every candidate that ends by itself is one JSON object
// (encoding/json is the reference), and the streamed text is the candidate's text.
func TestRealJSONMode(t *testing.T) {
	m, tok := loadStories(t)
	e, err := New(m, tok, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A story model writes long strings: nudge the tokens of `"` and `}` so that some candidates close.
	bias := map[int32]float32{}
	for _, id := range tok.Encode(`"}`, false, false) {
		bias[id] = 3
	}
	req := Request{Prompt: "Once upon a time", N: 8, MaxTokens: 200, StreamCandidates: true,
		Sampling: SamplingParams{Temperature: 1, Seed: 1, JSON: true, LogitBias: bias}}
	streamed := make([]strings.Builder, req.N)
	req.OnEvent = func(ev Event) { streamed[ev.Candidate].WriteString(ev.Text) }
	res, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, c := range res.Candidates {
		if streamed[c.Index].String() != c.Text {
			t.Errorf("candidate %d streamed %q, text %q", c.Index, streamed[c.Index].String(), c.Text)
		}
		if c.FinishReason != FinishStop {
			continue
		}
		closed++
		var v map[string]any
		if err := json.Unmarshal([]byte(c.Text), &v); err != nil {
			t.Errorf("candidate %d ended as %q, not a JSON object: %v", c.Index, c.Text, err)
		}
	}
	if closed == 0 {
		t.Errorf("no candidate closed its object in %d tokens: %q", req.MaxTokens, res.Candidates[0].Text)
	}
	t.Logf("%d of %d closed; e.g. %q", closed, req.N, res.Candidates[0].Text)
}
