package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// TestInterleavedMatMul checks MatMul on interleaved Q8_0 and Q4_0 matrices, in the form of each ISA this CPU
// runs (signed or biased Q8_0) in each layout (groups, and panels for the AVX-512 ISAs) and on every ISA (the ones without kernels for a form fall back to Go), against
// dequantize-then-float64, and against the same matrix in the file layout on the Go loops (the same quantized
// activations, so only float summation order may differ), for batches that use every tile size and more than
// one tile.
func TestInterleavedMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	isas := SupportedISAs()
	for _, threads := range []int{1, 2} {
		p := NewPool(threads)
		defer p.Close()
		for _, cols := range []int{256, 768, 2048} {
			for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
				for _, rows := range []int{1, 7, 33, 48} {
					m := randomMatrix(rng, typ, rows, cols)
					var forms []Matrix
					for _, isa := range isas {
						for _, layout := range []Layout{LayoutGroups, LayoutPanels} {
							mi, err := InterleaveLayout(m, isa, layout)
							if err != nil {
								t.Fatal(err)
							}
							if !mi.Interleaved || len(mi.Data) != rows*m.RowBytes() || mi.Biased != (typ == weights.TypeQ8_0 && isa.vnni()) ||
								mi.Panels != (isa.avx512() && layout == LayoutPanels && rows%16 == 0) {
								t.Fatalf("InterleaveLayout(%v, %v): interleaved %v, biased %v, panels %v, %d bytes", isa, layout,
									mi.Interleaved, mi.Biased, mi.Panels, len(mi.Data))
							}
							forms = append(forms, mi)
						}
					}
					for batch := 1; batch <= 13; batch++ {
						if cols == 2048 && batch%3 != 1 {
							continue
						}
						x := randomVec(rng, batch*cols)
						want, tol := reference(t, m, x, batch)
						p.setISA(ISAGo)
						plain := runMatMul(t, p, m, x, batch)
						for _, isa := range isas {
							p.setISA(isa)
							for _, mi := range forms {
								got := runMatMul(t, p, mi, x, batch)
								for i := range got {
									if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol[i]) {
										t.Fatalf("%v %dx%d batch %d threads %d %v biased %v panels %v: out[%d] = %g, want %g ± %g",
											typ, rows, cols, batch, threads, isa, mi.Biased, mi.Panels, i, got[i], want[i], tol[i])
									}
									if d := math.Abs(float64(got[i] - plain[i])); d > 1e-5*math.Abs(float64(plain[i]))+tol[i]/100 {
										t.Fatalf("%v %dx%d batch %d threads %d %v biased %v panels %v: out[%d] = %g interleaved, %g in file layout",
											typ, rows, cols, batch, threads, isa, mi.Biased, mi.Panels, i, got[i], plain[i])
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestInterleaveRefuses checks that only Q8_0 and Q4_0 matrices of whole 256-value groups are interleaved,
// once, and that Validate refuses an interleaved flag on anything else.
func TestInterleaveRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	q8 := randomMatrix(rng, weights.TypeQ8_0, 3, 256)
	mi, err := Interleave(q8, ISAAuto)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]Matrix{
		"Q4_1":             randomMatrix(rng, weights.TypeQ4_1, 3, 256),
		"96 columns":       randomMatrix(rng, weights.TypeQ8_0, 3, 96),
		"interleaved":      mi,
		"short data":       {Type: weights.TypeQ8_0, Rows: 3, Cols: 256, Data: q8.Data[:100]},
		"F32 with 256 col": randomMatrix(rng, weights.TypeF32, 3, 256),
	} {
		if _, err := Interleave(m, ISAAuto); err == nil {
			t.Errorf("%s: Interleave succeeded", name)
		}
	}
	bad := randomMatrix(rng, weights.TypeQ5_0, 3, 256)
	bad.Interleaved = true
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted an interleaved Q5_0 matrix")
	}
	q4 := randomMatrix(rng, weights.TypeQ4_0, 3, 256)
	q4.Interleaved, q4.Biased = true, true
	if err := q4.Validate(); err == nil {
		t.Error("Validate accepted a biased Q4_0 matrix")
	}
	q8.Biased = true
	if err := q8.Validate(); err == nil {
		t.Error("Validate accepted a biased Q8_0 matrix in the file layout")
	}
	for name, m := range map[string]Matrix{
		"Q4_0 of 3 rows":        {Type: weights.TypeQ4_0, Rows: 3, Cols: 256, Data: q4.Data, Interleaved: true, Panels: true},
		"Q4_0 file layout":      {Type: weights.TypeQ4_0, Rows: 16, Cols: 256, Data: make([]byte, 16*144), Panels: true},
		"Q8_0 of 16 rows":       {Type: weights.TypeQ8_0, Rows: 16, Cols: 256, Data: make([]byte, 16*272), Interleaved: true, Panels: true},
		"Q4_0 of 16, too short": {Type: weights.TypeQ4_0, Rows: 16, Cols: 256, Data: make([]byte, 15*144), Interleaved: true, Panels: true},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("Validate accepted the panel layout on a %s matrix", name)
		}
	}
	ok := Matrix{Type: weights.TypeQ4_0, Rows: 16, Cols: 256, Data: make([]byte, 16*144), Interleaved: true, Panels: true}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate refused a Q4_0 matrix of 16 rows in the panel layout: %v", err)
	}
}
