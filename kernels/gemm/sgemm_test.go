package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/kernels"
)

// A path is one implementation of Sgemm's contract: the pure-Go reference, or Sgemm forced onto one ISA.
type path struct {
	name string
	run  func(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int)
}

// refPath runs the pure-Go loops after Sgemm's own argument handling (alpha 0, k 0).
func refPath() path {
	return path{"go", func(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int) {
		sgemm(nil, p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}}
}

// allPaths lists Sgemm as dispatched and Sgemm forced onto each micro-kernel set this CPU runs.
func allPaths() []path {
	paths := []path{{"Sgemm", Sgemm}}
	for _, s := range supportedISAs() {
		paths = append(paths, path{s.name, func(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32,
			a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			sgemm(s, p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}})
	}
	return paths
}

// sentinel marks every element of the test buffers that Sgemm must not write (C's guards and stride gaps)
// or must not use (A's and B's stride gaps hold NaN).
var sentinel = float32(math.Inf(-1))

// problem is one Sgemm call with its inputs laid out in padded buffers.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b           []float32 // stored matrices, stride gaps filled with NaN
	lda, ldb, ldc  int
	c0             []float32 // C's buffer before the call: guards, gaps and (beta 0) NaN in C
	coff           int       // C's first element in c0
}

func (pr problem) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g", t(pr.transA), t(pr.transB),
		pr.m, pr.n, pr.k, pr.lda, pr.ldb, pr.ldc, pr.alpha, pr.beta)
}

// storedMatrix returns a rows x cols matrix with row stride ld, starting at offset off of its slice (the
// elements before it and in the stride gaps are NaN), values normal(0,1).
func storedMatrix(rng *rand.Rand, rows, cols, ld, off int) []float32 {
	buf := make([]float32, off+max(0, (rows-1)*ld+cols))
	for i := range buf {
		buf[i] = float32(math.NaN())
	}
	for r := range rows {
		for j := range cols {
			buf[off+r*ld+j] = float32(rng.NormFloat64())
		}
	}
	return buf[off:]
}

const guard = 19 // sentinel elements before and after C

