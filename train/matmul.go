package train

import "github.com/bestofn/bestofn/kernels/gemm"

// longK is the shortest k that sgemm splits itself: gemm.Sgemm splits products with a small C and a k of
// 4096 or more across its workers, adding their partial sums in an order that depends on scheduling, which
// would make training differ from run to run.
const longK = 4096

// sgemm is gemm.Sgemm on the model's pool (same arguments), with the same bits in every run and on any
// number of threads. A product with k >= longK is split here into chunks of k that depend on k alone
// (about 16, of at least 256), each a one-thread product into its own partial C on the pool's workers;
// the partials are then added in chunk order, rows of C in parallel. So A and B are still read once, as
// gemm's own split reads them.
func (m *Model) sgemm(transA, transB bool, rows, cols, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k < longK || rows == 0 || cols == 0 {
		gemm.Sgemm(m.pool, transA, transB, rows, cols, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	t := &m.tasks.split
	t.transA, t.transB, t.rows, t.cols, t.k = transA, transB, rows, cols, k
	t.alpha, t.a, t.lda, t.b, t.ldb, t.beta, t.c, t.ldc = alpha, a, lda, b, ldb, beta, c, ldc
	t.chunk = max(256, (k+15)/16)
	n := (k + t.chunk - 1) / t.chunk
	t.partials = grow(t.partials, n*rows*cols)
	m.pool.Run(n, 1, m.tasks.splitChunks)
	m.pool.Run(rows, max(1, 8192/cols), m.tasks.splitReduce)
}

// gemmFunc is gemm.Sgemm's signature without the pool: how the operations of ops.go run their whole-batch
// matrix products (Model.sgemm in training).
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int,
	beta float32, c []float32, ldc int)

// splitGemm is the product sgemm is splitting.
type splitGemm struct {
	transA, transB       bool
	rows, cols, k, chunk int
	alpha, beta          float32
	a, b, c              []float32
	lda, ldb, ldc        int
	partials             []float32 // (chunks, rows, cols)
}

// splitChunks computes the partial products of k chunks [lo, hi).
func (m *Model) splitChunks(lo, hi, worker int) {
	t := &m.tasks.split
	for ch := lo; ch < hi; ch++ {
		k0 := ch * t.chunk
		kc := min(t.chunk, t.k-k0)
		aOff, bOff := k0, k0*t.ldb // A's columns k0.. (A stored m x k), B's rows k0.. (B stored k x n)
		if t.transA {
			aOff = k0 * t.lda // A's rows k0.. (A stored k x m)
		}
		if t.transB {
			bOff = k0 // B's columns k0.. (B stored n x k)
		}
		a, b := t.a[aOff:], t.b[bOff:]
		part := t.partials[ch*t.rows*t.cols : (ch+1)*t.rows*t.cols]
		gemm.Sgemm(m.workers[worker], t.transA, t.transB, t.rows, t.cols, kc, 1, a, t.lda, b, t.ldb, 0, part, t.cols)
	}
}

// splitReduce sets rows [lo, hi) of C to alpha·Σ partials + beta·C, the partials added in chunk order.
func (m *Model) splitReduce(lo, hi, _ int) {
	t := &m.tasks.split
	n := (t.k + t.chunk - 1) / t.chunk
	for i := lo; i < hi; i++ {
		c := t.c[i*t.ldc : i*t.ldc+t.cols]
		row := func(ch int) []float32 { return t.partials[(ch*t.rows+i)*t.cols : (ch*t.rows+i+1)*t.cols] }
		sum := row(0)
		for ch := 1; ch < n; ch++ {
			add(sum, row(ch))
		}
		if t.beta == 0 {
			for j, v := range sum {
				c[j] = t.alpha * v
			}
		} else {
			for j, v := range sum {
				c[j] = t.alpha*v + t.beta*c[j]
			}
		}
	}
}
