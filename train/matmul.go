package train

import "github.com/bestofn/bestofn/kernels/gemm"

// sgemm is gemm.Sgemm on the model's pool (same arguments). Its bits depend on the shape alone, not on the
// number of threads or on which worker ran what (gemm splits a long k into chunks fixed by the shape and adds
// their partial sums in order), so training gives the same weights in every run and on any number of threads.
func (m *Model) sgemm(transA, transB bool, rows, cols, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm.Sgemm(m.pool, transA, transB, rows, cols, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmFunc is gemm.Sgemm's signature without the pool: how the operations of ops.go run their whole-batch
// matrix products (Model.sgemm in training).
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int,
	beta float32, c []float32, ldc int)