func newProblem(rng *rand.Rand, transA, transB bool, m, n, k, pad int, alpha, beta float32) problem {
	pr := problem{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	pr.lda, pr.ldb, pr.ldc = ac+pad, bc+(pad*3)%5, n+(pad*7)%3
	pr.lda, pr.ldb, pr.ldc = max(pr.lda, 1), max(pr.ldb, 1), max(pr.ldc, 1)
	pr.a = storedMatrix(rng, ar, ac, pr.lda, rng.IntN(4))
	pr.b = storedMatrix(rng, br, bc, pr.ldb, rng.IntN(4))
	pr.coff = guard + rng.IntN(3)
	pr.c0 = make([]float32, pr.coff+max(0, (m-1)*pr.ldc+n)+guard)
	for i := range pr.c0 {
		pr.c0[i] = sentinel
	}
	for i := range m {
		for j := range n {
			v := float32(rng.NormFloat64())
			if beta == 0 {
				v = float32(math.NaN())
			}
			pr.c0[pr.coff+i*pr.ldc+j] = v
		}
	}
	return pr
}

// opA returns op(A)[i][kk], opB op(B)[kk][j].
func (pr problem) opA(i, kk int) float32 {
	if pr.transA {
		return pr.a[kk*pr.lda+i]
	}
	return pr.a[i*pr.lda+kk]
}

func (pr problem) opB(kk, j int) float32 {
	if pr.transB {
		return pr.b[j*pr.ldb+kk]
	}
	return pr.b[kk*pr.ldb+j]
}

// exact returns C computed by a float64 triple loop and, per element, a bound on the error of any float32
// evaluation order: (k+3) unit roundoffs of alpha*sum|a*b| + |beta*c| (the classical gamma_k bound, with the
// alpha and beta products and the final sum).
func (pr problem) exact() (want, tol []float64) {
	want = make([]float64, pr.m*pr.n)
	tol = make([]float64, pr.m*pr.n)
	u := math.Ldexp(1, -24)
	for i := range pr.m {
		for j := range pr.n {
			var s, abs float64
			for kk := range pr.k * boolInt(pr.alpha != 0) { // alpha 0: A and B are not read
				ab := float64(pr.opA(i, kk)) * float64(pr.opB(kk, j))
				s += ab
				abs += math.Abs(ab)
			}
			w := float64(pr.alpha) * s
			bound := math.Abs(float64(pr.alpha)) * abs
			if pr.beta != 0 {
				bc := float64(pr.beta) * float64(pr.c0[pr.coff+i*pr.ldc+j])
				w += bc
				bound += math.Abs(bc)
			}
			want[i*pr.n+j] = w
			tol[i*pr.n+j] = 1.01*float64(pr.k+3)*u*bound + 1e-30
		}
	}
	return want, tol
}

// run calls impl on a copy of C's buffer and fails if it wrote outside C; it returns the buffer.
func (pr problem) run(t testing.TB, p *kernels.Pool, impl path) []float32 {
	t.Helper()
	c := append([]float32(nil), pr.c0...)
	impl.run(p, pr.transA, pr.transB, pr.m, pr.n, pr.k, pr.alpha, pr.a, pr.lda, pr.b, pr.ldb, pr.beta,
		c[pr.coff:], pr.ldc)
	for idx, v := range c {
		r, col := (idx-pr.coff)/pr.ldc, (idx-pr.coff)%pr.ldc
		inC := idx >= pr.coff && r < pr.m && col < pr.n
		if !inC && math.Float32bits(v) != math.Float32bits(sentinel) {
			t.Fatalf("%s %v: wrote %g outside C at offset %d from C", impl.name, pr, v, idx-pr.coff)
		}
	}
	return c
}

// check runs every path on pr and compares each with the float64 result (within the error bound) and with the
// pure-Go reference (within twice the bound).
func (pr problem) check(t testing.TB, p *kernels.Pool, impls []path) {
	t.Helper()
	want, tol := pr.exact()
	ref := pr.run(t, p, refPath())
	for _, impl := range impls {
		got := pr.run(t, p, impl)
		for i := range pr.m {
			for j := range pr.n {
				idx := pr.coff + i*pr.ldc + j
				g, e, r := float64(got[idx]), want[i*pr.n+j], float64(ref[idx])
				if d := math.Abs(g - e); !(d <= tol[i*pr.n+j]) {
					t.Fatalf("%s %v: C[%d,%d] = %g, float64 gives %g (|diff| %g > bound %g)", impl.name, pr,
						i, j, g, e, d, tol[i*pr.n+j])
				}
				if d := math.Abs(g - r); !(d <= 2*tol[i*pr.n+j]) {
					t.Fatalf("%s %v: C[%d,%d] = %g, pure Go gives %g (|diff| %g > 2*bound %g)", impl.name, pr,
						i, j, g, r, d, 2*tol[i*pr.n+j])
				}
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var transCases = [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}}

// TestSgemmShapes runs every path on odd shapes, all four transpositions, padded strides and the alpha/beta
// cases that take different branches (beta 0 with NaN in C, beta 1, other values; alpha 1 and not).
func TestSgemmShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dims := []int{1, 2, 7, 17, 33, 100}
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0}, {0.75, -1.5}, {2, 1}}
	p := kernels.NewPool(2)
	defer p.Close()
	for _, tr := range transCases {
		for _, m := range dims {
			for _, n := range dims {
				for _, k := range dims {
					s := scalars[rng.IntN(len(scalars))]
					pr := newProblem(rng, tr[0], tr[1], m, n, k, rng.IntN(3), s[0], s[1])
					pool := p
					if rng.IntN(2) == 0 {
						pool = nil
					}
					pr.check(t, pool, allPaths())
				}
			}
		}
	}
}

// TestSgemmLarge covers shapes past one cache block in every dimension, on 1 and 2 threads.
func TestSgemmLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := [][3]int{{300, 130, 700}, {97, 1100, 61}, {64, 64, 1300}, {1, 513, 400}, {200, 1, 900}}
	if testing.Short() {
		shapes = shapes[:2]
	}
	for _, threads := range []int{1, 2} {
		p := kernels.NewPool(threads)
		for i, sh := range shapes {
			tr := transCases[(i+threads)%4]
			for _, s := range [][2]float32{{1, 0}, {0.5, 1}} {
				newProblem(rng, tr[0], tr[1], sh[0], sh[1], sh[2], 1+i%2, s[0], s[1]).check(t, p, allPaths())
			}
		}
		p.Close()
	}
}

// TestSgemmDegenerate covers zero dimensions and alpha 0, where A and B are not read.
func TestSgemmDegenerate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tr := range transCases {
		for _, sh := range [][3]int{{0, 5, 3}, {4, 0, 3}, {4, 5, 0}, {0, 0, 0}} {
			for _, beta := range []float32{0, 1, -2} {
				newProblem(rng, tr[0], tr[1], sh[0], sh[1], sh[2], 1, 1, beta).check(t, nil, allPaths())
			}
		}
		pr := newProblem(rng, tr[0], tr[1], 5, 6, 7, 0, 0, 3)
		for i := range pr.a {
			pr.a[i] = float32(math.NaN()) // alpha 0: A is not read
		}
		pr.check(t, nil, allPaths())
	}
}

