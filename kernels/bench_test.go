package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bestofn/bestofn/weights"
)

// BenchmarkStreamSum reads 512 MiB per iteration with ReadBandwidth (the roofline for MatMul's GB/s), on 1
// and 2 threads.
func BenchmarkStreamSum(b *testing.B) {
	buf := make([]byte, 512<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			b.SetBytes(int64(len(buf)))
			loop(b, func() { p.ReadBandwidth(buf) })
		})
	}
}

// The matrix shapes of the 1.1B LLaMA (TinyLlama) forward pass: rows x cols.
var benchShapes = [][2]int{{2048, 2048}, {256, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}}

// BenchmarkMatMul reports GB/s of weights streamed at real shapes, batch 1 and 5, 1 and 2 threads. The "go"
// variants run the pure-Go kernels for comparison.
func BenchmarkMatMul(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeF16, weights.TypeF32,
		weights.TypeBF16, weights.TypeQ4_K, weights.TypeQ6_K, weights.TypeQ5_K} {
		for _, sh := range benchShapes {
			m := randomMatrix(rng, typ, sh[0], sh[1])
			x := randomVec(rng, 8*sh[1])
			out := make([]float32, 8*sh[0])
			for _, threads := range []int{1, 2} {
				p := NewPool(threads)
				for _, batch := range []int{1, 5} {
					for _, isa := range []ISA{ISAAVX2, ISAGo} {
						if !isa.Supported() {
							continue
						}
						name := fmt.Sprintf("%v/%dx%d/b%d/t%d", typ, sh[0], sh[1], batch, threads)
						if isa == ISAGo {
							name += "/go"
						}
						b.Run(name, func(b *testing.B) {
							p.setISA(isa)
							b.SetBytes(int64(len(m.Data)))
							loop(b, func() { p.MatMul(out, m, x, batch) })
						})
					}
				}
				p.Close()
			}
		}
	}
}

