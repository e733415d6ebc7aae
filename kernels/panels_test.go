package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

// TestPanelKernels calls every AVX-512 panel kernel (Q4_0 and Q8_0, 1 or 2 panels by 1..6 activation rows)
// directly on random weights in the panel layout and quantized activations, and compares each result with
// dotPanel (the integer sums are exact, so only float summation order differs); the outputs sit at a stride
// inside a buffer of guard values, which must stay as they were. It also checks dotPanel against dotQ4_0 and
// dotQ8_0 on the file layout.
func TestPanelKernels(t *testing.T) {
	for _, typ := range []weights.Type{weights.TypeQ4_0, weights.TypeQ8_0} {
		t.Run(typ.String(), func(t *testing.T) { testPanelKernels(t, typ) })
	}
}

func testPanelKernels(t *testing.T, typ weights.Type) {
	rng := rand.New(rand.NewPCG(71, 72))
	p := NewPool(1)
	defer p.Close()
	for _, nb := range []int{0, 2, 8, 22} {
		cols := max(2, nb) * 32
		m := randomMatrix(rng, typ, 2*panelRows, cols)
		if typ == weights.TypeQ8_0 { // the extreme quants too: -128 (never written by llama.cpp) and 127
			m.Data[2], m.Data[3], m.Data[4] = 0x80, 0x7f, 0x81
		}
		rb := m.RowBytes()
		tiles := [2][]byte{make([]byte, len(m.Data)), make([]byte, len(m.Data))} // as 2 panels, as 1 and 1
		interleavePanel(typ, tiles[0], m.Data, rb, cols/32, 2)
		for q := range 2 {
			interleavePanel(typ, tiles[1][q*panelRows*rb:], m.Data[q*panelRows*rb:], rb, cols/32, 1)
		}
		s := &scratch{}
		s.quantizeQ8_0(p, randomVec(rng, panelMaxNR*cols), cols, false, 0, weightOffset(typ))
		nbc := cols / 32
		for r := range 2 * panelRows {
			for a := range panelMaxNR {
				var want float32
				if typ == weights.TypeQ8_0 {
					want = dotQ8_0(m.Data[r*rb:], s.q[a*cols:], s.d[a*nbc:], nbc)
				} else {
					want = dotQ4_0(m.Data[r*rb:], s.q[a*cols:], s.d[a*nbc:], nbc)
				}
				tol := panelTol(typ, m.Data[r*rb:], s.q[a*cols:], s.d[a*nbc:], nbc)
				for np := 1; np <= 2; np++ {
					t0 := r / (np * panelRows) * np * panelRows
					got := dotPanel(typ, tiles[2-np][t0*rb:], r-t0, np, nbc, s.q[a*cols:], s.d[a*nbc:])
					if math.Abs(float64(got-want)) > tol {
						t.Fatalf("%d blocks, tiles of %d panels: dotPanel row %d act %d = %g, file layout %g", nbc, np, r, a,
							got, want)
					}
				}
			}
		}
		if !ISAAVX512VNNI.Supported() {
			continue
		}
		x := unsafe.Slice((*byte)(unsafe.Pointer(&s.q[0])), len(s.q))
		dc := unsafe.Slice((*byte)(unsafe.Pointer(&s.dc[0])), 4*len(s.dc))
		for np := 1; np <= panelMaxP; np++ {
			for nr := 1; nr <= panelMaxNR; nr++ {
				const ostride = 37 // floats from one activation row's results to the next
				data := tiles[2-np]
				checkTile(t, fmt.Sprintf("P%dN%d %d blocks", np, nr, nb), np*panelRows, nr, ostride, func(out *float32) {
					panelKernel(typ, np, nr)(nb, &data[0], &x[0], cols, &dc[0], nbc*8, out, ostride*4)
				}, func(r, a int) (float32, float64) {
					return dotPanel(typ, data, r, np, nb, s.q[a*cols:], s.d[a*nbc:]),
						panelTol(typ, m.Data[r*rb:], s.q[a*cols:], s.d[a*nbc:], nb)
				})
			}
		}
	}
}

// panelTol bounds the float rounding of a dot product of a Q4_0 or Q8_0 row (file layout) with quantized
// activations when only the order of the float operations differs (the block sums are exact integers): 1e-6
// of the sum of the blocks' magnitudes |d_w*d_x*isum|, plus a tiny absolute term.
func panelTol(typ weights.Type, w []byte, xq []int8, xd []float32, nb int) float64 {
	var sum float64
	for b := range nb {
		var isum int32
		if typ == weights.TypeQ8_0 {
			blk := w[b*34 : b*34+34]
			for i := range 32 {
				isum += int32(int8(blk[2+i])) * int32(xq[b*32+i])
			}
			sum += math.Abs(float64(f16(blk)) * float64(xd[b]) * float64(isum))
			continue
		}
		blk := w[b*18 : b*18+18]
		for i := range 16 {
			isum += (int32(blk[2+i]&15)-8)*int32(xq[b*32+i]) + (int32(blk[2+i]>>4)-8)*int32(xq[b*32+16+i])
		}
		sum += math.Abs(float64(f16(blk)) * float64(xd[b]) * float64(isum))
	}
	return 1e-6*sum + 1e-7
}
