package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

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
			p.quant.quantizeQ8_0(p, x, cols, true, 0, 0)
			q := p.quant
			var res [tileBatch]float32
			vs = append(vs, variant{ISAAVX2, func() {
				for a := 0; a+5 <= acts; a += 5 {
					for r := range rows {
						interleavedTileASM(typ, 5, ng, &signed.Data[r*rb], &q.qi[a*cols], &q.d[a*ng*8], &q.ci[a*ng*16],
							cols, ng*8*4, &res[0])
					}
				}
			}})
			out := make([]float32, acts*rows)
			for _, isa := range vnniISAs() {
				mi, _ := Interleave(m, isa)
				s := quantizedRecords(rand.New(rand.NewPCG(1, 1)), typ, acts, cols)
				mr := 1
				if isa.avx512() {
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

// BenchmarkDecodeShare runs the matrix products of one 1.1B decode step (batch 1, as BenchmarkToken) on one
// thread, for each type and each ISA this CPU runs (in its own layout), alternately with a read of as many
// bytes by ReadBandwidth's loop, all timed by the thread's CPU time: "<isa>-share" is the read's time over
// the step's, the share of the read bandwidth the kernels reach (1: as fast as a plain read). Thread CPU
// time leaves out the time other jobs hold the core, so the figure holds on a shared machine; the whole
// forward pass on several threads is `bestofn bench`'s share_of_limit.
func BenchmarkDecodeShare(b *testing.B) {
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeF16} {
		b.Run(typ.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(13, 14))
			mats, total := decodeMats(rng, typ)
			type variant struct {
				isa  ISA
				pool *Pool
				mats []Matrix
			}
			var vs []variant
			for _, isa := range SupportedISAs() {
				if isa == ISAGo {
					continue
				}
				p, err := NewPoolISA(1, isa)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				f := mats
				if interleavable(typ, 2048) {
					f = make([]Matrix, len(mats))
					for i, m := range mats {
						if f[i], err = Interleave(m, isa); err != nil {
							b.Fatal(err)
						}
					}
				}
				vs = append(vs, variant{isa, p, f})
			}
			if interleavable(typ, 2048) {
				mats = nil // each ISA has its copy
			}
			buf := make([]byte, total)
			for i := 0; i < len(buf); i += 4096 {
				buf[i] = 1
			}
			x := randomVec(rng, 5632)
			out := make([]float32, 32000)
			var read time.Duration
			steps := make([]time.Duration, len(vs))
			for b.Loop() {
				for i, v := range vs {
					steps[i] += onThread(func() {
						for _, m := range v.mats {
							v.pool.MatMul(out, m, x, 1)
						}
					})
					read += onThread(func() { v.pool.ReadBandwidth(buf) })
				}
			}
			reads := read.Seconds() / float64(len(vs))
			b.ReportMetric(float64(total)*float64(b.N)/reads/1e9, "read-GB/s")
			for i, v := range vs {
				b.ReportMetric(reads/steps[i].Seconds(), v.isa.String()+"-share")
			}
		})
	}
}

// BenchmarkPanelStream streams 285 MB of Q8_0 weights (2048 columns) through one thread, in the AVX-512 panel
// layout (tiles of 2 panels) and in the biased groups of 8 blocks (2 rows at a time), at 1 and 5 activation
// rows, and reports the read speed of each ("GB/s"): what the panel layout's block order and the absence of
// software prefetch were chosen by (README "Q8_0 panels").
func BenchmarkPanelStream(b *testing.B) {
	if !haveAVX512VNNI() {
		b.Skip("no AVX-512 VNNI on this CPU")
	}
	const cols, rows = 2048, 32 * 4096
	nb := cols / 32
	rng := rand.New(rand.NewPCG(25, 26))
	m := randomMatrix(rng, weights.TypeQ8_0, 32, cols)
	rb := m.RowBytes()
	big := Matrix{Type: weights.TypeQ8_0, Rows: rows, Cols: cols, Data: make([]byte, rows*rb)}
	for r := 0; r < rows; r += 32 {
		copy(big.Data[r*rb:], m.Data)
	}
	panels, err := InterleaveLayout(big, ISAAVX512VNNI, LayoutPanels)
	if err != nil || !panels.Panels {
		b.Fatalf("panels: %v (panel layout %v)", err, panels.Panels)
	}
	groups, err := Interleave(big, ISAAVXVNNI)
	if err != nil || groups.Panels || !groups.Biased {
		b.Fatalf("groups: %v", err)
	}
	big.Data = nil
	p := NewPool(1)
	defer p.Close()
	xs := randomVec(rng, 5*cols)
	var ps, gs scratch
	ps.quantizeQ8_0(p, xs, cols, false, 0, weightOffset(weights.TypeQ8_0))
	gs.quantizeQ8_0(p, xs, cols, false, 128, 0)
	x := unsafe.Slice((*byte)(unsafe.Pointer(&ps.q[0])), len(ps.q))
	dc := unsafe.Slice((*byte)(unsafe.Pointer(&ps.dc[0])), 4*len(ps.dc))
	out := make([]float32, 5*rows)
	for _, nr := range []int{1, 5} {
		b.Run(fmt.Sprintf("nr%d", nr), func(b *testing.B) {
			pk := panelKernel(weights.TypeQ8_0, 2, nr)
			gk := vnniKernel(ISAAVX512VNNI, weights.TypeQ8_0, 2, nr)
			ng := cols / groupValues
			var pt, gt time.Duration
			for b.Loop() {
				pt += onThread(func() {
					for r := 0; r < rows; r += 32 {
						pk(nb, &panels.Data[r*rb], &x[0], cols, &dc[0], nb*8, &out[r], rows*4)
					}
				})
				gt += onThread(func() {
					for r := 0; r < rows; r += 2 {
						gk(ng, &groups.Data[r*rb], rb, &gs.rec[0], ng*vnniRecordBytes, &out[r], rows*4)
					}
				})
			}
			bytes := float64(rows*rb) * float64(b.N)
			b.ReportMetric(bytes/pt.Seconds()/1e9, "panels-GB/s")
			b.ReportMetric(bytes/gt.Seconds()/1e9, "groups-GB/s")
		})
	}
}