// TestSgemmPanics checks that shapes the slices cannot hold panic with a message naming the argument.
func TestSgemmPanics(t *testing.T) {
	cases := []struct {
		name           string
		transA, transB bool
		m, n, k        int
		la, lda        int
		lb, ldb        int
		lc, ldc        int
		want           string
	}{
		{"short A", false, false, 3, 4, 5, 14, 5, 20, 4, 12, 4, "A has 14 elements"},
		{"short A^T", true, false, 3, 4, 5, 14, 3, 20, 4, 12, 4, "A has 14 elements"},
		{"short B", false, true, 3, 4, 5, 15, 5, 19, 5, 12, 4, "B has 19 elements"},
		{"short C", false, false, 3, 4, 5, 15, 5, 20, 4, 11, 4, "C has 11 elements"},
		{"small lda", false, false, 3, 4, 5, 15, 4, 20, 4, 12, 4, "lda=4"},
		{"small ldc", false, false, 3, 4, 5, 15, 5, 20, 4, 12, 3, "ldc=3"},
		{"negative", false, false, -1, 4, 5, 15, 5, 20, 4, 12, 4, "negative dimension"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if msg := fmt.Sprint(r); !strings.Contains(msg, c.want) {
					t.Fatalf("panic %q does not contain %q", msg, c.want)
				}
			}()
			Sgemm(nil, c.transA, c.transB, c.m, c.n, c.k, 1, make([]float32, c.la), c.lda, make([]float32, c.lb),
				c.ldb, 0, make([]float32, c.lc), c.ldc)
		})
	}
}

// FuzzSgemm checks every path against the float64 loop on random shapes, strides and scalars.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(0), uint8(13), uint8(40), uint8(9), uint8(1), uint8(0), uint64(1))
	f.Add(uint8(3), uint8(100), uint8(1), uint8(77), uint8(0), uint8(2), uint64(2))
	f.Fuzz(func(t *testing.T, trans, m, n, k, pad, scal uint8, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0}, {0.75, -1.5}}[scal%4]
		pr := newProblem(rng, trans&1 != 0, trans&2 != 0, int(m)%150, int(n)%150, int(k)%300, int(pad%5), s[0], s[1])
		var p *kernels.Pool
		if seed%2 == 1 {
			p = kernels.NewPool(2)
			defer p.Close()
		}
		pr.check(t, p, allPaths())
	})
}

// TestSgemmSplitK covers the products whose k is split across workers (a small C, a long k), on 2 and 3
// threads and all four transpositions, including beta 0 with NaN in C and beta 1.
func TestSgemmSplitK(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, threads := range []int{2, 3} {
		p := kernels.NewPool(threads)
		for i, tr := range transCases {
			m, n, k := 5+7*i, 9+11*i, splitMinK+300*i
			for _, s := range supportedISAs() {
				j := &job{s: s, m: m, n: n, k: k}
				if j.plan(threads); j.split == 0 {
					t.Fatalf("%s %dx%dx%d on %d threads: k not split", s.name, m, n, k, threads)
				}
			}
			for _, sc := range [][2]float32{{1, 0}, {-0.5, 1}} {
				newProblem(rng, tr[0], tr[1], m, n, k, 1, sc[0], sc[1]).check(t, p, allPaths())
			}
		}
		p.Close()
	}
}

// TestSgemmAllocs checks that calls on a Pool allocate nothing once it has run a product of that size: the
// job record, the partial Cs of a split k and the packing buffers are the Pool's. It covers blocks of C, a
// split k, a product on the calling goroutine and the pure-Go loops, on 1 and 2 threads.
func TestSgemmAllocs(t *testing.T) {
	for _, threads := range []int{1, 2} {
		p := kernels.NewPool(threads)
		for _, impl := range append(allPaths(), refPath()) {
			for _, sh := range [][3]int{{200, 300, 400}, {24, 40, splitMinK}, {30, 20, 10}} {
				m, n, k := sh[0], sh[1], sh[2]
				if impl.name == "go" && m*n*k > 1e7 {
					continue // slow, and the same as the split shape here
				}
				for _, tr := range [][2]bool{{false, false}, {true, true}} {
					a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
					lda, ldb := k, n
					if tr[0] {
						lda = m
					}
					if tr[1] {
						ldb = k
					}
					run := func() { impl.run(p, tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 0.5, c, n) }
					run()
					if allocs := testing.AllocsPerRun(5, run); allocs != 0 {
						t.Errorf("%s %v %dx%dx%d on %d threads: %v allocations per call", impl.name, tr, m, n, k,
							threads, allocs)
					}
				}
			}
		}
		p.Close()
	}
}
