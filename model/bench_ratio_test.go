package model

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/bestofn/bestofn/kernels"
)

// BenchmarkStep5Ratio alternates, step by step, a decode step of one sequence and a step of 5 forks of it
// (as best-of-5 decodes) at position 128, for each ISA this CPU runs (asm ones; the model loaded once per
// ISA), and reports per ISA the ratio of the step-5 time to the step-1 time: the median of the pairs'
// ratios ("<isa>-b5/b1", robust to a shared machine's bursts of load) and the ratio of the totals. The model
// is BESTOFN_BENCH_MODEL (the 1.1B shape from `bestofn synth`; stories260K by default) on
// BESTOFN_BENCH_THREADS threads (default 2).
func BenchmarkStep5Ratio(b *testing.B) {
	path := storiesGGUF
	if p := os.Getenv("BESTOFN_BENCH_MODEL"); p != "" {
		path = p
	}
	threads := 2
	if v := os.Getenv("BESTOFN_BENCH_THREADS"); v != "" {
		threads = int(v[0] - '0')
	}
	type setup struct {
		isa    kernels.ISA
		m      *Model
		c      *KVCache
		seq    SeqID
		forks  Batch
		logits []float32
	}
	var ss []*setup
	for _, isa := range kernels.SupportedISAs() {
		if isa == kernels.ISAGo {
			continue
		}
		m := openModel(b, path, Options{Threads: threads, ContextLen: 512, ISA: isa})
		cfg := m.Config()
		c := newCache(b, m, CacheOptions{MaxTokens: 512})
		s := &setup{isa: isa, m: m, c: c, seq: newSeq(b, c), logits: make([]float32, 5*cfg.VocabSize)}
		prompt := make([]int32, 128)
		for i := range prompt {
			prompt[i] = int32(3 + i*7%(cfg.VocabSize-3))
		}
		if err := m.Forward(c, Batch{Tokens: prompt, Seqs: fill(s.seq, len(prompt))}, s.logits); err != nil {
			b.Fatal(err)
		}
		for range 5 {
			f, err := c.Fork(s.seq)
			if err != nil {
				b.Fatal(err)
			}
			s.forks.Tokens = append(s.forks.Tokens, 5)
			s.forks.Seqs = append(s.forks.Seqs, f)
			s.forks.Logits = append(s.forks.Logits, true)
		}
		ss = append(ss, s)
	}
	step := func(s *setup, batch Batch, seqs ...SeqID) time.Duration {
		for _, id := range seqs {
			if err := s.c.Truncate(id, 128); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		if err := s.m.Forward(s.c, batch, s.logits); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	ratios := make([][]float64, len(ss))
	t1 := make([]time.Duration, len(ss))
	t5 := make([]time.Duration, len(ss))
	for b.Loop() {
		for i, s := range ss {
			d1 := step(s, Batch{Tokens: []int32{5}, Seqs: []SeqID{s.seq}}, s.seq)
			d5 := step(s, s.forks, s.forks.Seqs...)
			t1[i] += d1
			t5[i] += d5
			ratios[i] = append(ratios[i], d5.Seconds()/d1.Seconds())
		}
	}
	for i, s := range ss {
		slices.Sort(ratios[i])
		b.ReportMetric(ratios[i][len(ratios[i])/2], s.isa.String()+"-b5/b1")
		b.ReportMetric(t5[i].Seconds()/t1[i].Seconds(), s.isa.String()+"-b5/b1-total")
		b.ReportMetric(float64(b.N)/t1[i].Seconds(), s.isa.String()+"-b1-steps/s")
	}
}
