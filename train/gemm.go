package train

import "github.com/bestofn/bestofn/kernels"

// sgemm computes C = alpha op(A) op(B) + beta C for row-major matrices: op(A) is m x k (A stored m x k
// with row stride lda, or k x m when transA), op(B) is k x n (B stored k x n with row stride ldb, or n x k
// when transB), C is m x n with row stride ldc. beta 0 overwrites C (NaNs in C do not survive). Rows of C
// are split across p's threads (p nil runs on the caller); each element is summed over k in increasing
// order, so the result does not depend on the thread count.
//
// It is the signature of kernels/gemm.Sgemm, which replaces this version (built on the kernels package's
// AVX2 dot and axpy routines) once it lands.
func sgemm(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	t := &gemmTask{transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
		beta: beta, c: c, ldc: ldc}
	if p == nil || m*n*k < 1<<15 {
		t.Run(0, m, 0)
		return
	}
	p.Run(m, max(1, (1<<15)/(n*k+1)), t)
}

type gemmTask struct {
	transA, transB bool
	n, k           int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

// Run computes rows [lo, hi) of C.
func (t *gemmTask) Run(lo, hi, _ int) {
	n, k := t.n, t.k
	for i := lo; i < hi; i++ {
		ci := t.c[i*t.ldc : i*t.ldc+n]
		if t.beta == 0 {
			clear(ci)
		} else if t.beta != 1 {
			for j := range ci {
				ci[j] *= t.beta
			}
		}
		if k <= 0 || t.alpha == 0 {
			continue
		}
		aik := func(kk int) float32 {
			if t.transA {
				return t.a[kk*t.lda+i]
			}
			return t.a[i*t.lda+kk]
		}
		switch {
		case !t.transB:
			// C[i,:] += alpha A[i,kk] B[kk,:]
			for kk := 0; kk < k; kk++ {
				if v := t.alpha * aik(kk); v != 0 {
					kernels.AxpyF32(v, t.b[kk*t.ldb:kk*t.ldb+n], ci)
				}
			}
		case !t.transA:
			// C[i,j] += alpha dot(A[i,:], B[j,:])
			ai := t.a[i*t.lda : i*t.lda+k]
			for j := range ci {
				ci[j] += t.alpha * kernels.DotF32(ai, t.b[j*t.ldb:j*t.ldb+k])
			}
		default:
			for j := range ci {
				var s float32
				for kk := 0; kk < k; kk++ {
					s += aik(kk) * t.b[j*t.ldb+kk]
				}
				ci[j] += t.alpha * s
			}
		}
	}
}
