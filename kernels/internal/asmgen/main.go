// Command asmgen writes kernels/matmul_amd64.s, the AVX2/FMA/F16C kernels of package kernels, and
// kernels/vnni_amd64.s, its AVX-512 VNNI and AVX-VNNI kernels (see vnni.go). The assembly
// is plain text built here from a few loop templates, so that the tile variants (1..5 activation rows per
// weight row) stay consistent. Run it through `go generate ./kernels/`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
)

// prefetchAhead is how far ahead (bytes) the single-row quantized kernels prefetch weights, so that memory
// latency overlaps the arithmetic instead of following it.
const prefetchAhead = 1024

// interleavedPrefetchAhead is the prefetch distance of the interleaved Q8_0 kernels for several activation
// rows, interleavedPrefetchAhead1 for one (memory-bound; a shorter distance measured faster there).
const (
	interleavedPrefetchAhead  = 4096
	interleavedPrefetchAhead1 = 1024
	// interleavedPrefetchL2 is how far ahead the interleaved Q4_0 kernels for several activation rows also
	// prefetch into L2: compute-bound there, they keep the memory streaming (BenchmarkISAStep on a Zen 4 with
	// --kernels avx2: batch 5 / batch 1 1.83-1.86 against 1.93-1.97 without).
	interleavedPrefetchL2 = 12288
)

// tilePrefetchAhead is the prefetch distance of the multi-row Q8_0/Q4_0 tiles, which spend longer per byte.
const tilePrefetchAhead = 3072

// maxTile is the largest number of activation rows one call dots with a weight row (kernels.tileBatch).
const maxTile = 5

type gen struct{ bytes.Buffer }

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.Buffer, "\t"+format+"\n", args...) }
func (g *gen) label(l string)               { fmt.Fprintf(&g.Buffer, "%s:\n", l) }
func (g *gen) raw(s string)                 { g.WriteString(s) }

// rowAddr returns the address of activation row k: base + k*stride, with stride in s1 and 3*stride in s3.
func rowAddr(off int, base, s1, s3 string, k int) string {
	o := ""
	if off != 0 {
		o = fmt.Sprint(off)
	}
	switch k {
	case 0:
		return fmt.Sprintf("%s(%s)", o, base)
	case 1:
		return fmt.Sprintf("%s(%s)(%s*1)", o, base, s1)
	case 2:
		return fmt.Sprintf("%s(%s)(%s*2)", o, base, s1)
	case 3:
		return fmt.Sprintf("%s(%s)(%s*1)", o, base, s3)
	case 4:
		return fmt.Sprintf("%s(%s)(%s*4)", o, base, s1)
	}
	panic("row out of range")
}

// vecConst writes a 32-byte read-only constant: the 8-byte pattern lane, four times.
func (g *gen) vecConst(name string, lane uint64) {
	for off := 0; off < 32; off += 8 {
		g.raw(fmt.Sprintf("DATA %s<>+%d(SB)/8, $0x%016x\n", name, off, lane))
	}
	g.raw(fmt.Sprintf("GLOBL %s<>(SB), RODATA|NOPTR, $32\n\n", name))
}

