package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/weights"
)

const (
	storiesDir  = "../../shared/models/stories260K/"
	storiesGGUF = storiesDir + "stories260K.gguf"
	storiesBin  = storiesDir + "stories260K.bin"
)

// randomTokens returns n tokens drawn from [0, vocab) by a seeded source.
func randomTokens(seed uint64, n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(rng.IntN(vocab))
	}
	return t
}

// servingLogits returns package model's logits of every position of tokens.
func servingLogits(t *testing.T, ck *weights.Checkpoint, tokens []int32) []float32 {
	t.Helper()
	sm, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	cache, err := model.NewKVCache(sm.Config(), model.CacheOptions{MaxTokens: len(tokens) + 16})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := cache.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	b := model.Batch{Tokens: tokens, Seqs: make([]model.SeqID, len(tokens)), Logits: make([]bool, len(tokens))}
	for i := range b.Seqs {
		b.Seqs[i], b.Logits[i] = seq, true
	}
	out := make([]float32, len(tokens)*sm.Config().VocabSize)
	if err := sm.Forward(cache, b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// storiesHF is model's Hugging Face export of stories260K (safetensors with q/k in rotate-half order).
const storiesHF = "../model/testdata/stories260K_hf"

// TestLogitsMatchServing checks the trainer's forward pass against package model's on the same checkpoint,
// for the three files of stories260K (GGUF, llama2.c, safetensors), over a sequence longer than one
// attention block.
func TestLogitsMatchServing(t *testing.T) {
	for _, path := range []string{storiesGGUF, storiesBin, storiesHF} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ck, err := weights.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			m, err := FromCheckpoint(ck, Options{Threads: 2, MaxTokens: 256}, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			tokens := randomTokens(7, 150, m.Config().VocabSize)
			want := servingLogits(t, ck, tokens)
			got := make([]float32, len(want))
			if err := m.Logits(tokens, got); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := range got {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			t.Logf("max |logit difference| = %.3g over %d values", worst, len(got))
			if worst > 1e-4 {
				t.Fatalf("logits differ from package model's by %g > 1e-4", worst)
			}
		})
	}
}
