package train

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bestofn/bestofn/model"
)

// BenchShape is a model shape and batch for training-speed measurements.
type BenchShape struct {
	Name          string
	Config        model.Config
	Batch, SeqLen int
}

// BenchShapes returns the shapes of issue 14's speed table (scripts/bench_train_torch.py has the same):
// stories260K's (dim 64, 5 layers, 8 heads, 4 kv heads, hidden 172, vocab 512; batch 8 x 256), a 1.15M
// model (dim 128, 6 layers, hidden 344, vocab 512; 8 x 256) and stories15M's 15.2M (dim 288, 6 layers, 6
// heads, hidden 768, vocab 32000; 4 x 256), all with tied embeddings.
func BenchShapes() []BenchShape {
	cfg := func(dim, hidden, layers, heads, kv, vocab int) model.Config {
		return model.Config{Arch: "llama", Dim: dim, HiddenDim: hidden, NLayers: layers, NHeads: heads, NKVHeads: kv,
			HeadDim: dim / heads, VocabSize: vocab, ContextLen: 256, NormEps: 1e-5, RopeTheta: 10000,
			RopeScaling: model.RopeScalingNone, RopeScaleFactor: 1, TiedOutput: true}
	}
	return []BenchShape{
		{Name: "260k", Config: cfg(64, 172, 5, 8, 4, 512), Batch: 8, SeqLen: 256},
		{Name: "1m", Config: cfg(128, 344, 6, 8, 4, 512), Batch: 8, SeqLen: 256},
		{Name: "15m", Config: cfg(288, 768, 6, 6, 6, 32000), Batch: 4, SeqLen: 256},
	}
}

// BenchResult is one training-speed measurement.
type BenchResult struct {
	Shape   string `json:"shape"`
	Params  int    `json:"params"`
	Batch   int    `json:"batch"`
	SeqLen  int    `json:"seq_len"`
	Threads int    `json:"threads"`
	Steps   int    `json:"steps"`
	// Seconds is the wall time of the timed steps (after one warm-up step).
	Seconds float64 `json:"seconds"`
	// TokensPerSecond counts trained tokens (Batch·SeqLen per step).
	TokensPerSecond float64 `json:"tok_s"`
	// FLOPS is 6 FLOPs per parameter per token times TokensPerSecond.
	FLOPS float64 `json:"flop_s"`
}

// BenchTrain times full optimizer steps of a language model of the given shape on random tokens: forward,
// backward (next-token loss on every position), gradient clipping and AdamW, as
// scripts/bench_train_torch.py does in torch. Threads caps the worker threads (0: one per CPU).
func BenchTrain(shape BenchShape, threads, steps int) (BenchResult, error) {
	if steps < 1 {
		return BenchResult{}, fmt.Errorf("train: bench needs at least one step, not %d", steps)
	}
	n := shape.Batch * shape.SeqLen
	m, err := New(shape.Config, Options{Threads: threads, MaxTokens: n, MaxSeqLen: shape.SeqLen}, 1)
	if err != nil {
		return BenchResult{}, err
	}
	defer m.Close()
	opt, err := NewAdamW(m, DefaultAdamW)
	if err != nil {
		return BenchResult{}, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := make([]Sequence, shape.Batch)
	for i := range seqs {
		data := make([]int32, shape.SeqLen+1)
		for j := range data {
			data[j] = int32(rng.IntN(shape.Config.VocabSize))
		}
		seqs[i] = Sequence{Tokens: data[:shape.SeqLen], Targets: data[1:]}
	}
	step := func() error {
		m.ZeroGrad()
		if _, _, err := m.LMLoss(seqs, 1/float32(n), true); err != nil {
			return err
		}
		m.ClipGradNorm(1)
		opt.Step(1e-4)
		return nil
	}
	if err := step(); err != nil { // warm-up
		return BenchResult{}, err
	}
	t0 := time.Now()
	for range steps {
		if err := step(); err != nil {
			return BenchResult{}, err
		}
	}
	el := time.Since(t0).Seconds()
	tps := float64(n*steps) / el
	return BenchResult{Shape: shape.Name, Params: m.NumParams(), Batch: shape.Batch, SeqLen: shape.SeqLen,
		Threads: m.opts.Threads, Steps: steps, Seconds: el, TokensPerSecond: tps,
		FLOPS: 6 * float64(m.NumParams()) * tps}, nil
}
