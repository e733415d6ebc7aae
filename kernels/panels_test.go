package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

// TestPanelKernels calls every AVX-512 panel kernel (1 or 2 panels by 1..6 activation rows) directly on random
// Q4_0 weights in the panel layout and quantized activations, and compares each result with dotPanelQ4_0 (the
// integer sums are exact, so only float summation order differs); the outputs sit at a stride inside a buffer
// of guard values, which must stay as they were. It also checks dotPanelQ4_0 against dotQ4_0 on the file
// layout.
func TestPanelKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	p := NewPool(1)
	defer p.Close()
	for _, nb := range []int{0, 2, 8, 22} {
		cols := max(2, nb) * 32
		m := randomMatrix(rng, weights.TypeQ4_0, 2*panelRows, cols)
		rb := m.RowBytes()
		tiles := [2][]byte{make([]byte, len(m.Data)), make([]byte, len(m.Data))} // as 2 panels, as 1 and 1
		interleavePanelQ4_0(tiles[0], m.Data, rb, cols/32, 2)
		for q := range 2 {
			interleavePanelQ4_0(tiles[1][q*panelRows*rb:], m.Data[q*panelRows*rb:], rb, cols/32, 1)
		}
		s := &scratch{}
		s.quantizeQ8_0(p, randomVec(rng, panelMaxNR*cols), cols, false, 0, true)
		nbc := cols / 32
		for r := range 2 * panelRows {
			for a := range panelMaxNR {
				want := dotQ4_0(m.Data[r*rb:], s.q[a*cols:], s.d[a*nbc:], nbc)
				for np := 1; np <= 2; np++ {
					t0 := r / (np * panelRows) * np * panelRows
					got := dotPanelQ4_0(tiles[2-np][t0*rb:], r-t0, np, nbc, s.q[a*cols:], s.d[a*nbc:])
					if math.Abs(float64(got-want)) > 1e-5*math.Abs(float64(want))+1e-6 {
						t.Fatalf("%d blocks, tiles of %d panels: dotPanelQ4_0 row %d act %d = %g, dotQ4_0 %g", nbc, np, r, a,
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
				sentinel := float32(math.Inf(1))
				buf := make([]float32, 3+nr*ostride)
				for i := range buf {
					buf[i] = sentinel
				}
				out := buf[1:]
				data := tiles[2-np]
				panelKernel(np, nr)(nb, &data[0], &x[0], cols, &dc[0], nbc*8, &out[0], ostride*4)
				for i, v := range buf {
					r, a := (i-1)%ostride, (i-1)/ostride
					if i == 0 || r >= np*panelRows || a >= nr {
						if v != sentinel {
							t.Fatalf("P%dN%d: wrote buf[%d] = %g outside the tile", np, nr, i, v)
						}
						continue
					}
					want := dotPanelQ4_0(data, r, np, nb, s.q[a*cols:], s.d[a*nbc:])
					if math.Abs(float64(v-want)) > 1e-5*math.Abs(float64(want))+1e-6 {
						t.Fatalf("P%dN%d %d blocks: result (%d, %d) = %g, want %g", np, nr, nb, r, a, v, want)
					}
				}
			}
		}
	}
}
