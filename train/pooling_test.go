package train

import (
	"math"
	"testing"
)

// TestMeanPooling checks PoolMean against its definition through PoolLast: by causality, the mean of the
// final-normed hidden states of a sequence's tokens is the mean of the last-token states of its prefixes, so a
// mean-pooled score must be the mean of the last-token scores of the prefixes, and its gradient the mean of their
// gradients (same weights: same shape and seed). Sequences batched together must score as they do alone.
func TestMeanPooling(t *testing.T) {
	newModel := func(p Pooling) *Model {
		m, err := New(tinyConfig(), Options{Head: HeadReward, Threads: 2, MaxTokens: 256, MaxSeqLen: 64, Pooling: p}, 42)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	mean, last := newModel(PoolMean), newModel(PoolLast)
	seqs := [][]int32{{1, 5, 9, 13, 2, 7, 30}, {3}, {4, 4, 4, 8, 39, 0, 11, 21, 6, 17, 25}}

	batch := make([]float32, len(seqs))
	if err := mean.Scores(seqs, batch); err != nil {
		t.Fatal(err)
	}
	for i, sq := range seqs {
		one := make([]float32, 1)
		mean.ZeroGrad()
		if err := mean.Scores([][]int32{sq}, one); err != nil {
			t.Fatal(err)
		}
		if err := mean.BackwardScores([]float32{1}); err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(float64(one[0] - batch[i])); d > 1e-5 {
			t.Errorf("sequence %d scores %g alone, %g in a batch", i, one[0], batch[i])
		}

		last.ZeroGrad()
		var want float64
		for n := 1; n <= len(sq); n++ {
			s := make([]float32, 1)
			if err := last.Scores([][]int32{sq[:n]}, s); err != nil {
				t.Fatal(err)
			}
			if err := last.BackwardScores([]float32{1 / float32(len(sq))}); err != nil {
				t.Fatal(err)
			}
			want += float64(s[0]) / float64(len(sq))
		}
		if d := math.Abs(float64(one[0]) - want); d > 1e-5 {
			t.Errorf("sequence %d: mean-pooled score %g, mean of the prefixes' last-token scores %g", i, one[0], want)
		}
		gm, gl := mean.Grads(), last.Grads()
		for k := range gm {
			var diff, norm float64
			for j := range gm[k].Data {
				d := float64(gm[k].Data[j] - gl[k].Data[j])
				diff += d * d
				norm += float64(gl[k].Data[j]) * float64(gl[k].Data[j])
			}
			if math.Sqrt(diff) > 1e-4*math.Max(math.Sqrt(norm), 1e-3) {
				t.Errorf("sequence %d: %s: gradient differs by %.3g (norm %.3g)", i, gm[k].Name, math.Sqrt(diff), math.Sqrt(norm))
			}
		}
	}
	if _, err := New(tinyConfig(), Options{Head: HeadLM, Pooling: PoolMean}, 1); err == nil {
		t.Error("a language model with PoolMean was accepted")
	}
}
