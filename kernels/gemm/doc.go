// Package gemm multiplies dense float32 matrices, the products a trainer's forward and backward passes are made
// of: Y = X W^T, dX = dY W, dW += dY^T X and attention's per-head products.
//
//	// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major float32 matrices, where op(X) is X, or X
//	// transposed when transX is set. C is m x n with row stride ldc; op(A) is m x k and op(B) is k x n; A is
//	// stored m x k (stride lda) when !transA, else k x m; B is stored k x n (stride ldb) when !transB, else n x k.
//	// beta 0 means C is not read (NaNs in C do not propagate). p nil runs on the calling goroutine.
//	func Sgemm(p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
//		b []float32, ldb int, beta float32, c []float32, ldc int)
//
// The pure-Go loops of ref.go are always compiled: they are the reference the tests compare every fast path
// with (and a float64 triple loop checks them).
package gemm
