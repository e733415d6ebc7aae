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
