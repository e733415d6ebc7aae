package train

import (
	"testing"
)

// BenchmarkTrainStep times one optimizer step (forward, backward, clipping, AdamW) at the shapes of
// BenchShapes and reports training tokens per second and GFLOP/s (6 FLOPs per parameter per token):
//
//	go test ./train -run XXX -bench TrainStep -benchtime 3x
//	BESTOFN_BENCH_THREADS=1 go test ./train -run XXX -bench TrainStep/260k
func BenchmarkTrainStep(b *testing.B) {
	for _, sh := range BenchShapes() {
		b.Run(sh.Name, func(b *testing.B) {
			res, err := BenchTrain(sh, benchThreads(b), b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.TokensPerSecond, "tok/s")
			b.ReportMetric(res.FLOPS/1e9, "GFLOP/s")
			b.ReportMetric(res.Seconds/float64(b.N)*1e9, "ns/op")
		})
	}
}

// BenchmarkRewardStep times a reward model's forward and backward pass (no optimizer step) on stories260K's
// backbone: 16 sequences of 256 tokens, as 8 pairs of a reward batch.
func BenchmarkRewardStep(b *testing.B) {
	m, err := Open(storiesGGUF, Options{Head: HeadReward, Threads: benchThreads(b), MaxTokens: 4096, MaxSeqLen: 256}, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	seqs := make([][]int32, 16)
	for i := range seqs {
		seqs[i] = randomTokens(uint64(i), 256, 512)
	}
	scores, d := make([]float32, 16), make([]float32, 16)
	for i := range d {
		d[i] = 0.01
	}
	for b.Loop() {
		m.ZeroGrad()
		if err := m.Scores(seqs, scores); err != nil {
			b.Fatal(err)
		}
		if err := m.BackwardScores(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(16*256*b.N)/b.Elapsed().Seconds(), "tok/s")
}
