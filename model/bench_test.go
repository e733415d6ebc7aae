package model

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time: on a machine shared with other jobs, CPU time per
// operation is steadier than wall time (reported as cpu-ns/op next to ns/op).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchDecode measures one decode step of one sequence, restarting the sequence after each 256 positions
// following a 128-token prompt. BESTOFN_BENCH_MODEL overrides the model file.
func benchDecode(b *testing.B, threads int) {
	path := storiesGGUF
	if p := os.Getenv("BESTOFN_BENCH_MODEL"); p != "" {
		path = p
	}
	m := openModel(b, path, Options{Threads: threads, ContextLen: 512})
	c := newCache(b, m, CacheOptions{MaxTokens: 512})
	logits := make([]float32, m.Config().VocabSize)
	prompt := make([]int32, 128)
	for i := range prompt {
		prompt[i] = int32(3 + i*7%(m.Config().VocabSize-3))
	}
	seq := newSeq(b, c)
	reset := func() {
		if err := c.Truncate(seq, 0); err != nil {
			b.Fatal(err)
		}
		if err := m.Forward(c, Batch{Tokens: prompt, Seqs: fill(seq, len(prompt))}, logits); err != nil {
			b.Fatal(err)
		}
	}
	reset()
	step := Batch{Tokens: []int32{0}, Seqs: []SeqID{seq}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.Len(seq) == 384 {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		step.Tokens[0] = argmax(logits)
		if err := m.Forward(c, step, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

func BenchmarkDecode1Thread(b *testing.B)  { benchDecode(b, 1) }
func BenchmarkDecode2Threads(b *testing.B) { benchDecode(b, 2) }

// BenchmarkStepVsMatMuls times a decode step at position 128, a step of 5 forked sequences, and the
// single step's matrix products alone
// (same Pool, batch 1), so the ratio of the two shows what the forward pass adds around the kernels:
// norms, RoPE, cache writes, attention, SwiGLU and the pool's sync points. BESTOFN_BENCH_MODEL overrides the
// model file; BESTOFN_BENCH_THREADS the thread count (default 2).
func BenchmarkStepVsMatMuls(b *testing.B) {
	path := storiesGGUF
	if p := os.Getenv("BESTOFN_BENCH_MODEL"); p != "" {
		path = p
	}
	threads := 2
	if v := os.Getenv("BESTOFN_BENCH_THREADS"); v != "" {
		threads = int(v[0] - '0')
	}
	m := openModel(b, path, Options{Threads: threads, ContextLen: 512})
	cfg := m.Config()
	c := newCache(b, m, CacheOptions{MaxTokens: 512})
	logits := make([]float32, cfg.VocabSize)
	seq := newSeq(b, c)
	prompt := make([]int32, 128)
	for i := range prompt {
		prompt[i] = int32(3 + i*7%(cfg.VocabSize-3))
	}
	if err := m.Forward(c, Batch{Tokens: prompt, Seqs: fill(seq, len(prompt))}, logits); err != nil {
		b.Fatal(err)
	}
	b.Run("step", func(b *testing.B) {
		step := Batch{Tokens: []int32{5}, Seqs: []SeqID{seq}}
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
		for i := 0; i < b.N; i++ {
			if err := c.Truncate(seq, 128); err != nil {
				b.Fatal(err)
			}
			if err := m.Forward(c, step, logits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("step5", func(b *testing.B) {
		// Five forks of the prompt decoding together, as best-of-5 does: compare with "step".
		var step Batch
		for range 5 {
			f, err := c.Fork(seq)
			if err != nil {
				b.Fatal(err)
			}
			step.Tokens = append(step.Tokens, 5)
			step.Seqs = append(step.Seqs, f)
			step.Logits = append(step.Logits, true)
		}
		out := make([]float32, 5*cfg.VocabSize)
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
		for i := 0; i < b.N; i++ {
			for _, f := range step.Seqs {
				if err := c.Truncate(f, 128); err != nil {
					b.Fatal(err)
				}
			}
			if err := m.Forward(c, step, out); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, f := range step.Seqs {
			c.Free(f)
		}
	})
	b.Run("matmuls", func(b *testing.B) {
		s := &m.s
		dim, hidden := cfg.Dim, cfg.HiddenDim
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
		for i := 0; i < b.N; i++ {
			for l := range m.layers {
				ly := &m.layers[l]
				m.pool.MatMul(s.q[:cfg.QDim()], ly.wq, s.xb[:dim], 1)
				m.pool.MatMul(s.k[:cfg.KVDim()], ly.wk, s.xb[:dim], 1)
				m.pool.MatMul(s.v[:cfg.KVDim()], ly.wv, s.xb[:dim], 1)
				m.pool.MatMul(s.xo[:dim], ly.wo, s.att[:cfg.QDim()], 1)
				m.pool.MatMul(s.hb[:hidden], ly.wGate, s.xb[:dim], 1)
				m.pool.MatMul(s.hb2[:hidden], ly.wUp, s.xb[:dim], 1)
				m.pool.MatMul(s.xo[:dim], ly.wDown, s.hb[:hidden], 1)
			}
			m.pool.MatMul(logits, m.output, s.xb[:dim], 1)
		}
	})
}

// BenchmarkAttention times the attention step alone (one layer, one token at position 255, one thread).
// BESTOFN_BENCH_MODEL overrides the model.
func BenchmarkAttention(b *testing.B) {
	path := storiesGGUF
	if p := os.Getenv("BESTOFN_BENCH_MODEL"); p != "" {
		path = p
	}
	m := openModel(b, path, Options{Threads: 1, ContextLen: 512})
	cfg := m.Config()
	c := newCache(b, m, CacheOptions{MaxTokens: 512})
	seq := newSeq(b, c)
	prompt := make([]int32, 256)
	for i := range prompt {
		prompt[i] = int32(3 + i*7%(cfg.VocabSize-3))
	}
	if err := m.Forward(c, Batch{Tokens: prompt, Seqs: fill(seq, len(prompt))}, make([]float32, cfg.VocabSize)); err != nil {
		b.Fatal(err)
	}
	s := &m.s
	s.n, s.cache, s.seqs, s.layer, s.pos[0] = 1, c, []SeqID{seq}, 0, 255
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		s.attn.Run(0, cfg.NKVHeads, 0)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPrefill64 evaluates a 64-token prompt as one batch and token by token (ns/op per prompt): the
// ratio is what batching the prompt through the weights saves. BESTOFN_BENCH_MODEL overrides the model.
func BenchmarkPrefill64(b *testing.B) {
	path := storiesGGUF
	if p := os.Getenv("BESTOFN_BENCH_MODEL"); p != "" {
		path = p
	}
	m := openModel(b, path, Options{Threads: 2, ContextLen: 256})
	cfg := m.Config()
	c := newCache(b, m, CacheOptions{MaxTokens: 256})
	seq := newSeq(b, c)
	prompt := make([]int32, 64)
	for i := range prompt {
		prompt[i] = int32(3 + i*11%(cfg.VocabSize-3))
	}
	logits := make([]float32, cfg.VocabSize)
	for _, batched := range []bool{true, false} {
		name := "batch"
		if !batched {
			name = "stepwise"
		}
		b.Run(name, func(b *testing.B) {
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := c.Truncate(seq, 0); err != nil {
					b.Fatal(err)
				}
				if batched {
					if err := m.Forward(c, Batch{Tokens: prompt, Seqs: fill(seq, len(prompt))}, logits); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, tok := range prompt {
					if err := m.Forward(c, Batch{Tokens: []int32{tok}, Seqs: []SeqID{seq}}, logits); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
