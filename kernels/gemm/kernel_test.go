package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tileRef is the micro-kernel's loop in Go, in float64: C[r][v] = alpha*sum_kk A(r, kk)*b[kk*ldb+v] + beta*C
// (C not read when beta is 0) for r < rows, v < cols, A(r, kk) at a[kk*mr + r] (packed) or a[r*lda + kk].
func tileRef(mr, kc int, rowsLayout bool, a []float32, lda int, b []float32, ldb int, c []float32, ldc int,
	alpha, beta float32, rows, cols int) {
	for r := range rows {
		for v := range cols {
			var s float64
			for kk := range kc {
				av := a[kk*mr+r]
				if rowsLayout {
					av = a[r*lda+kk]
				}
				s += float64(av) * float64(b[kk*ldb+v])
			}
			out := float64(alpha) * s
			if beta != 0 {
				out += float64(beta) * float64(c[r*ldc+v])
			}
			c[r*ldc+v] = float32(out)
		}
	}
}

// A kernelCase is one micro-kernel of an ISA and the tiles it may be given.
type kernelCase struct {
	name          string
	kern          kernelFunc
	rowsLayout    bool
	maxRows, maxC int // largest partial tile it stores (mr, nr for whole tiles only)
	partial       bool
}

func kernelCases(s *isa) []kernelCase {
	cs := []kernelCase{
		{"packed", s.packed, false, s.mr, s.nr, s.masked},
		{"rows", s.rows, true, s.mr, s.nr, s.masked},
	}
	if s.packedHalf != nil {
		cs = append(cs, kernelCase{"packedHalf", s.packedHalf, false, s.mr, s.nr / 2, true},
			kernelCase{"rowsHalf", s.rowsHalf, true, s.mr, s.nr / 2, true})
	}
	return cs
}

// TestKernels checks each micro-kernel against tileRef, for k lengths around the unrolling, both A layouts,
// B packed and strided, partial tiles (where the kernel stores them) and beta 0 (C full of NaN, not read) and
// not. Elements of C outside the stored rows x cols must keep their values.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range supportedISAs() {
		mr, nr := s.mr, s.nr
		for _, kcase := range kernelCases(s) {
			for kc := 1; kc <= 13; kc++ {
				for _, beta := range []float32{0, 1, -0.5} {
					rows, cols := mr, kcase.maxC
					if kcase.partial && kc%3 != 0 {
						rows, cols = 1+rng.IntN(mr), 1+rng.IntN(kcase.maxC)
					}
					lda := kc + 3
					a := make([]float32, max(kc*mr, mr*lda))
					for i := range a {
						a[i] = float32(rng.NormFloat64())
					}
					ldb := nr + 7*(kc%2) // packed panel, or B read in place
					b := make([]float32, kc*ldb)
					for i := range b {
						b[i] = float32(rng.NormFloat64())
					}
					ldc := nr + 5
					c := make([]float32, mr*ldc)
					for i := range c {
						c[i] = float32(rng.NormFloat64())
						if beta == 0 && i/ldc < rows && i%ldc < cols {
							c[i] = float32(math.NaN())
						}
					}
					want := append([]float32(nil), c...)
					tileRef(mr, kc, kcase.rowsLayout, a, lda, b, ldb, want, ldc, 0.75, beta, rows, cols)
					ldaBytes := 0
					if kcase.rowsLayout {
						ldaBytes = 4 * lda
					}
					kcase.kern(kc, &a[0], ldaBytes, &b[0], 4*ldb, &c[0], 4*ldc, 0.75, beta, rows, cols)
					for i := range c {
						r, v := i/ldc, i%ldc
						if r >= rows || v >= cols {
							if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s %s kc=%d tile %dx%d: wrote C[%d][%d] outside the tile", s.name, kcase.name,
									kc, rows, cols, r, v)
							}
							continue
						}
						tol := 1e-5 * float64(kc+1) * (1 + math.Abs(float64(want[i])))
						if d := math.Abs(float64(c[i] - want[i])); !(d <= tol) {
							t.Fatalf("%s %s kc=%d beta=%g tile %dx%d: C[%d][%d] = %g, want %g", s.name, kcase.name, kc,
								beta, rows, cols, r, v, c[i], want[i])
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
