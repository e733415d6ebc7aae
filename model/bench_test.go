package model

import (
	"os"
	"testing"
)

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
