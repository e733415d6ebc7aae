package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// vnniISAs lists the VNNI ISAs this CPU runs.
func vnniISAs() []ISA {
	var s []ISA
	for _, isa := range SupportedISAs() {
		if isa.vnni() {
			s = append(s, isa)
		}
	}
	return s
}

// quantizedRecords quantizes batch rows of cols random activations the way MatMul does for weights of typ
// on a VNNI ISA, and returns the records with the block quants, scales and sums the other paths use.
func quantizedRecords(rng *rand.Rand, typ weights.Type, batch, cols int) *scratch {
	p := NewPool(1)
	defer p.Close()
	c := int32(128)
	if typ == weights.TypeQ4_0 {
		c = 8
	}
	s := &scratch{}
	s.quantizeQ8_0(p, randomVec(rng, batch*cols), cols, true, c, 0)
	return s
}

// TestRecordsMatchInterleaved checks the Go form of the VNNI kernels (dotRecords on packRecords' records)
// against the Go loops of the interleaved layout (dotQ8_0I, dotQ4_0I) on the same quantized activations:
// the corrections must undo the weights' +128 or +8 exactly, so only float summation order differs.
func TestRecordsMatchInterleaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		const rows, cols = 5, 768
		m := randomMatrix(rng, typ, rows, cols)
		signed, err := Interleave(m, ISAAVX2)
		if err != nil {
			t.Fatal(err)
		}
		vnni, err := Interleave(m, ISAAVX512VNNI)
		if err != nil {
			t.Fatal(err)
		}
		s := quantizedRecords(rng, typ, 1, cols)
		qi := make([]int8, cols)
		interleaveActs(qi, s.q, 0, cols/groupValues)
		rb, ng := m.RowBytes(), cols/groupValues
		for r := range rows {
			var want float32
			if typ == weights.TypeQ4_0 {
				want = dotQ4_0I(signed.Data[r*rb:], qi, s.d, s.s, ng)
			} else {
				want = dotQ8_0I(signed.Data[r*rb:], qi, s.d, ng, false)
				if b := dotQ8_0I(vnni.Data[r*rb:], qi, s.d, ng, true); math.Abs(float64(b-want)) > 1e-5*math.Abs(float64(want)) {
					t.Fatalf("%v row %d: biased Go loop %g, signed %g", typ, r, b, want)
				}
			}
			got := dotRecords(typ, vnni.Data[r*rb:], s.rec, ng)
			if math.Abs(float64(got-want)) > 1e-5*math.Abs(float64(want))+1e-6 {
				t.Fatalf("%v row %d: records %g, interleaved %g", typ, r, got, want)
			}
		}
	}
}

// TestVNNIKernels calls every VNNI kernel (each ISA, type and MR x NR tile) directly on random weights and
// records and compares each result with dotRecords; the outputs sit at a stride inside a buffer of guard
// values, which must stay as they were.
func TestVNNIKernels(t *testing.T) {
	isas := vnniISAs()
	if len(isas) == 0 {
		t.Skip("no VNNI ISA on this CPU")
	}
	rng := rand.New(rand.NewPCG(43, 44))
	for _, isa := range isas {
		maxMR := 1
		if isa.avx512() {
			maxMR = 2
		}
		for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
			for _, ng := range []int{0, 1, 3} {
				cols := max(1, ng) * groupValues
				m, err := Interleave(randomMatrix(rng, typ, 2, cols), isa)
				if err != nil {
					t.Fatal(err)
				}
				s := quantizedRecords(rng, typ, vnniNR, cols)
				rs := max(1, ng) * vnniRecordBytes
				for mr := 1; mr <= maxMR; mr++ {
					for nr := 1; nr <= vnniNR; nr++ {
						const ostride = 7 // floats from one activation row's results to the next
						rb := m.RowBytes()
						checkTile(t, fmt.Sprintf("%v %v %dx%d %d groups", isa, typ, mr, nr, ng), mr, nr, ostride, func(out *float32) {
							vnniKernel(isa, typ, mr, nr)(ng, &m.Data[0], rb, &s.rec[0], rs, out, ostride*4)
						}, func(r, a int) (float32, float64) {
							want := dotRecords(typ, m.Data[r*rb:], s.rec[a*rs:], ng)
							return want, 1e-5*math.Abs(float64(want)) + 1e-6
						})
					}
				}
			}
		}
	}
}

// checkTile runs kernel on an output buffer of guard values and checks a tile kernel's results: result (r, a)
// for r < rows and a < nr, at out[a*ostride + r], must be within tol of want(r, a), and every other value of
// the buffer (one before out, the gaps between rows of results, two after) must still be the guard.
func checkTile(t *testing.T, name string, rows, nr, ostride int, kernel func(out *float32), want func(r, a int) (float32, float64)) {
	t.Helper()
	sentinel := float32(math.Inf(1))
	buf := make([]float32, 3+nr*ostride)
	for i := range buf {
		buf[i] = sentinel
	}
	kernel(&buf[1])
	for i, v := range buf {
		r, a := (i-1)%ostride, (i-1)/ostride
		if i == 0 || r >= rows || a >= nr {
			if v != sentinel {
				t.Fatalf("%s: wrote buf[%d] = %g outside the tile", name, i, v)
			}
			continue
		}
		w, tol := want(r, a)
		if math.Abs(float64(v-w)) > tol {
			t.Fatalf("%s: result (%d, %d) = %g, want %g", name, r, a, v, w)
		}
	}
}
