//go:build amd64

package gemm

import "golang.org/x/sys/cpu"

//go:generate go run ./internal/asmgen -out sgemm_amd64.s

// The micro-kernels compute one mr x nr tile of C (mr = 12, nr = 32 for AVX-512; 6 x 16 for AVX2), at c with
// rows ldc bytes apart:
//
//	for r < rows, v < cols:
//		acc := sum over kk < kc of A(r, kk) * B(kk, v)
//		if beta == 0 { C[r][v] = alpha*acc } else { C[r][v] = alpha*acc + beta*C[r][v] }
//
// with B(kk, v) at byte offset kk*ldb + 4*v from b: a packed k-major panel of B (ldb = 4*nr) or op(B) read in
// place from a row-major B. The Packed kernels read A packed the same way, A(r, kk) = a[kk*mr + r]
// (lda unused); the Rows kernels read op(A) in place, A(r, kk) at byte offset r*lda + 4*kk from a, all mr
// rows of it. The AVX-512 kernels store rows x cols of the tile through masks (nothing else of C is read or
// written), and their Half variants compute only the first 16 columns (cols <= 16); the AVX2 kernels store
// the whole tile (rows = mr, cols = nr). See tileRef in the tests for the loop in Go.

//go:noescape
func sgemmAVX512Packed(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

//go:noescape
func sgemmAVX512Rows(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

//go:noescape
func sgemmAVX512PackedHalf(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

//go:noescape
func sgemmAVX512RowsHalf(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

//go:noescape
func sgemmAVX2Packed(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

//go:noescape
func sgemmAVX2Rows(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)

// fmaPeakAVX512 runs n iterations of 24 independent VFMADD231PS on ZMM registers (768 FLOPs each):
//
//	for range n { for i < 24 { acc[i] += x*y } } // 16 lanes per acc
//
//go:noescape
func fmaPeakAVX512(n int)

// fmaPeakAVX2 runs n iterations of 14 independent VFMADD231PS on YMM registers (224 FLOPs each).
//
//go:noescape
func fmaPeakAVX2(n int)

// The packing routines fill the kernels' panels. packCopy copies w floats per row, zero-filling to width:
//
//	for kk < kc, v < width: dst[kk*width + v] = src[kk*lds/4 + v] if v < w, else 0
//
// (masked loads: nothing past the w floats of a row is read; width is at most 32, 16 for AVX2). packTrans
// transposes nr (32, or 16 for AVX2) rows of src, in groups of t = 16 (8 for AVX2) columns:
//
//	for kk < groups*t, v < nr: dst[kk*nr + v] = src[v*lds/4 + kk]
//
// See packCopyRef and packTransRef for the same loops in Go.

//go:noescape
func packCopyAVX512(kc int, src *float32, lds int, dst *float32, w, width int)

//go:noescape
func packTransAVX512(groups int, src *float32, lds int, dst *float32)

//go:noescape
func packCopyAVX2(kc int, src *float32, lds int, dst *float32, w, width int)

//go:noescape
func packTransAVX2(groups int, src *float32, lds int, dst *float32)

// The row kernels of Softmax, for n a multiple of 32 (16 for AVX2):
//
//	maxF32:      returns max over i < n of x[i]
//	expShiftSum: x[i] = exp(x[i] - shift) for i < n, returns the sum of the new x[i]
//	scaleF32:    x[i] *= s for i < n
//
// exp is kernels.Exp's (Cephes expf) on vectors: 0 below -87.33654, at most 88 (x - shift <= 0 in a
// softmax), NaN in, NaN out. See maxRef, expShiftSumRef and scaleRef for the Go loops.

//go:noescape
func maxF32AVX512(x *float32, n int) float32

//go:noescape
func expShiftSumAVX512(x *float32, n int, shift float32) float32

//go:noescape
func scaleF32AVX512(x *float32, n int, s float32)

//go:noescape
func maxF32AVX2(x *float32, n int) float32

//go:noescape
func expShiftSumAVX2(x *float32, n int, shift float32) float32

//go:noescape
func scaleF32AVX2(x *float32, n int, s float32)

var (
	avx512 = isa{name: "avx512", mr: 12, nr: 32, kcMax: 384, bBytes: 1 << 20, cBytes: 512 << 10,
		packed: sgemmAVX512Packed, rows: sgemmAVX512Rows, masked: true,
		packedHalf: sgemmAVX512PackedHalf, rowsHalf: sgemmAVX512RowsHalf, packCopy: packCopyAVX512, packTrans: packTransAVX512,
		transCols: 16, peak: fmaPeakAVX512, peakFLOPs: 24 * 16 * 2,
		rowVec: 32, maxF32: maxF32AVX512, expShiftSum: expShiftSumAVX512, scaleF32: scaleF32AVX512}
	avx2 = isa{name: "avx2", mr: 6, nr: 16, kcMax: 256, bBytes: 256 << 10, cBytes: 128 << 10,
		packed: sgemmAVX2Packed, rows: sgemmAVX2Rows, packCopy: packCopyAVX2, packTrans: packTransAVX2,
		transCols: 8, peak: fmaPeakAVX2, peakFLOPs: 14 * 8 * 2,
		rowVec: 16, maxF32: maxF32AVX2, expShiftSum: expShiftSumAVX2, scaleF32: scaleF32AVX2}
)

// supportedISAs lists the micro-kernel sets this CPU runs, widest first. The AVX-512 code uses AVX-512F
// instructions only (16-bit mask moves, no DQ or BW forms); the AVX2 code AVX2 and FMA.
func supportedISAs() []*isa {
	var s []*isa
	if cpu.X86.HasAVX512F {
		s = append(s, &avx512)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		s = append(s, &avx2)
	}
	return s
}
