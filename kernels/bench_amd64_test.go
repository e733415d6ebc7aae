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

// BenchmarkVNNITileHot times the kernels of a batch of several rows (prefill) on weights that stay in L2
// (32 rows of 2048 values) and 12 activation rows, one thread, by the thread's CPU time (steady on a shared
// machine): the AVX2 interleaved tile (1 weight row x 5 activation rows) against each VNNI ISA's widest tile
// (2 x 6 on AVX-512, 1 x 6 on AVX-VNNI), in nanoseconds per 256-value dot product ("<isa>-ns/dot") and
// multiply-adds per nanosecond; the VNNI kernels' time relative to AVX2's is "<isa>/avx2".
func BenchmarkVNNITileHot(b *testing.B) {
	const rows, cols, acts = 32, 2048, 12
	ng := cols / groupValues
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		b.Run(typ.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(23, 24))
			m := randomMatrix(rng, typ, rows, cols)
			x := randomVec(rng, acts*cols)
			rb := m.RowBytes()
			type variant struct {
				isa ISA
				run func()
			}
			var vs []variant
			signed, _ := Interleave(m, ISAAVX2)
			p := NewPool(1)
			defer p.Close()
			p.quant.quantizeQ8_0(p, x, cols, true, 0)
			q := p.quant
			var res [tileBatch]float32
			vs = append(vs, variant{ISAAVX2, func() {
				for a := 0; a+5 <= acts; a += 5 {
					for r := range rows {
						interleavedTileASM(typ, 5, ng, &signed.Data[r*rb], &q.qi[a*cols], &q.d[a*ng*8], &q.s[a*ng*8],
							cols, ng*8*4, &res[0])
					}
				}
			}})
			out := make([]float32, acts*rows)
			for _, isa := range vnniISAs() {
				mi, _ := Interleave(m, isa)
				s := quantizedRecords(rand.New(rand.NewPCG(1, 1)), typ, acts, cols)
				mr := 1
				if isa == ISAAVX512VNNI {
					mr = 2
				}
				k := vnniKernel(isa, typ, mr, vnniNR)
				rs := ng * vnniRecordBytes
				vs = append(vs, variant{isa, func() {
					for a := 0; a < acts; a += vnniNR {
						for r := 0; r < rows; r += mr {
							k(ng, &mi.Data[r*rb], rb, &s.rec[a*rs], rs, &out[a*rows+r], rows*4)
						}
					}
				}})
			}
			ts := make([]time.Duration, len(vs))
			dots := make([]float64, len(vs))
			const reps = 8 // per timing, so that the clock reads and thread locking cost little
			for b.Loop() {
				for i, v := range vs {
					ts[i] += onThread(func() {
						for range reps {
							v.run()
						}
					})
					n := acts
					if v.isa == ISAAVX2 {
						n = acts / 5 * 5
					}
					dots[i] += float64(reps * rows * n * ng)
				}
			}
			for i, v := range vs {
				ns := float64(ts[i].Nanoseconds()) / dots[i]
				b.ReportMetric(ns, v.isa.String()+"-ns/dot")
				b.ReportMetric(256/ns, v.isa.String()+"-MAC/ns")
				if i > 0 {
					b.ReportMetric(ns/(float64(ts[0].Nanoseconds())/dots[0]), v.isa.String()+"/avx2")
				}
			}
		})
	}
}
