package gemm

import (
	"fmt"

	"github.com/bestofn/bestofn/kernels"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major float32 matrices, where op(X) is X, or X
// transposed when transX is set. C is m x n with row stride ldc; op(A) is m x k and op(B) is k x n; A is
// stored m x k (stride lda) when !transA, else k x m; B is stored k x n (stride ldb) when !transB, else n x k.
// beta 0 means C is not read (NaNs in C do not propagate). p nil runs on the calling goroutine; C's bits are
// the same on no Pool and on a Pool of any number of threads (see the package doc).
//
// As in BLAS, A and B are not read when alpha is 0 or k is 0 (C becomes beta*C), and C must not overlap A or
// B. p must not be running another call (see kernels.Pool). Sgemm panics when a dimension is negative, a
// stride is smaller than its row, or a slice is too short for the shape it is given.
func Sgemm(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(fastest, p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// fastest is the widest micro-kernel set the CPU runs, nil for none (the pure-Go loops).
var fastest = first(supportedISAs())

func first(s []*isa) *isa {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

// sgemm is Sgemm on the micro-kernels of s, or on the pure-Go loops when s is nil.
func sgemm(s *isa, p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if s == nil {
		sgemmRef(p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmFast(s, p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkArgs panics with a message naming the argument when the shape, strides and slice lengths disagree.
func checkArgs(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k // A as stored
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("A", ar, ac, la, lda)
	checkMatrix("B", br, bc, lb, ldb)
	checkMatrix("C", m, n, lc, ldc)
}

// checkMatrix panics unless a slice of length l holds a rows x cols matrix with row stride ld.
func checkMatrix(name string, rows, cols, l, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("gemm: stride ld%s=%d is less than the %d columns of %s", lowerName(name), ld, cols, name))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; l < need {
		panic(fmt.Sprintf("gemm: %s has %d elements, a %dx%d matrix with stride %d needs %d", name, l, rows, cols, ld, need))
	}
}

func lowerName(name string) string {
	switch name {
	case "A":
		return "a"
	case "B":
		return "b"
	}
	return "c"
}

// scaleC sets C = beta*C, and C = 0 without reading it when beta is 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}
