package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tileRef is the micro-kernel's loop in Go, in float64: C[r][v] = alpha*sum_kk A(r, kk)*b[kk*nr+v] + beta*C
// (C not read when beta is 0), A(r, kk) at a[kk*mr + r] (packed) or a[r*lda + kk] (rows).
func tileRef(mr, nr, kc int, rows bool, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	for r := range mr {
		for v := range nr {
			var s float64
			for kk := range kc {
				av := a[kk*mr+r]
				if rows {
					av = a[r*lda+kk]
				}
				s += float64(av) * float64(b[kk*nr+v])
			}
			out := float64(alpha) * s
			if beta != 0 {
				out += float64(beta) * float64(c[r*ldc+v])
			}
			c[r*ldc+v] = float32(out)
		}
	}
}

// TestKernels checks each micro-kernel against tileRef, for k lengths around the unrolling, both A layouts
// and beta 0 (C full of NaN, not read) and not.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range supportedISAs() {
		mr, nr := s.mr, s.nr
		for kc := 1; kc <= 13; kc++ {
			for _, rows := range []bool{false, true} {
				for _, beta := range []float32{0, 1, -0.5} {
					lda := kc + 3
					a := make([]float32, max(kc*mr, mr*lda))
					for i := range a {
						a[i] = float32(rng.NormFloat64())
					}
					b := make([]float32, kc*nr)
					for i := range b {
						b[i] = float32(rng.NormFloat64())
					}
					ldc := nr + 5
					c := make([]float32, mr*ldc)
					for i := range c {
						c[i] = float32(rng.NormFloat64())
						if beta == 0 && i%ldc < nr {
							c[i] = float32(math.NaN())
						}
					}
					want := append([]float32(nil), c...)
					tileRef(mr, nr, kc, rows, a, lda, b, want, ldc, 0.75, beta)
					kern, ldaBytes := s.packed, 0
					if rows {
						kern, ldaBytes = s.rows, 4*lda
					}
					kern(kc, &a[0], ldaBytes, &b[0], &c[0], 4*ldc, 0.75, beta)
					for i := range c {
						tol := 1e-5 * float64(kc+1) * (1 + math.Abs(float64(want[i])))
						if d := math.Abs(float64(c[i] - want[i])); !(d <= tol) && !(i%ldc >= nr && c[i] == want[i]) {
							t.Fatalf("%s kc=%d rows=%v beta=%g: C[%d][%d] = %g, want %g", s.name, kc, rows, beta,
								i/ldc, i%ldc, c[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestPack checks the packing routines against packCopyRef and packTransRef (exact: they only move values).
func TestPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range supportedISAs() {
		for range 200 {
			kc := 1 + rng.IntN(70)
			width := []int{s.mr, s.nr}[rng.IntN(2)]
			w := 1 + rng.IntN(width)
			lds := w + rng.IntN(5)
			src := make([]float32, (kc-1)*lds+w) // exact length: masked loads must not read past it
			for i := range src {
				src[i] = rng.Float32()
			}
			got := make([]float32, kc*width)
			for i := range got {
				got[i] = float32(math.NaN())
			}
			want := make([]float32, kc*width)
			s.packCopy(kc, &src[0], 4*lds, &got[0], w, width)
			packCopyRef(kc, src, lds, want, w, width)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s packCopy kc=%d w=%d width=%d lds=%d: dst[%d] = %g, want %g", s.name, kc, w, width,
						lds, i, got[i], want[i])
				}
			}

			groups := 1 + rng.IntN(5)
			kt := groups * s.transCols
			lds = kt + rng.IntN(5)
			src = make([]float32, (s.nr-1)*lds+kt)
			for i := range src {
				src[i] = rng.Float32()
			}
			got, want = make([]float32, kt*s.nr), make([]float32, kt*s.nr)
			s.packTrans(groups, &src[0], 4*lds, &got[0])
			packTransRef(kt, src, lds, want, s.nr, s.nr)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s packTrans groups=%d lds=%d: dst[%d] = %g, want %g", s.name, groups, lds, i, got[i],
						want[i])
				}
			}
		}
	}
}