// BenchmarkToken runs the MatMuls of one decode step of the 1.1B shape (22 layers of q, k, v, o, gate, up,
// down, then the 32000-row output), with distinct weights per layer so nothing stays in cache, and reports
// tokens/s (steps/s; with batch 5 a step yields 5 tokens, one per sequence).
func BenchmarkToken(b *testing.B) {
	const dim, ffn, kv, layers, vocab = 2048, 5632, 256, 22, 32000
	rng := rand.New(rand.NewPCG(13, 14))
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeF16} {
		var mats []Matrix
		var total int64
		for range layers {
			for _, sh := range [][2]int{{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {ffn, dim}, {ffn, dim}, {dim, ffn}} {
				mats = append(mats, randomMatrix(rng, typ, sh[0], sh[1]))
			}
		}
		mats = append(mats, randomMatrix(rng, typ, vocab, dim))
		for _, m := range mats {
			total += int64(len(m.Data))
		}
		x := randomVec(rng, 8*ffn)
		out := make([]float32, 8*vocab)
		for _, threads := range []int{1, 2} {
			for _, batch := range []int{1, 5} {
				b.Run(fmt.Sprintf("%v/b%d/t%d", typ, batch, threads), func(b *testing.B) {
					p := NewPool(threads)
					defer p.Close()
					b.SetBytes(total)
					loop(b, func() {
						for _, m := range mats {
							p.MatMul(out, m, x, batch)
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
				})
			}
		}
		mats = nil
	}
}

// decodeMats returns the weight matrices of one decode step of the 1.1B shape (see BenchmarkToken).
func decodeMats(rng *rand.Rand, typ weights.Type) ([]Matrix, int64) {
	const dim, ffn, kv, layers, vocab = 2048, 5632, 256, 22, 32000
	var mats []Matrix
	var total int64
	for range layers {
		for _, sh := range [][2]int{{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {ffn, dim}, {ffn, dim}, {dim, ffn}} {
			mats = append(mats, randomMatrix(rng, typ, sh[0], sh[1]))
		}
	}
	mats = append(mats, randomMatrix(rng, typ, vocab, dim))
	for _, m := range mats {
		total += int64(len(m.Data))
	}
	return mats, total
}

// decodeStep times one MatMul of x with each matrix of mats at the given batch.
func decodeStep(p *Pool, mats []Matrix, out, x []float32, batch int) time.Duration {
	t0 := time.Now()
	for _, m := range mats {
		p.MatMul(out, m, x, batch)
	}
	return time.Since(t0)
}

// BenchmarkBatchRatio runs the 1.1B decode step (as BenchmarkToken) at batch 1 and batch 5 alternately on 2
// threads, so that both see the same machine load, and reports the batch-5/batch-1 time ratio ("b5/b1": 1
// means five sequences cost as much as one) with the steps/s of each.
func BenchmarkBatchRatio(b *testing.B) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeF16} {
		mats, _ := decodeMats(rng, typ)
		x := randomVec(rng, 8*5632)
		out := make([]float32, 8*32000)
		b.Run(typ.String(), func(b *testing.B) {
			p := NewPool(2)
			defer p.Close()
			var t1, t5 time.Duration
			for b.Loop() {
				t1 += decodeStep(p, mats, out, x, 1)
				t5 += decodeStep(p, mats, out, x, 5)
			}
			n := float64(b.N)
			b.ReportMetric(t5.Seconds()/t1.Seconds(), "b5/b1")
			b.ReportMetric(n/t1.Seconds(), "b1-steps/s")
			b.ReportMetric(n/t5.Seconds(), "b5-steps/s")
		})
		mats = nil
	}
}

// cpuTime returns the CPU time the process has used, to report cpu-ms/op next to wall time: on a shared
// machine wall time includes time other processes hold the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports process CPU milliseconds per op.
func loop(b *testing.B, f func()) {
	c0 := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
}

type nopTask struct{}

func (nopTask) Run(lo, hi, worker int) {}

// BenchmarkDispatch measures the cost of waking the pool's workers for one Run, and of the smallest real
// MatMuls (stories260K: 64x64 and the 512x64 classifier), which decide the speed of tiny models.
func BenchmarkDispatch(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, threads := range []int{1, 2} {
		p := NewPool(threads)
		b.Run(fmt.Sprintf("run/t%d", threads), func(b *testing.B) {
			var t nopTask
			for b.Loop() {
				p.Run(1000, 1, t)
			}
		})
		for _, rows := range []int{64, 512} {
			m := randomMatrix(rng, weights.TypeF32, rows, 64)
			x := randomVec(rng, 64)
			out := make([]float32, rows)
			b.Run(fmt.Sprintf("f32-%dx64/t%d", rows, threads), func(b *testing.B) {
				for b.Loop() {
					p.MatMul(out, m, x, 1)
				}
			})
		}
		p.Close()
	}
}

// BenchmarkAttentionRows compares one head's attention over 512 cached positions (head_dim 64, rows 256
// floats apart as in the 1.1B KV cache) done position by position with DotF32/AxpyF32 against
// DotRowsF32/AxpyRowsF32.
func BenchmarkAttentionRows(b *testing.B) {
	const hd, kvDim, npos = 64, 256, 512
	rng := rand.New(rand.NewPCG(21, 22))
	kc := randomVec(rng, npos*kvDim)
	q := randomVec(rng, hd)
	scores := make([]float32, npos)
	out := make([]float32, hd)
	b.Run("per-position", func(b *testing.B) {
		for b.Loop() {
			for p := range npos {
				scores[p] = DotF32(q, kc[p*kvDim:p*kvDim+hd])
			}
			for p := range npos {
				AxpyF32(scores[p], kc[p*kvDim:p*kvDim+hd], out)
			}
		}
	})
	b.Run("rows", func(b *testing.B) {
		for b.Loop() {
			DotRowsF32(scores, kc, kvDim, q)
			AxpyRowsF32(out, kc, kvDim, scores)
		}
	})
}

// BenchmarkInterleavedRatio runs the 1.1B decode step of Q8_0 and Q4_0 weights in the file layout and
// interleaved (Interleave), at batch 1 and 5, alternately on 2 threads, and reports the interleaved/file time
// ratio at each batch and the b5/b1 ratio of each layout (the best-of-5 cost of the matmuls).
func BenchmarkInterleavedRatio(b *testing.B) {
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		b.Run(typ.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(13, 14))
			mats, _ := decodeMats(rng, typ)
			inter := make([]Matrix, len(mats))
			for i, m := range mats {
				var err error
				if inter[i], err = Interleave(m, ISAAuto); err != nil {
					b.Fatal(err)
				}
			}
			x := randomVec(rng, 8*5632)
			out := make([]float32, 8*32000)
			p := NewPool(2)
			defer p.Close()
			var f1, f5, i1, i5 time.Duration
			for b.Loop() {
				f1 += decodeStep(p, mats, out, x, 1)
				i1 += decodeStep(p, inter, out, x, 1)
				f5 += decodeStep(p, mats, out, x, 5)
				i5 += decodeStep(p, inter, out, x, 5)
			}
			b.ReportMetric(i1.Seconds()/f1.Seconds(), "b1_inter/file")
			b.ReportMetric(i5.Seconds()/f5.Seconds(), "b5_inter/file")
			b.ReportMetric(i5.Seconds()/i1.Seconds(), "inter_b5/b1")
			b.ReportMetric(f5.Seconds()/f1.Seconds(), "file_b5/b1")
		})
	}
}

