package gemm

import "github.com/bestofn/bestofn/kernels"

// sgemmRef is Sgemm in plain Go, split by rows of C across p (on the caller when p is nil). For each row i it
// forms C[i,:] = beta*C[i,:] (0 when beta is 0, without reading C), then adds alpha*op(A)[i,kk]*op(B)[kk,:] for
// every kk when op(B) rows are contiguous (!transB), or sets C[i,j] += alpha*dot(op(A)[i,:], B[j,:]) when they
// are not (transB: B's rows are op(B)'s columns). Rows of op(A) that are strided (transA) are gathered first.
// Each row's sums are the same whichever worker runs it, so C's bits do not depend on p.
func sgemmRef(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	var t *refTask
	if p != nil {
		t = &statePool(p).ref
	} else {
		t = new(refTask)
	}
	*t = refTask{transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
		beta: beta, c: c, ldc: ldc, pool: p}
	defer func() { *t = refTask{} }() // hold on to none of the caller's matrices
	if p == nil {
		t.Run(0, m, 0)
		return
	}
	p.Run(m, 0, t)
}

type refTask struct {
	transA, transB bool
	n, k           int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	pool           *kernels.Pool // the workers' scratch (nil: allocated)
}

func (t *refTask) Run(lo, hi, worker int) {
	n, k := t.n, t.k
	var arow []float32 // row i of op(A), gathered when A is stored transposed
	if t.transA && t.pool != nil {
		arow = t.pool.Scratch(worker, k)
	} else if t.transA {
		arow = make([]float32, k)
	}
	for i := lo; i < hi; i++ {
		if t.transA {
			for kk := range k {
				arow[kk] = t.a[kk*t.lda+i]
			}
		} else {
			arow = t.a[i*t.lda : i*t.lda+k]
		}
		crow := t.c[i*t.ldc : i*t.ldc+n]
		if t.transB {
			for j := range crow {
				s := t.alpha * dotRef(arow, t.b[j*t.ldb:j*t.ldb+k])
				if t.beta != 0 {
					s += t.beta * crow[j]
				}
				crow[j] = s
			}
			continue
		}
		if t.beta == 0 {
			clear(crow)
		} else if t.beta != 1 {
			for j := range crow {
				crow[j] *= t.beta
			}
		}
		for kk, av := range arow {
			axpyRef(t.alpha*av, t.b[kk*t.ldb:kk*t.ldb+n], crow)
		}
	}
}

// dotRef returns sum x[i]*y[i] over len(x), in four partial sums.
func dotRef(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyRef sets y[i] += alpha*x[i] for i < len(y).
func axpyRef(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
