package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// TestAMXMatMul runs prefill-sized batches through the AMX kernels (whole panels of 16 rows, a partial last
// tile of activation rows, rows past the last panel on the VNNI kernels) and checks them against
// dequantize-then-float64 and against the Go loops on the same matrix, which see the same quantized
// activations, so only float summation order may differ.
func TestAMXMatMul(t *testing.T) {
	if !ISAAMX.Supported() {
		t.Skip("no AMX-INT8 on this CPU (or Linux refused the permission)")
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, threads := range []int{1, 2} {
		p, err := NewPoolISA(threads, ISAAMX)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
			for _, sh := range [][3]int{{53, 1280, 64}, {32, 256, 8}, {16, 512, 37}, {70, 768, 17}} {
				rows, cols, batch := sh[0], sh[1], sh[2]
				m := randomMatrix(rng, typ, rows, cols)
				x := randomVec(rng, batch*cols)
				want, tol := reference(t, m, x, batch)
				p.setISA(ISAGo)
				plain := runMatMul(t, p, m, x, batch)
				for _, layout := range []Layout{LayoutGroups, LayoutPanels} {
					mi, err := InterleaveLayout(m, ISAAMX, layout)
					if err != nil {
						t.Fatal(err)
					}
					p.setISA(ISAAMX)
					got := runMatMul(t, p, mi, x, batch)
					if !p.mat.amx {
						t.Fatalf("%v %dx%d batch %d %v: MatMul did not run the AMX kernels", typ, rows, cols, batch, layout)
					}
					for i := range got {
						if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol[i]) {
							t.Fatalf("%v %dx%d batch %d threads %d %v: out[%d] = %g, want %g ± %g", typ, rows, cols, batch,
								threads, layout, i, got[i], want[i], tol[i])
						}
						if d := math.Abs(float64(got[i] - plain[i])); d > 1e-5*math.Abs(float64(plain[i]))+tol[i]/100 {
							t.Fatalf("%v %dx%d batch %d threads %d %v: out[%d] = %g on AMX, %g on the Go loops", typ, rows, cols,
								batch, threads, layout, i, got[i], plain[i])
						}
					}
				}
			}
		}
	}
}