// isaMats returns, for each assembly ISA this CPU runs, a pool of 2 threads and the matrices of mats in the
// interleaved form that ISA reads (mats themselves are left alone).
func isaMats(b *testing.B, mats []Matrix) (isas []ISA, pools []*Pool, forms [][]Matrix) {
	for _, isa := range SupportedISAs() {
		if isa == ISAGo {
			continue
		}
		p, err := NewPoolISA(2, isa)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		f := make([]Matrix, len(mats))
		for i, m := range mats {
			if f[i], err = Interleave(m, isa); err != nil {
				b.Fatal(err)
			}
		}
		isas, pools, forms = append(isas, isa), append(pools, p), append(forms, f)
	}
	return isas, pools, forms
}

// BenchmarkISAStep runs the 1.1B decode step (as BenchmarkToken) of Q8_0 and Q4_0 weights at batch 1 and 5 on
// each assembly ISA this CPU runs, in its interleaved form, alternately on 2 threads, and reports each ISA's
// steps/s, its b5/b1 ratio and its time relative to AVX2's ("<isa>/avx2-b1", "-b5"): the pairing of the old
// (AVX2) and new (VNNI) kernels at real shapes.
func BenchmarkISAStep(b *testing.B) {
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		b.Run(typ.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(13, 14))
			mats, _ := decodeMats(rng, typ)
			isas, pools, forms := isaMats(b, mats)
			mats = nil
			x := randomVec(rng, 8*5632)
			out := make([]float32, 8*32000)
			t1 := make([]time.Duration, len(isas))
			t5 := make([]time.Duration, len(isas))
			for b.Loop() {
				for i := range isas {
					t1[i] += decodeStep(pools[i], forms[i], out, x, 1)
					t5[i] += decodeStep(pools[i], forms[i], out, x, 5)
				}
			}
			n := float64(b.N)
			for i, isa := range isas {
				b.ReportMetric(n/t1[i].Seconds(), isa.String()+"-b1-steps/s")
				b.ReportMetric(t5[i].Seconds()/t1[i].Seconds(), isa.String()+"-b5/b1")
				if isa != ISAAVX2 && isas[len(isas)-1] == ISAAVX2 {
					a := len(isas) - 1
					b.ReportMetric(t1[i].Seconds()/t1[a].Seconds(), isa.String()+"/avx2-b1")
					b.ReportMetric(t5[i].Seconds()/t5[a].Seconds(), isa.String()+"/avx2-b5")
				}
			}
		})
	}
}

// BenchmarkISAPrefill runs the matrices of one 1.1B layer (q, k, v, o, gate, up, down) on a batch of 64 rows
// (a 64-token prompt) on each assembly ISA this CPU runs, alternately on 2 threads, and reports each ISA's
// rows/s through the layer and its time relative to AVX2's.
func BenchmarkISAPrefill(b *testing.B) {
	const dim, ffn, kv, batch = 2048, 5632, 256, 64
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		b.Run(typ.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(15, 16))
			var mats []Matrix
			for _, sh := range [][2]int{{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim}, {ffn, dim}, {ffn, dim}, {dim, ffn}} {
				mats = append(mats, randomMatrix(rng, typ, sh[0], sh[1]))
			}
			isas, pools, forms := isaMats(b, mats)
			x := randomVec(rng, batch*ffn)
			out := make([]float32, batch*ffn)
			ts := make([]time.Duration, len(isas))
			for b.Loop() {
				for i := range isas {
					ts[i] += decodeStep(pools[i], forms[i], out, x, batch)
				}
			}
			for i, isa := range isas {
				b.ReportMetric(float64(b.N*batch)/ts[i].Seconds(), isa.String()+"-rows/s")
				if isa != ISAAVX2 && isas[len(isas)-1] == ISAAVX2 {
					b.ReportMetric(ts[i].Seconds()/ts[len(isas)-1].Seconds(), isa.String()+"/avx2")
				}
			}
		})
	}
}

