//go:build amd64

package kernels

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bestofn/bestofn/weights"
)

// BenchmarkQ8_0TileHot times the Q8_0 tile kernels on weights that stay in L2 (16 rows of 2048 values), so
// memory is not the limit: it reports nanoseconds per (weight block, activation row) pair for one row at a
// time (T1) and five (T5), and "t5_pair/t1_pair". A decode step of the 1.1B shape at batch 5 is 5 x 34.4M
// such pairs over the threads; when that compute exceeds the batch-1 step's memory time, batch 5 is
// compute-bound and BatchRatio's b5/b1 tracks this kernel's speed, not memory.
func BenchmarkQ8_0TileHot(b *testing.B) {
	if !haveASM() {
		b.Skip("no AVX2")
	}
	const nb, rows = 64, 16
	rng := rand.New(rand.NewPCG(21, 22))
	w := make([]byte, rows*nb*34)
	for i := range w {
		w[i] = byte(rng.IntN(255) - 127)
	}
	for i := 0; i < rows*nb; i++ {
		w[i*34], w[i*34+1] = 0x00, 0x3c // fp16 1.0 scales
	}
	xq := make([]int8, 5*nb*32)
	for i := range xq {
		xq[i] = int8(rng.IntN(255) - 127)
	}
	xd := make([]float32, nb*8+8)
	var res [tileBatch]float32
	var t1, t5 time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range 5 {
			for r := range rows {
				dotQ8_0T1(nb, &w[r*nb*34], &xq[0], &xd[0], 0, 0, &res[0])
			}
		}
		t1 += time.Since(t0)
		t0 = time.Now()
		for r := range rows {
			dotQ8_0T5(nb, &w[r*nb*34], &xq[0], &xd[0], nb*32, 32, &res[0])
		}
		t5 += time.Since(t0)
	}
	pairs := float64(b.N * 5 * rows * nb)
	b.ReportMetric(float64(t1.Nanoseconds())/pairs, "t1-ns/pair")
	b.ReportMetric(float64(t5.Nanoseconds())/pairs, "t5-ns/pair")
	b.ReportMetric(t5.Seconds()/t1.Seconds(), "t5_pair/t1_pair")
}

// BenchmarkInterleavedTileHot times the interleaved AVX2 Q8_0 and Q4_0 kernels (dotQ8_0IT<t>, dotQ4_0IT<t>) on
// weights that stay in L2 (16 rows of 2048 values), so memory is not the limit: nanoseconds per (weight block,
// activation row) pair for one activation row at a time (t1) and five (t5), and their ratio. At batch 5 a
// decode step is compute-bound when 5 x pairs x t5-ns/pair (over the threads) exceeds the batch-1 step's
// memory time.
func BenchmarkInterleavedTileHot(b *testing.B) {
	if !haveASM() {
		b.Skip("no AVX2")
	}
	const ng, rows = 8, 16 // 2048 values per row
	rng := rand.New(rand.NewPCG(23, 24))
	xq := make([]int8, 5*ng*groupValues)
	for i := range xq {
		xq[i] = int8(rng.IntN(255) - 127)
	}
	xd := make([]float32, 5*ng*groupBlocks)
	xc := make([]int16, 5*ng*16)
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		gb := groupBytes(typ)
		w := make([]byte, rows*ng*gb)
		for i := range w {
			w[i] = byte(rng.IntN(255) - 127)
		}
		for g := range rows * ng {
			for j := range groupBlocks {
				w[g*gb+2*j], w[g*gb+2*j+1] = 0x00, 0x3c // fp16 1.0 scales
			}
		}
		var res [tileBatch]float32
		b.Run(typ.String(), func(b *testing.B) {
			var t1, t5 time.Duration
			for b.Loop() {
				t0 := time.Now()
				for k := range 5 {
					for r := range rows {
						interleavedTileASM(typ, 1, ng, &w[r*ng*gb], &xq[k*ng*groupValues], &xd[k*ng*groupBlocks], &xc[k*ng*16], 0, 0, &res[0])
					}
				}
				t1 += time.Since(t0)
				t0 = time.Now()
				for r := range rows {
					interleavedTileASM(typ, 5, ng, &w[r*ng*gb], &xq[0], &xd[0], &xc[0], ng*groupValues, 4*ng*groupBlocks, &res[0])
				}
				t5 += time.Since(t0)
			}
			pairs := float64(b.N * 5 * rows * ng * groupBlocks)
			b.ReportMetric(float64(t1.Nanoseconds())/pairs, "t1-ns/pair")
			b.ReportMetric(float64(t5.Nanoseconds())/pairs, "t5-ns/pair")
			b.ReportMetric(t5.Seconds()/t1.Seconds(), "t5_pair/t1_pair")
		})
	}
}
