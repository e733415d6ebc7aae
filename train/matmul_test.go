package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/bestofn/bestofn/kernels/gemm"
)

// TestSgemmLongK checks Model.sgemm's own split of long-k products against gemm.Sgemm on one goroutine, for
// the four transpositions, strided operands, alpha and beta (beta 0 with NaN in C, which must not survive).
func TestSgemmLongK(t *testing.T) {
	m := newTiny(t, HeadLM, 2)
	r := newRand(8)
	rows, cols, k := 13, 21, longK+777
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		for _, beta := range []float32{0, 0.5} {
			t.Run(fmt.Sprintf("transA=%v,transB=%v,beta=%v", tr[0], tr[1], beta), func(t *testing.T) {
				lda, ldb, ldc := k+3, cols+2, cols+1 // A rows x k, B k x cols, as stored
				aRows, bRows := rows, k
				if tr[0] {
					lda, aRows = rows+3, k // A stored k x rows
				}
				if tr[1] {
					ldb, bRows = k+2, cols // B stored cols x k
				}
				a, b := f32(r.f64(aRows*lda, 1)), f32(r.f64(bRows*ldb, 1))
				c0 := f32(r.f64(rows*ldc, 1))
				if beta == 0 {
					for i := range c0 {
						c0[i] = float32(math.NaN())
					}
				}
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				gemm.Sgemm(nil, tr[0], tr[1], rows, cols, k, 0.75, a, lda, b, ldb, beta, want, ldc)
				m.sgemm(tr[0], tr[1], rows, cols, k, 0.75, a, lda, b, ldb, beta, got, ldc)
				worst := 0.0
				for i := 0; i < rows; i++ {
					for j := 0; j < cols; j++ {
						worst = math.Max(worst, math.Abs(float64(got[i*ldc+j]-want[i*ldc+j])))
					}
					for j := cols; j < ldc; j++ { // outside C: untouched
						if math.Float32bits(got[i*ldc+j]) != math.Float32bits(c0[i*ldc+j]) {
							t.Fatalf("wrote outside C at row %d column %d", i, j)
						}
					}
				}
				if !(worst < 1e-3) { // sums of ~5000 products of unit normals (about 70 in size)
					t.Errorf("max |difference| %g", worst)
				}
			})
		}
	}
}