// BenchmarkPanelRatio runs the 1.1B decode step of Q4_0 and Q8_0 weights on this CPU's best ISA (when it has AVX-512)
// in the panel layout of Interleave and in the groups of 8 blocks the other VNNI ISAs read (Interleave for
// avxvnni), at batch 1 and 5, alternately, and reports the panels/groups time ratio at each batch and the
// b5/b1 ratio of each layout (the best-of-5 cost of the matmuls): the median of the ratios of each round's
// steps, robust to a shared machine's bursts of load. t1 runs one thread timed by its CPU time (steadiest),
// t2 two threads by wall time; prefill compares batches of 8 and 64 on the first two layers (one thread).
func BenchmarkPanelRatio(b *testing.B) {
	if !BestISA().avx512() {
		b.Skip("no AVX-512 VNNI on this CPU")
	}
	for _, typ := range []weights.Type{weights.TypeQ4_0, weights.TypeQ8_0} {
		b.Run(typ.String(), func(b *testing.B) { benchmarkPanelRatio(b, typ) })
	}
}

func benchmarkPanelRatio(b *testing.B, typ weights.Type) {
	rng := rand.New(rand.NewPCG(13, 14))
	mats, _ := decodeMats(rng, typ)
	groups := make([]Matrix, len(mats))
	panels := make([]Matrix, len(mats))
	for i, m := range mats {
		var err error
		if groups[i], err = InterleaveLayout(m, ISAAuto, LayoutGroups); err != nil {
			b.Fatal(err)
		}
		if panels[i], err = InterleaveLayout(m, ISAAuto, LayoutPanels); err != nil {
			b.Fatal(err)
		}
		if !panels[i].Panels || groups[i].Panels {
			b.Fatalf("matrix %d: panels %v and %v", i, panels[i].Panels, groups[i].Panels)
		}
	}
	mats = nil
	x := randomVec(rng, 8*5632)
	out := make([]float32, 8*32000)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			p := NewPool(threads)
			defer p.Close()
			step := func(mats []Matrix, batch int) float64 {
				if threads == 1 {
					return onThread(func() { decodeStep(p, mats, out, x, batch) }).Seconds()
				}
				return decodeStep(p, mats, out, x, batch).Seconds()
			}
			var r1, r5, rp, rg []float64
			for b.Loop() {
				g1, p1, g5, p5 := step(groups, 1), step(panels, 1), step(groups, 5), step(panels, 5)
				r1, r5, rp, rg = append(r1, p1/g1), append(r5, p5/g5), append(rp, p5/p1), append(rg, g5/g1)
			}
			b.ReportMetric(median(r1), "b1_panels/groups")
			b.ReportMetric(median(r5), "b5_panels/groups")
			b.ReportMetric(median(rp), "panels_b5/b1")
			b.ReportMetric(median(rg), "groups_b5/b1")
		})
	}
	// Prefill-sized batches on the first two layers' matrices, one thread, CPU time.
	b.Run("prefill", func(b *testing.B) {
		p := NewPool(1)
		defer p.Close()
		x := randomVec(rng, 64*5632)
		out := make([]float32, 64*5632)
		var r8, r64 []float64
		for b.Loop() {
			for _, batch := range []int{8, 64} {
				g := onThread(func() { decodeStep(p, groups[:14], out, x, batch) }).Seconds()
				pp := onThread(func() { decodeStep(p, panels[:14], out, x, batch) }).Seconds()
				if batch == 8 {
					r8 = append(r8, pp/g)
				} else {
					r64 = append(r64, pp/g)
				}
			}
		}
		b.ReportMetric(median(r8), "b8_panels/groups")
		b.ReportMetric(median(r64), "b64_panels/groups")
	})
}

// median returns the median of v (sorting it).
func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