// tileEnd writes the end of a tile kernel: the done label, the horizontal sums of accumulators Y0..Y<t-1>
// into res[0..t-1] (R12), and the return.
func (g *gen) tileEnd(name string, t int) {
	g.label(name + "_done")
	for k := range t {
		g.hsum(k, 4*k)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// hsum reduces the 8 lanes of Y<acc> and stores the sum at off(R12).
func (g *gen) hsum(acc, off int) {
	g.p("VEXTRACTF128 $1, Y%d, X15", acc)
	g.p("VADDPS X15, X%d, X%d", acc, acc)
	g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
	g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
	g.p("VMOVSS X%d, %d(R12)", acc, off)
}

// q8Tile writes a kernel dotting one row of Q8_0 blocks with t rows of Q8_0 activations.
// Per block: d_w*d_x * sum(w*x), the integer sum by the sign trick (|w| unsigned times sign(w)*x signed,
// VPMADDUBSW then VPMADDWD with ones) as in llama.cpp's ggml_vec_dot_q8_0_q8_0.
//
// For t = 1, xd points to the row's block scales (dstride unused). For t > 1, xd points to the scales of
// block 0 of the t rows, stored block-major (dstride bytes from one block to the next); each row's scale is
// broadcast from there and multiplied by d_w.
func (g *gen) q8Tile(t int) {
	if t == 1 {
		g.q8Row()
		return
	}
	name := fmt.Sprintf("dotQ8_0T%d", t)
	fmt.Fprintf(&g.Buffer, "\n// func %s(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.p("MOVQ nb+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xq+16(FP), DI")
	g.p("MOVQ xd+24(FP), DX")
	g.p("MOVQ qstride+32(FP), R8")
	g.p("MOVQ dstride+40(FP), R10")
	g.p("MOVQ res+48(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15") // 16 x int16(1)
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.p("PREFETCHT0 %d(SI)", tilePrefetchAhead)
	g.p("VPBROADCASTW (SI), X12")
	g.p("VCVTPH2PS X12, Y12") // d_w
	g.p("VMOVDQU 2(SI), Y13")
	g.p("VPSIGNB Y13, Y13, Y14") // |w|
	for k := range t {
		tmp := 5 + k
		g.p("VMOVDQU %s, Y%d", rowAddr(0, "DI", "R8", "R9", k), tmp)
		g.p("VPSIGNB Y13, Y%d, Y%d", tmp, tmp)
		g.p("VPMADDUBSW Y%d, Y14, Y%d", tmp, tmp)
		g.p("VPMADDWD Y15, Y%d, Y%d", tmp, tmp)
		g.p("VCVTDQ2PS Y%d, Y%d", tmp, tmp)
		g.p("VBROADCASTSS %d(DX), Y10", 4*k)
		g.p("VMULPS Y12, Y10, Y10")
		g.p("VFMADD231PS Y10, Y%d, Y%d", tmp, k)
	}
	g.p("ADDQ $34, SI")
	g.p("ADDQ $32, DI")
	g.p("ADDQ R10, DX")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.tileEnd(name, t)
}

// q8Block emits one block of the single-row kernel: weight block at off(SI), activations at xoff(DI), scale
// at doff(DX), accumulated into Y<acc>.
func (g *gen) q8Block(off, xoff, doff, acc int) {
	g.p("VPBROADCASTW %d(SI), X12", off)
	g.p("VCVTPH2PS X12, Y12")
	g.p("VMOVDQU %d(SI), Y13", off+2)
	g.p("VPSIGNB Y13, Y13, Y14")
	g.p("VMOVDQU %d(DI), Y5", xoff)
	g.p("VPSIGNB Y13, Y5, Y5")
	g.p("VPMADDUBSW Y5, Y14, Y5")
	g.p("VPMADDWD Y15, Y5, Y5")
	g.p("VCVTDQ2PS Y5, Y5")
	g.p("VBROADCASTSS %d(DX), Y10", doff)
	g.p("VMULPS Y12, Y10, Y10")
	g.p("VFMADD231PS Y10, Y5, Y%d", acc)
}

// q8Row is q8Tile for one activation row, two blocks per iteration into two accumulators so that the FMA
// latency does not bound the loop.
func (g *gen) q8Row() {
	name := "dotQ8_0T1"
	fmt.Fprintf(&g.Buffer, "\n// func %s(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.p("MOVQ nb+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xq+16(FP), DI")
	g.p("MOVQ xd+24(FP), DX")
	g.p("MOVQ res+48(FP), R12")
	g.p("VXORPS Y0, Y0, Y0")
	g.p("VXORPS Y1, Y1, Y1")
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15")
	g.label(name + "_loop")
	g.p("CMPQ CX, $2")
	g.p("JLT %s_tail", name)
	g.p("PREFETCHT0 %d(SI)", prefetchAhead)
	g.q8Block(0, 0, 0, 0)
	g.q8Block(34, 32, 4, 1)
	g.p("ADDQ $68, SI")
	g.p("ADDQ $64, DI")
	g.p("ADDQ $8, DX")
	g.p("SUBQ $2, CX")
	g.p("JMP %s_loop", name)
	g.label(name + "_tail")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.q8Block(0, 0, 0, 0)
	g.label(name + "_done")
	g.p("VADDPS Y1, Y0, Y0")
	g.hsum(0, 0)
	g.p("VZEROUPPER")
	g.p("RET")
}

// q40Tile writes the Q4_0 kernel for t activation rows. It multiplies the unsigned nibbles q (0..15)
// directly with the signed activations (no sign trick) and corrects for the offset of 8 through the
// activation block sums: sum (q-8)*x = sum q*x - 8*sum x, with xs = d_x*sum(q_x) per block precomputed, so
// block i adds d_w*d_x*sum(q*x) to acc_k and d_w*xs to corr_k; res[k] = acc_k - 8*corr_k.
//
// For t = 1, xd and xs point to the row's scales and sums; for t > 1, to block-major scales and sums (see
// q8Tile), dstride bytes from one block to the next.
func (g *gen) q40Tile(t int) {
	name := fmt.Sprintf("dotQ4_0T%d", t)
	frame := 0
	if t > 1 {
		frame = 32
	}
	fmt.Fprintf(&g.Buffer, "\n// func %s(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $%d-64\n", name, frame)
	g.p("MOVQ nb+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xq+16(FP), DI")
	g.p("MOVQ xd+24(FP), DX")
	g.p("MOVQ xs+32(FP), R11")
	g.p("MOVQ qstride+40(FP), R8")
	g.p("MOVQ dstride+48(FP), R10")
	g.p("MOVQ res+56(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15")
	unpack := func(off int) { // d_w in Y12, unsigned nibbles in Y13
		g.p("VPBROADCASTW %d(SI), X12", off)
		g.p("VCVTPH2PS X12, Y12")
		g.p("VMOVDQU %d(SI), X13", off+2)
		g.p("VPSRLW $4, X13, X11") // Y14 holds the corrections when t > 1
		g.p("VINSERTI128 $1, X11, Y13, Y13")
		g.p("VPAND nibbleMask<>(SB), Y13, Y13")
	}
	if t == 1 {
		// Two blocks per iteration: accumulators Y0/Y1, corrections X2/X3.
		for r := range 4 {
			g.p("VXORPS Y%d, Y%d, Y%d", r, r, r)
		}
		block := func(off, xoff, doff, acc, corr int) {
			unpack(off)
			g.p("VPMADDUBSW %d(DI), Y13, Y5", xoff)
			g.p("VPMADDWD Y15, Y5, Y5")
			g.p("VCVTDQ2PS Y5, Y5")
			g.p("VBROADCASTSS %d(DX), Y10", doff)
			g.p("VMULPS Y12, Y10, Y10")
			g.p("VFMADD231PS Y10, Y5, Y%d", acc)
			g.p("VFMADD231SS %d(R11), X12, X%d", doff, corr)
		}
		g.label(name + "_loop")
		g.p("CMPQ CX, $2")
		g.p("JLT %s_tail", name)
		g.p("PREFETCHT0 %d(SI)", prefetchAhead)
		block(0, 0, 0, 0, 2)
		block(18, 32, 4, 1, 3)
		g.p("ADDQ $36, SI")
		g.p("ADDQ $64, DI")
		g.p("ADDQ $8, DX")
		g.p("ADDQ $8, R11")
		g.p("SUBQ $2, CX")
		g.p("JMP %s_loop", name)
		g.label(name + "_tail")
		g.p("TESTQ CX, CX")
		g.p("JZ %s_done", name)
		block(0, 0, 0, 0, 2)
		g.label(name + "_done")
		g.p("VADDPS Y1, Y0, Y0")
		g.p("VADDSS X3, X2, X2")
		g.p("VMULSS eightF<>(SB), X2, X2")
		g.p("VEXTRACTF128 $1, Y0, X15")
		g.p("VADDPS X15, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VSUBSS X2, X0, X0")
		g.p("VMOVSS X0, (R12)")
		g.p("VZEROUPPER")
		g.p("RET")
		return
	}
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("VXORPS Y14, Y14, Y14") // corrections, lane k for row k
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.p("PREFETCHT0 %d(SI)", tilePrefetchAhead)
	unpack(0)
	g.p("VMULPS (DX), Y12, Y11")
	g.p("VMOVUPS Y11, 0(SP)")
	g.p("VFMADD231PS (R11), Y12, Y14")
	for k := range t {
		tmp := 5 + k
		g.p("VPMADDUBSW %s, Y13, Y%d", rowAddr(0, "DI", "R8", "R9", k), tmp)
		g.p("VPMADDWD Y15, Y%d, Y%d", tmp, tmp)
		g.p("VCVTDQ2PS Y%d, Y%d", tmp, tmp)
		g.p("VBROADCASTSS %d(SP), Y10", 4*k)
		g.p("VFMADD231PS Y10, Y%d, Y%d", tmp, k)
	}
	g.p("ADDQ $18, SI")
	g.p("ADDQ $32, DI")
	g.p("ADDQ R10, DX")
	g.p("ADDQ R10, R11")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VMULPS eightF<>(SB), Y14, Y14")
	g.p("VMOVUPS Y14, 0(SP)")
	for k := range t {
		g.p("VEXTRACTF128 $1, Y%d, X15", k)
		g.p("VADDPS X15, X%d, X%d", k, k)
		g.p("VHADDPS X%d, X%d, X%d", k, k, k)
		g.p("VHADDPS X%d, X%d, X%d", k, k, k)
		g.p("VSUBSS %d(SP), X%d, X%d", 4*k, k, k)
		g.p("VMOVSS X%d, %d(R12)", k, 4*k)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// floatTile writes a kernel dotting one row of F32, F16 or BF16 weights with t rows of float32 activations,
// n values (a multiple of 64), unrolled u vectors of 8 deep with one accumulator per (row, vector).
func (g *gen) floatTile(typ string, t int) {
	u := map[int]int{1: 8, 2: 4}[t]
	if t > 2 {
		u = 2
	}
	wsize := 4
	if typ != "F32" {
		wsize = 2
	}
	name := fmt.Sprintf("dot%sT%d", typ, t)
	fmt.Fprintf(&g.Buffer, "\n// func %s(n int, w *byte, x *float32, xstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-40\n", name)
	g.p("MOVQ n+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ x+16(FP), DI")
	g.p("MOVQ xstride+24(FP), R8")
	g.p("MOVQ res+32(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	acc := func(k, v int) int { return k*u + v }
	for i := range t * u {
		g.p("VXORPS Y%d, Y%d, Y%d", i, i, i)
	}
	wreg := t * u
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for off := 0; off < 8*u*wsize; off += 64 {
		g.p("PREFETCHT0 %d(SI)", prefetchAhead+off)
	}
	for v := range u {
		switch typ {
		case "F16":
			g.p("VCVTPH2PS %d(SI), Y%d", 16*v, wreg+v)
		case "BF16": // bfloat16 is the top half of a float32
			g.p("VPMOVZXWD %d(SI), Y%d", 16*v, wreg+v)
			g.p("VPSLLD $16, Y%d, Y%d", wreg+v, wreg+v)
		default:
			g.p("VMOVUPS %d(SI), Y%d", 32*v, wreg+v)
		}
	}
	for k := range t {
		for v := range u {
			g.p("VFMADD231PS %s, Y%d, Y%d", rowAddr(32*v, "DI", "R8", "R9", k), wreg+v, acc(k, v))
		}
	}
	g.p("ADDQ $%d, SI", 8*u*wsize)
	g.p("ADDQ $%d, DI", 32*u)
	g.p("SUBQ $%d, CX", 8*u)
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	for k := range t {
		// Pairwise tree: log2(u) dependent adds instead of u-1.
		for step := 1; step < u; step *= 2 {
			for v := 0; v+step < u; v += 2 * step {
				g.p("VADDPS Y%d, Y%d, Y%d", acc(k, v+step), acc(k, v), acc(k, v))
			}
		}
		// Move the row's sum to Y<k> so hsum's scratch (X15) is free.
		if acc(k, 0) != k {
			g.p("VMOVAPS Y%d, Y%d", acc(k, 0), k)
		}
		g.hsum(k, 4*k)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// kHeader writes the prologue of a K-quant tile kernel: arguments in CX (blocks), SI (weights), DI (Q8_K
// records of activation row 0), R8/R9 (1x/3x the row stride), R12 (results); accumulators Y0..Y<t-1> zeroed.
func (g *gen) kHeader(name string, frame, t, blockBytes int) {
	fmt.Fprintf(&g.Buffer, "\n// func %s(nb int, w *byte, xk *byte, xstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $%d-40\n", name, frame)
	g.p("MOVQ nb+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xk+16(FP), DI")
	g.p("MOVQ xstride+24(FP), R8")
	g.p("MOVQ res+32(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for off := 0; off < blockBytes; off += 64 {
		g.p("PREFETCHT0 %d(SI)", prefetchAhead+off)
	}
}

// kFooter advances to the next block and writes the horizontal sums.
func (g *gen) kFooter(name string, blockBytes, t int) {
	g.p("ADDQ $%d, SI", blockBytes)
	g.p("ADDQ $292, DI")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.tileEnd(name, t)
}

// xk returns the address of byte off of the current Q8_K record of activation row k.
func xk(off, k int) string { return rowAddr(off, "DI", "R8", "R9", k) }

// unpackScalesK4 decodes the 12 packed bytes of 6-bit scales and mins of a Q4_K/Q5_K block at 4(SI) into
// int16 sc[0..7] at 0(SP) and m[0..7] at 16(SP), the way llama.cpp does it with 32-bit masks.
func (g *gen) unpackScalesK4() {
	g.p("MOVL 4(SI), AX")
	g.p("MOVL 8(SI), BX")
	g.p("MOVL 12(SI), DX")
	g.p("MOVL DX, R10") // u3 = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4)
	g.p("SHRL $4, R10")
	g.p("ANDL $0x0f0f0f0f, R10")
	g.p("MOVL BX, R11")
	g.p("SHRL $6, R11")
	g.p("ANDL $0x03030303, R11")
	g.p("SHLL $4, R11")
	g.p("ORL R11, R10")
	g.p("ANDL $0x3f3f3f3f, BX") // u2 = u1 & 0x3f3f3f3f
	g.p("ANDL $0x0f0f0f0f, DX") // u1 = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4)
	g.p("MOVL AX, R11")
	g.p("SHRL $6, R11")
	g.p("ANDL $0x03030303, R11")
	g.p("SHLL $4, R11")
	g.p("ORL R11, DX")
	g.p("ANDL $0x3f3f3f3f, AX") // u0 &= 0x3f3f3f3f
	g.p("SHLQ $32, DX")         // 16 bytes u0 u1 u2 u3 into X14 without a store-forwarding stall
	g.p("ORQ DX, AX")
	g.p("SHLQ $32, R10")
	g.p("ORQ R10, BX")
	g.p("VMOVQ AX, X14")
	g.p("VPINSRQ $1, BX, X14, X14")
	g.p("VPMOVZXBW X14, Y14")
	g.p("VMOVDQU Y14, 0(SP)")
}

// kScaledSums adds, for each activation row k, sc(2j)*dot(Y10, x[64j:]) + sc(2j+1)*dot(Y11, x[64j+32:]) to
// the int32 lanes of Y<5+k>, with the unsigned 4/5-bit weights in Y10/Y11 and the scales read from 0(SP).
func (g *gen) kScaledSums(j, t int) {
	g.p("VPBROADCASTW %d(SP), Y12", 4*j)
	g.p("VPBROADCASTW %d(SP), Y13", 4*j+2)
	for k := range t {
		g.p("VPMADDUBSW %s, Y10, Y14", xk(4+64*j, k))
		g.p("VPMADDWD Y12, Y14, Y14")
		g.p("VPMADDUBSW %s, Y11, Y15", xk(4+64*j+32, k))
		g.p("VPMADDWD Y13, Y15, Y15")
		if j == 0 {
			g.p("VPADDD Y15, Y14, Y%d", 5+k)
		} else {
			g.p("VPADDD Y14, Y%d, Y%d", 5+k, 5+k)
			g.p("VPADDD Y15, Y%d, Y%d", 5+k, 5+k)
		}
	}
}

// kMinsAndScale finishes a Q4_K/Q5_K block: acc_k += d*dx_k*sumi_k - dmin*dx_k*sum_j m_j*sum(x in sub-block j).
func (g *gen) kMinsAndScale(t int) {
	g.p("VPBROADCASTW (SI), X10")
	g.p("VCVTPH2PS X10, Y10")
	g.p("VPBROADCASTW 2(SI), X11")
	g.p("VCVTPH2PS X11, Y11")
	for k := range t {
		g.p("VBROADCASTSS %s, Y12", xk(0, k))
		g.p("VMULPS Y10, Y12, Y13")
		g.p("VMULPS Y11, Y12, Y12")
		g.p("VCVTDQ2PS Y%d, Y%d", 5+k, 5+k)
		g.p("VFMADD231PS Y13, Y%d, Y%d", 5+k, k)
		g.p("VMOVDQU %s, Y14", xk(260, k))
		g.p("VEXTRACTI128 $1, Y14, X15")
		g.p("VPHADDW X15, X14, X14")
		g.p("VPMADDWD 16(SP), X14, X14")
		g.p("VCVTDQ2PS Y14, Y14")
		g.p("VFNMADD231PS Y12, Y14, Y%d", k)
	}
}

// q4KTile: Q4_K weights (144-byte blocks: d, dmin, 12 bytes scales, 128 bytes nibbles) against t rows of
// Q8_K records, after llama.cpp's ggml_vec_dot_q4_K_q8_K.
func (g *gen) q4KTile(t int) {
	name := fmt.Sprintf("dotQ4_KT%d", t)
	g.kHeader(name, 32, t, 144)
	g.unpackScalesK4()
	for j := range 4 {
		g.p("VMOVDQU %d(SI), Y10", 16+32*j)
		g.p("VPSRLW $4, Y10, Y11")
		g.p("VPAND nibbleMask<>(SB), Y10, Y10")
		g.p("VPAND nibbleMask<>(SB), Y11, Y11")
		g.kScaledSums(j, t)
	}
	g.kMinsAndScale(t)
	g.kFooter(name, 144, t)
}

// shiftBitTo4 sets Y<dst> to Y<src> shifted so that bit b of each byte lands on bit 4 (other bits are
// garbage; the caller masks with 0x10).
func (g *gen) shiftBitTo4(b, src, dst int) {
	switch {
	case b < 4:
		g.p("VPSLLW $%d, Y%d, Y%d", 4-b, src, dst)
	case b > 4:
		g.p("VPSRLW $%d, Y%d, Y%d", b-4, src, dst)
	default:
		g.p("VMOVDQA Y%d, Y%d", src, dst)
	}
}

// q5KTile: Q5_K weights (176-byte blocks: d, dmin, 12 bytes scales, 32 bytes fifth bits, 128 bytes nibbles).
func (g *gen) q5KTile(t int) {
	name := fmt.Sprintf("dotQ5_KT%d", t)
	g.kHeader(name, 32, t, 176)
	g.unpackScalesK4()
	for j := range 4 {
		g.p("VMOVDQU %d(SI), Y10", 48+32*j)
		g.p("VPSRLW $4, Y10, Y11")
		g.p("VPAND nibbleMask<>(SB), Y10, Y10")
		g.p("VPAND nibbleMask<>(SB), Y11, Y11")
		g.p("VMOVDQU 16(SI), Y14")
		g.shiftBitTo4(2*j, 14, 15)
		g.p("VPAND bit4Mask<>(SB), Y15, Y15")
		g.p("VPOR Y15, Y10, Y10")
		g.shiftBitTo4(2*j+1, 14, 15)
		g.p("VPAND bit4Mask<>(SB), Y15, Y15")
		g.p("VPOR Y15, Y11, Y11")
		g.kScaledSums(j, t)
	}
	g.kMinsAndScale(t)
	g.kFooter(name, 176, t)
}

// q6KTile: Q6_K weights (210-byte blocks: 128 bytes low nibbles, 64 bytes 2-bit highs, 16 int8 scales, fp16
// d), after llama.cpp's ggml_vec_dot_q6_K_q8_K, but with the -32 offset applied through the Q8_K partial
// sums: sum sc*(q-32)*x = sum sc*q*x - 32*sum_g sc_g*bsum_g.
func (g *gen) q6KTile(t int) {
	name := fmt.Sprintf("dotQ6_KT%d", t)
	g.kHeader(name, 288, t, 210)
	// int16 scales at 256(SP); scale vector p (sc[2p] in the low 8 lanes, sc[2p+1] in the high) at 32p(SP).
	g.p("VPMOVSXBW 192(SI), Y14")
	g.p("VMOVDQU Y14, 256(SP)")
	for p := range 8 {
		g.p("VPBROADCASTW %d(SP), X12", 256+4*p)
		g.p("VPBROADCASTW %d(SP), X13", 258+4*p)
		g.p("VINSERTI128 $1, X13, Y12, Y12")
		g.p("VMOVDQU Y12, %d(SP)", 32*p)
	}
	for j := range 2 {
		g.p("VMOVDQU %d(SI), Y14", 128+32*j) // qh
		g.p("VMOVDQU %d(SI), Y15", 64*j)     // ql, first 32 bytes
		g.p("VPSLLW $4, Y14, Y13")           // q0 = ql&15 | (qh&3)<<4
		g.p("VPAND bits45Mask<>(SB), Y13, Y13")
		g.p("VPAND nibbleMask<>(SB), Y15, Y10")
		g.p("VPOR Y13, Y10, Y10")
		g.p("VPAND bits45Mask<>(SB), Y14, Y13") // q2 = ql>>4 | (qh>>4&3)<<4
		g.p("VPSRLW $4, Y15, Y12")
		g.p("VPAND nibbleMask<>(SB), Y12, Y12")
		g.p("VPOR Y13, Y12, Y12")
		g.p("VMOVDQU %d(SI), Y15", 64*j+32) // ql, next 32 bytes
		g.p("VPSLLW $2, Y14, Y13")          // q1 = ql&15 | (qh>>2&3)<<4
		g.p("VPAND bits45Mask<>(SB), Y13, Y13")
		g.p("VPAND nibbleMask<>(SB), Y15, Y11")
		g.p("VPOR Y13, Y11, Y11")
		g.p("VPSRLW $2, Y14, Y14") // q3 = ql>>4 | (qh>>6&3)<<4
		g.p("VPAND bits45Mask<>(SB), Y14, Y14")
		g.p("VPSRLW $4, Y15, Y13")
		g.p("VPAND nibbleMask<>(SB), Y13, Y13")
		g.p("VPOR Y14, Y13, Y13")
		for k := range t {
			for q := range 4 {
				g.p("VPMADDUBSW %s, Y%d, Y14", xk(4+128*j+32*q, k), 10+q)
				if j == 0 && q == 0 {
					g.p("VPMADDWD %d(SP), Y14, Y%d", 32*(4*j+q), 5+k)
				} else {
					g.p("VPMADDWD %d(SP), Y14, Y14", 32*(4*j+q))
					g.p("VPADDD Y14, Y%d, Y%d", 5+k, 5+k)
				}
			}
		}
	}
	g.p("VPBROADCASTW 208(SI), X10")
	g.p("VCVTPH2PS X10, Y10")
	for k := range t {
		g.p("VMOVDQU %s, Y14", xk(260, k))
		g.p("VPMADDWD 256(SP), Y14, Y14")
		g.p("VPSLLD $5, Y14, Y14")
		g.p("VPSUBD Y14, Y%d, Y%d", 5+k, 5+k)
		g.p("VBROADCASTSS %s, Y15", xk(0, k))
		g.p("VMULPS Y10, Y15, Y15")
		g.p("VCVTDQ2PS Y%d, Y%d", 5+k, 5+k)
		g.p("VFMADD231PS Y15, Y%d, Y%d", 5+k, k)
	}
	g.kFooter(name, 210, t)
}

func (g *gen) vec() {
	g.raw(`
// func dotF32ASM(a, b *float32, n int) float32
TEXT ·dotF32ASM(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ CX, CX
	JZ dotF32ASM_done
dotF32ASM_loop:
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ dotF32ASM_loop
dotF32ASM_done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyF32ASM(alpha float32, x, y *float32, n int)
TEXT ·axpyF32ASM(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	TESTQ CX, CX
	JZ axpyF32ASM_done
axpyF32ASM_loop:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ axpyF32ASM_loop
axpyF32ASM_done:
	VZEROUPPER
	RET

// func dotRowsF32ASM(out, a *float32, stride, rows int, x *float32, n int)
TEXT ·dotRowsF32ASM(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ stride+16(FP), R8
	MOVQ rows+24(FP), CX
	MOVQ x+32(FP), DX
	MOVQ n+40(FP), R9
	TESTQ CX, CX
	JZ dotRows_done
dotRows_row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ R9, BX
	MOVQ SI, R10
	MOVQ DX, R11
dotRows_inner:
	VMOVUPS (R10), Y4
	VMOVUPS 32(R10), Y5
	VMOVUPS 64(R10), Y6
	VMOVUPS 96(R10), Y7
	VFMADD231PS (R11), Y4, Y0
	VFMADD231PS 32(R11), Y5, Y1
	VFMADD231PS 64(R11), Y6, Y2
	VFMADD231PS 96(R11), Y7, Y3
	ADDQ $128, R10
	ADDQ $128, R11
	SUBQ $32, BX
	JNZ dotRows_inner
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, DI
	ADDQ R8, SI
	DECQ CX
	JNZ dotRows_row
dotRows_done:
	VZEROUPPER
	RET

// func axpyRowsF32ASM(y, a *float32, stride, rows int, w *float32, n int)
TEXT ·axpyRowsF32ASM(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ stride+16(FP), R8
	MOVQ rows+24(FP), CX
	MOVQ w+32(FP), DX
	MOVQ n+40(FP), R9
	TESTQ CX, CX
	JZ axpyRows_done
axpyRows_chunk64:
	CMPQ R9, $64
	JLT axpyRows_chunk32
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ CX, BX
axpyRows_row64:
	VBROADCASTSS (R11), Y8
	VFMADD231PS (R10), Y8, Y0
	VFMADD231PS 32(R10), Y8, Y1
	VFMADD231PS 64(R10), Y8, Y2
	VFMADD231PS 96(R10), Y8, Y3
	VFMADD231PS 128(R10), Y8, Y4
	VFMADD231PS 160(R10), Y8, Y5
	VFMADD231PS 192(R10), Y8, Y6
	VFMADD231PS 224(R10), Y8, Y7
	ADDQ R8, R10
	ADDQ $4, R11
	DECQ BX
	JNZ axpyRows_row64
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	ADDQ $256, SI
	SUBQ $64, R9
	JMP axpyRows_chunk64
axpyRows_chunk32:
	TESTQ R9, R9
	JZ axpyRows_done
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ SI, R10
	MOVQ DX, R11
	MOVQ CX, BX
axpyRows_row32:
	VBROADCASTSS (R11), Y8
	VFMADD231PS (R10), Y8, Y0
	VFMADD231PS 32(R10), Y8, Y1
	VFMADD231PS 64(R10), Y8, Y2
	VFMADD231PS 96(R10), Y8, Y3
	ADDQ R8, R10
	ADDQ $4, R11
	DECQ BX
	JNZ axpyRows_row32
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
axpyRows_done:
	VZEROUPPER
	RET
`)
}

// quantQ8_0 writes quantQ8_0ASM, the activation quantizer of 32-value blocks: per block d = max|x|/127,
// q = clamp(trunc(x*(1/d) + copysign(0.5, x*(1/d))), -127, 127) (1/d taken as 0 when d is 0), and
// s = d*sum(q); the same float32 operations, in the same order, as the Go quantizeBlock, so both give
// identical bytes.
func (g *gen) quantQ8_0() {
	name := "quantQ8_0ASM"
	fmt.Fprintf(&g.Buffer, "\n// func %s(x *float32, q *int8, d, s *float32, nb int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-40\n", name)
	g.p("MOVQ x+0(FP), SI")
	g.p("MOVQ q+8(FP), DI")
	g.p("MOVQ d+16(FP), DX")
	g.p("MOVQ s+24(FP), R11")
	g.p("MOVQ nb+32(FP), CX")
	g.p("VMOVDQU q8Perm<>(SB), Y15")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for i := range 4 {
		g.p("VMOVUPS %d(SI), Y%d", 32*i, i)
		g.p("VANDPS absMask<>(SB), Y%d, Y%d", i, 4+i)
	}
	g.p("VMAXPS Y5, Y4, Y4")
	g.p("VMAXPS Y7, Y6, Y6")
	g.p("VMAXPS Y6, Y4, Y4")
	g.p("VEXTRACTF128 $1, Y4, X5")
	g.p("VMAXPS X5, X4, X4")
	g.p("VPERMILPS $0x4e, X4, X5")
	g.p("VMAXPS X5, X4, X4")
	g.p("VPERMILPS $0xb1, X4, X5")
	g.p("VMAXSS X5, X4, X4")         // amax
	g.p("VDIVSS f127<>(SB), X4, X5") // d = amax/127
	g.p("VMOVSS X5, (DX)")
	g.p("VMOVSS one<>(SB), X6")
	g.p("VDIVSS X5, X6, X6") // 1/d
	g.p("VXORPS X7, X7, X7")
	g.p("VCMPSS $4, X7, X5, X7") // d != 0
	g.p("VANDPS X7, X6, X6")
	g.p("VBROADCASTSS X6, Y6")
	for i := range 4 {
		g.p("VMULPS Y6, Y%d, Y%d", i, i)
		g.p("VANDPS signMask<>(SB), Y%d, Y7", i)
		g.p("VORPS half<>(SB), Y7, Y7")
		g.p("VADDPS Y7, Y%d, Y%d", i, i)
		g.p("VCVTTPS2DQ Y%d, Y%d", i, i)
		g.p("VPMINSD i127<>(SB), Y%d, Y%d", i, i)
		g.p("VPMAXSD im127<>(SB), Y%d, Y%d", i, i)
	}
	g.p("VPADDD Y1, Y0, Y8")
	g.p("VPADDD Y3, Y2, Y9")
	g.p("VPADDD Y9, Y8, Y8")
	g.p("VEXTRACTI128 $1, Y8, X9")
	g.p("VPADDD X9, X8, X8")
	g.p("VPSHUFD $0x4e, X8, X9")
	g.p("VPADDD X9, X8, X8")
	g.p("VPSHUFD $0xb1, X8, X9")
	g.p("VPADDD X9, X8, X8")
	g.p("VCVTDQ2PS X8, X8")
	g.p("VMULSS X5, X8, X8") // d*sum
	g.p("VMOVSS X8, (R11)")
	g.p("VPACKSSDW Y1, Y0, Y0")
	g.p("VPACKSSDW Y3, Y2, Y2")
	g.p("VPACKSSWB Y2, Y0, Y0")
	g.p("VPERMD Y0, Y15, Y0")
	g.p("VMOVDQU Y0, (DI)")
	g.p("ADDQ $128, SI")
	g.p("ADDQ $32, DI")
	g.p("ADDQ $4, DX")
	g.p("ADDQ $4, R11")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

func main() {
	dir := flag.String("dir", ".", "directory of the package (kernels) to write matmul_amd64.s and vnni_amd64.s into")
	flag.Parse()
	for name, text := range map[string][]byte{
		"matmul_amd64.s": matmulFile(), "vnni_amd64.s": vnniFile(), "vnni_kernels_amd64.go": vnniDecls(),
		"amx_amd64.s": amxFile(),
	} {
		if err := os.WriteFile(filepath.Join(*dir, name), text, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// matmulFile returns the text of matmul_amd64.s, the AVX2 kernels.
func matmulFile() []byte {
	var g gen
	g.raw("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n\n")
	const bytes8, words2 = 0x0101010101010101, 0x100000001 // a byte or a 32-bit word repeated over 8 bytes
	g.vecConst("nibbleMask", 0x0f*bytes8)
	g.vecConst("eightF", 0x41000000*words2) // float32(8)
	for _, c := range []struct {
		name string
		v    uint64
	}{{"absMask", 0x7fffffff}, {"signMask", 0x80000000}, {"half", 0x3f000000}, {"i127", 127}, {"im127", 0xffffff81}} {
		g.vecConst(c.name, c.v*words2)
	}
	g.raw("DATA f127<>+0(SB)/4, $0x42fe0000\nGLOBL f127<>(SB), RODATA|NOPTR, $4\n\n")
	g.raw("DATA one<>+0(SB)/4, $0x3f800000\nGLOBL one<>(SB), RODATA|NOPTR, $4\n\n")
	// VPERMD indices undoing the lane interleave of VPACKSSDW+VPACKSSWB.
	g.raw("DATA q8Perm<>+0(SB)/8, $0x0000000400000000\nDATA q8Perm<>+8(SB)/8, $0x0000000500000001\n")
	g.raw("DATA q8Perm<>+16(SB)/8, $0x0000000600000002\nDATA q8Perm<>+24(SB)/8, $0x0000000700000003\n")
	g.raw("GLOBL q8Perm<>(SB), RODATA|NOPTR, $32\n\n")
	g.vecConst("bit4Mask", 0x10*bytes8)
	g.vecConst("onesB", bytes8)
	g.vecConst("onesW", 0x0001000100010001)
	g.vecConst("bits45Mask", 0x30*bytes8)
	for t := 1; t <= maxTile; t++ {
		g.q8Tile(t)
		g.q8ITile(t)
		g.q40ITile(t)
		g.q40Tile(t)
		g.floatTile("F16", t)
		g.floatTile("BF16", t)
		g.floatTile("F32", t)
		g.q4KTile(t)
		g.q5KTile(t)
		g.q6KTile(t)
	}
	g.vec()
	g.quantQ8_0()
	g.packRecords()
	g.swiglu()
	g.expShifted()
	g.streamRead()
	return g.Bytes()
}

// packRecords writes packRecordsASM, the AVX2 form of the kernels package's packRecords: per group of 8
// blocks of 32 int8 quants (256 bytes of q), one VNNI activation record of 384 bytes: run v (bytes 32v..)
// holds values 4v..4v+3 of blocks 0..7, that is the 8x8 transpose of the group's 32-bit words; then the 8
// scales twice, the 8 corrections -c*sum(q) and 32 zero bytes.
func (g *gen) packRecords() {
	name := "packRecordsASM"
	fmt.Fprintf(&g.Buffer, "\n// func %s(rec *byte, q *int8, d *float32, ngroups int, c int32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-36\n", name)
	g.p("MOVQ rec+0(FP), DI")
	g.p("MOVQ q+8(FP), SI")
	g.p("MOVQ d+16(FP), DX")
	g.p("MOVQ ngroups+24(FP), CX")
	g.p("MOVL c+32(FP), AX")
	g.p("NEGL AX")
	g.p("VMOVD AX, X15")
	g.p("VPBROADCASTD X15, Y15") // -c
	g.p("VMOVDQU onesB<>(SB), Y14")
	g.p("VMOVDQU onesW<>(SB), Y13")
	g.p("VPXOR Y12, Y12, Y12")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for j := range 8 {
		g.p("VMOVDQU %d(SI), Y%d", 32*j, j)
	}
	// Words: t(2i) = unpacklo(B(2i), B(2i+1)), t(2i+1) = unpackhi; in Y8..Y11 and, reusing the inputs, Y0..Y3.
	g.p("VPUNPCKLDQ Y1, Y0, Y8")  // b00 b10 b01 b11 | b04 b14 b05 b15
	g.p("VPUNPCKHDQ Y1, Y0, Y9")  // b02 b12 b03 b13 | b06 b16 b07 b17
	g.p("VPUNPCKLDQ Y3, Y2, Y10") // b20 b30 b21 b31 | ...
	g.p("VPUNPCKHDQ Y3, Y2, Y11")
	g.p("VPUNPCKLDQ Y5, Y4, Y0") // b40 b50 ...
	g.p("VPUNPCKHDQ Y5, Y4, Y1")
	g.p("VPUNPCKLDQ Y7, Y6, Y2") // b60 b70 ...
	g.p("VPUNPCKHDQ Y7, Y6, Y3")
	// Quadwords: u0 = b00 b10 b20 b30 | b04 b14 b24 b34, u1 the same with words 1 and 5, u2: 2 and 6, u3: 3
	// and 7 (Y4..Y7); u4..u7 for blocks 4..7 (Y8..Y11).
	g.p("VPUNPCKLQDQ Y10, Y8, Y4")
	g.p("VPUNPCKHQDQ Y10, Y8, Y5")
	g.p("VPUNPCKLQDQ Y11, Y9, Y6")
	g.p("VPUNPCKHQDQ Y11, Y9, Y7")
	g.p("VPUNPCKLQDQ Y2, Y0, Y8")
	g.p("VPUNPCKHQDQ Y2, Y0, Y9")
	g.p("VPUNPCKLQDQ Y3, Y1, Y10")
	g.p("VPUNPCKHQDQ Y3, Y1, Y11")
	// Runs: v = u(v mod 4) and u(4 + v mod 4), low halves for v < 4, high halves for v >= 4.
	for v := range 8 {
		imm := 0x20
		if v >= 4 {
			imm = 0x31
		}
		g.p("VPERM2I128 $0x%x, Y%d, Y%d, Y%d", imm, 8+v%4, 4+v%4, v)
		g.p("VMOVDQU Y%d, %d(DI)", v, 32*v)
	}
	// Block sums: lane j of each run holds 4 quants of block j; pairs of bytes summed as words over the 8
	// runs (at most 8*2*127 in magnitude), then the word pairs as 32-bit lanes.
	for v := range 8 {
		g.p("VPMADDUBSW Y%d, Y14, Y%d", v, v)
	}
	g.p("VPADDW Y1, Y0, Y0")
	g.p("VPADDW Y3, Y2, Y2")
	g.p("VPADDW Y5, Y4, Y4")
	g.p("VPADDW Y7, Y6, Y6")
	g.p("VPADDW Y2, Y0, Y0")
	g.p("VPADDW Y6, Y4, Y4")
	g.p("VPADDW Y4, Y0, Y0")
	g.p("VPMADDWD Y13, Y0, Y0")
	g.p("VPMULLD Y15, Y0, Y0")
	g.p("VMOVUPS (DX), Y1")
	g.p("VMOVUPS Y1, %d(DI)", 256)
	g.p("VMOVUPS Y1, %d(DI)", 288)
	g.p("VMOVDQU Y0, %d(DI)", 320)
	g.p("VMOVDQU Y12, %d(DI)", 352)
	g.p("ADDQ $%d, DI", 384)
	g.p("ADDQ $256, SI")
	g.p("ADDQ $32, DX")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

// swiglu writes swigluASM: gate[i] = gate[i] / (1 + e^-gate[i]) * up[i] for 8 values at a time, with e^x
// computed as kernels.Exp does (Cephes expf) after clamping x to [-87.33654, 88] so that 2^n stays a normal
// float (Exp's special cases change silu by less than 1e-37 there).
func (g *gen) swiglu() {
	consts := []struct {
		name string
		v    float32
	}{
		{"expLo", -87.33654}, {"expHi", 88}, {"log2e", 1.44269504088896341},
		{"ln2Hi", 0.693359375}, {"ln2Lo", -2.12194440e-4},
		{"expC0", 1.9875691500e-4}, {"expC1", 1.3981999507e-3}, {"expC2", 8.3334519073e-3},
		{"expC3", 4.1665795894e-2}, {"expC4", 1.6666665459e-1}, {"expC5", 5.0000001201e-1}, {"oneF", 1},
	}
	for _, c := range consts {
		g.vecConst(c.name, uint64(math.Float32bits(c.v))*0x100000001)
	}
	g.raw(`
// func swigluASM(gate, up *float32, n int)
TEXT ·swigluASM(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), SI
	MOVQ up+8(FP), DI
	MOVQ n+16(FP), CX
	VMOVUPS signMask<>(SB), Y15
	VMOVUPS expC0<>(SB), Y14
	TESTQ CX, CX
	JZ swiglu_done
swiglu_loop:
	VMOVUPS (SI), Y0
	VXORPS Y15, Y0, Y1
	VMAXPS expLo<>(SB), Y1, Y1
	VMINPS expHi<>(SB), Y1, Y1
` + expPoly + `	VADDPS oneF<>(SB), Y4, Y4
	VDIVPS Y4, Y0, Y0
	VMULPS (DI), Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ swiglu_loop
swiglu_done:
	VZEROUPPER
	RET
`)
}

// expPoly is the AVX2 e^x of swiglu and expSumASM (Cephes expf, as kernels.Exp): Y4 = e^Y1 for Y1 already
// clamped to [-87.33654, 88], with Y14 = expC0; it clobbers Y1, Y2, Y3 and Y5.
const expPoly = `	VMULPS log2e<>(SB), Y1, Y2
	VROUNDPS $0, Y2, Y2
	VFNMADD231PS ln2Hi<>(SB), Y2, Y1
	VFNMADD231PS ln2Lo<>(SB), Y2, Y1
	VMULPS Y1, Y1, Y3
	VMOVAPS Y14, Y4
	VFMADD213PS expC1<>(SB), Y1, Y4
	VFMADD213PS expC2<>(SB), Y1, Y4
	VFMADD213PS expC3<>(SB), Y1, Y4
	VFMADD213PS expC4<>(SB), Y1, Y4
	VFMADD213PS expC5<>(SB), Y1, Y4
	VADDPS oneF<>(SB), Y1, Y1
	VFMADD213PS Y1, Y3, Y4
	VCVTPS2DQ Y2, Y5
	VPADDD i127<>(SB), Y5, Y5
	VPSLLD $23, Y5, Y5
	VMULPS Y5, Y4, Y4
`

// expShifted writes the two AVX2 loops of kernels.ExpShifted (softmax over attention scores, left
// unnormalized): maxF32ASM returns the largest of x[0..n), expSumASM sets x[i] = e^(x[i]-shift) for i < n
// and returns their sum (n a multiple of 8, at least 8 for maxF32ASM). e^r is swiglu's (kernels.Exp's
// Cephes expf), after clamping x[i]-shift from below at -87.33654, which keeps 2^n a normal float: below it
// the result is 1.2e-38 where Exp gives 0, a relative change of the sum below 1e-37 (shift is the maximum, so
// the sum is at least 1).
func (g *gen) expShifted() {
	g.raw(`
// func maxF32ASM(x *float32, n int) float32
TEXT ·maxF32ASM(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JZ maxf32_fold
maxf32_loop:
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JNZ maxf32_loop
maxf32_fold:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func expSumASM(x *float32, n int, shift float32) float32
TEXT ·expSumASM(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y0
	VXORPS Y6, Y6, Y6
	VMOVUPS expC0<>(SB), Y14
	TESTQ CX, CX
	JZ expsum_fold
expsum_loop:
	VMOVUPS (SI), Y1
	VSUBPS Y0, Y1, Y1
	VMAXPS expLo<>(SB), Y1, Y1
` + expPoly + `	VMOVUPS Y4, (SI)
	VADDPS Y4, Y6, Y6
	ADDQ $32, SI
	SUBQ $8, CX
	JNZ expsum_loop
expsum_fold:
	VEXTRACTF128 $1, Y6, X7
	VADDPS X7, X6, X6
	VHADDPS X6, X6, X6
	VHADDPS X6, X6, X6
	VMOVSS X6, ret+24(FP)
	VZEROUPPER
	RET
`)
}

// q8ITile writes dotQ8_0IT<t>: one row of interleaved Q8_0 weights (see kernels.Interleave: per group of 8
// blocks, 8 fp16 scales then 8 runs of 32 bytes, run v holding values 4v..4v+3 of each block) dotted with t
// rows of activations interleaved the same way. A run's VPMADDUBSW+VPMADDWD leave in int32 lane j a partial sum
// of block j, so the 8 runs add up, in lane j, block j's whole integer dot product: one conversion and one FMA
// with the vector of the 8 blocks' scale products per group and row, instead of one per block.
//
// xq row k is at xq + k*qstride, its block scales (float32, row-major) at xd + k*dstride, both in bytes.
func (g *gen) q8ITile(t int) {
	name := fmt.Sprintf("dotQ8_0IT%d", t)
	fmt.Fprintf(&g.Buffer, "\n// func %s(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.p("MOVQ ngroups+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xq+16(FP), DI")
	g.p("MOVQ xd+24(FP), DX")
	g.p("MOVQ qstride+32(FP), R8")
	g.p("MOVQ dstride+40(FP), R10")
	g.p("MOVQ res+48(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	g.p("LEAQ (R10)(R10*2), R11")
	// Y0..Y4 float sums per row, Y5..Y9 integer sums of the current group, Y10 |w|, Y11 scratch, Y12 weight
	// scales, Y13 scale products, Y15 int16 ones.
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for k := range t {
		g.p("VPXOR Y%d, Y%d, Y%d", 5+k, 5+k, 5+k)
	}
	ahead := interleavedPrefetchAhead
	if t == 1 {
		ahead = interleavedPrefetchAhead1
	}
	for v := range 8 {
		if v%2 == 0 {
			g.p("PREFETCHT0 %d(SI)", ahead+32*v)
		}
		if v == 7 {
			g.p("PREFETCHT0 %d(SI)", ahead+256) // a group spans 272 bytes: a fifth line now and then
		}
		if t == 1 {
			g.p("VPABSB %d(SI), Y10", 16+32*v)
		} else {
			g.p("VMOVDQU %d(SI), Y14", 16+32*v)
			g.p("VPABSB Y14, Y10")
		}
		for k := range t {
			g.p("VMOVDQU %s, Y11", rowAddr(32*v, "DI", "R8", "R9", k))
			if t == 1 {
				g.p("VPSIGNB %d(SI), Y11, Y11", 16+32*v)
			} else {
				g.p("VPSIGNB Y14, Y11, Y11")
			}
			g.p("VPMADDUBSW Y11, Y10, Y11")
			g.p("VPMADDWD Y15, Y11, Y11")
			g.p("VPADDD Y11, Y%d, Y%d", 5+k, 5+k)
		}
	}
	g.p("VCVTPH2PS (SI), Y12")
	for k := range t {
		g.p("VMULPS %s, Y12, Y13", rowAddr(0, "DX", "R10", "R11", k))
		g.p("VCVTDQ2PS Y%d, Y%d", 5+k, 5+k)
		g.p("VFMADD231PS Y13, Y%d, Y%d", 5+k, k)
	}
	g.p("ADDQ $272, SI")
	g.p("ADDQ $256, DI")
	g.p("ADDQ $32, DX")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.tileEnd(name, t)
}

// q40ITile writes dotQ4_0IT<t>: one row of interleaved Q4_0 weights (per group of 8 blocks, 8 fp16 scales then
// 4 runs of 32 bytes, run v holding quant bytes 4v..4v+3 of each block) dotted with t rows of activations
// interleaved as for Q8_0. Run v's low nibbles meet activation run v and its high nibbles run 4+v; nibbles are
// unsigned, so VPMADDUBSW takes them as they are (no sign trick), each of its int16 lanes at most 2*15*127 = 3810
// in magnitude. A group's 8 products add up in int16, starting from the activation row's offset vector xc
// (kernels.offsetQ4_0I: lane 2j holds -8 times the sum of the activations lane 2j meets in block j), so that
// each lane ends at the sum of (nibble-8)*x over its 16 values, at most 8*127*16 = 16256 in magnitude: VPADDW
// wraps, so the partial sums may leave the int16 range as long as the final one is in it. One VPMADDWD per
// group and row then gives the 8 blocks' exact int32 sums, and one conversion and FMA with the scale products
// their float sum. VPMADDUBSW, VPMADDWD, VMULPS and VFMADD share the two vector multiply pipes, and at batch 5
// these kernels are bound by them (BenchmarkInterleavedTileHot), so the offset costs no float work per row.
func (g *gen) q40ITile(t int) {
	name := fmt.Sprintf("dotQ4_0IT%d", t)
	fmt.Fprintf(&g.Buffer, "\n// func %s(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-64\n", name)
	g.p("MOVQ ngroups+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ xq+16(FP), DI")
	g.p("MOVQ xd+24(FP), DX")
	g.p("MOVQ xc+32(FP), BX")
	g.p("MOVQ qstride+40(FP), R8")
	g.p("MOVQ dstride+48(FP), R10")
	g.p("MOVQ res+56(FP), R12")
	g.p("LEAQ (R8)(R8*2), R9")
	g.p("LEAQ (R10)(R10*2), R11")
	// Y0..Y4 float sums per row, Y5..Y9 int16 then int32 sums of the current group, Y10/Y11 low/high nibbles,
	// Y12/Y13 scratch, Y14 weight scales, Y15 int16 ones.
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	ahead := interleavedPrefetchAhead
	if t == 1 {
		ahead = interleavedPrefetchAhead1
	}
	for k := range t {
		g.p("VMOVDQU %s, Y%d", rowAddr(0, "BX", "R10", "R11", k), 5+k)
	}
	g.p("VMOVDQU nibbleMask<>(SB), Y14") // until the group's scales replace it
	for v := range 4 {
		if v != 1 {
			g.p("PREFETCHT0 %d(SI)", ahead+64*max(0, v-1))
			if t > 1 {
				g.p("PREFETCHT2 %d(SI)", interleavedPrefetchL2+64*max(0, v-1))
			}
		}
		g.p("VMOVDQU %d(SI), Y11", 16+32*v)
		g.p("VPAND Y14, Y11, Y10")
		g.p("VPSRLW $4, Y11, Y11")
		g.p("VPAND Y14, Y11, Y11")
		for k := range t {
			g.p("VPMADDUBSW %s, Y10, Y12", rowAddr(32*v, "DI", "R8", "R9", k))
			g.p("VPMADDUBSW %s, Y11, Y13", rowAddr(32*(4+v), "DI", "R8", "R9", k))
			g.p("VPADDW Y13, Y12, Y12")
			g.p("VPADDW Y12, Y%d, Y%d", 5+k, 5+k)
		}
	}
	g.p("VCVTPH2PS (SI), Y14")
	for k := range t {
		g.p("VPMADDWD Y15, Y%d, Y%d", 5+k, 5+k)
		g.p("VMULPS %s, Y14, Y13", rowAddr(0, "DX", "R10", "R11", k))
		g.p("VCVTDQ2PS Y%d, Y%d", 5+k, 5+k)
		g.p("VFMADD231PS Y13, Y%d, Y%d", 5+k, k)
	}
	g.p("ADDQ $144, SI")
	g.p("ADDQ $256, DI")
	g.p("ADDQ $32, DX")
	g.p("ADDQ $32, BX")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.tileEnd(name, t)
}

// streamRead writes streamReadASM, the read-bandwidth probe: it reads n bytes (a multiple of 256) at p with
// 256-bit loads into four XOR accumulators and returns their fold, so that nothing but the reads matters. It
// prefetches the way the VNNI kernels do (into L2 8 KiB ahead, into L1 1 KiB ahead), which reads 12% faster on
// the Xeon than leaving the fetching to the hardware prefetchers: the probe should measure the fastest read.
func (g *gen) streamRead() {
	name := "streamReadASM"
	fmt.Fprintf(&g.Buffer, "\n// func %s(p *byte, n int) uint64\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-24\n", name)
	g.p("MOVQ p+0(FP), SI")
	g.p("MOVQ n+8(FP), CX")
	for k := range 4 {
		g.p("VPXOR Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for off := 0; off < 256; off += 64 {
		g.p("PREFETCHT2 %d(SI)", 8192+off)
		g.p("PREFETCHT0 %d(SI)", 1024+off)
	}
	for k := range 8 {
		g.p("VPXOR %d(SI), Y%d, Y%d", 32*k, k%4, k%4)
	}
	g.p("ADDQ $256, SI")
	g.p("SUBQ $256, CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VPXOR Y1, Y0, Y0")
	g.p("VPXOR Y3, Y2, Y2")
	g.p("VPXOR Y2, Y0, Y0")
	g.p("VEXTRACTI128 $1, Y0, X1")
	g.p("VPXOR X1, X0, X0")
	g.p("VPSHUFD $0x4e, X0, X1")
	g.p("VPXOR X1, X0, X0")
	g.p("VMOVQ X0, AX")
	g.p("VZEROUPPER")
	g.p("MOVQ AX, ret+16(FP)")
	g.p("RET")
}
