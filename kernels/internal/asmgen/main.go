// Command asmgen writes kernels/matmul_amd64.s, the AVX2/FMA/F16C kernels of package kernels. The assembly
// is plain text built here from a few loop templates, so that the tile variants (1..5 activation rows per
// weight row) stay consistent. Run it through `go generate ./kernels/`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
)

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

// hsum reduces the 8 lanes of Y<acc> and stores the sum at off(R12).
func (g *gen) hsum(acc, off int) {
	g.p("VEXTRACTF128 $1, Y%d, X15", acc)
	g.p("VADDPS X15, X%d, X%d", acc, acc)
	g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
	g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
	g.p("VMOVSS X%d, %d(R12)", acc, off)
}

// q8Tile writes a kernel dotting one row of 32-value blocks (Q8_0 or Q4_0) with t rows of Q8_0 activations.
// Per block: d_w*d_x * sum(w*x), the integer sum by the sign trick (|w| unsigned times sign(w)*x signed,
// VPMADDUBSW then VPMADDWD with ones) as in llama.cpp's ggml_vec_dot_q8_0_q8_0.
func (g *gen) q8Tile(typ string, blockBytes, t int) {
	name := fmt.Sprintf("dot%sT%d", typ, t)
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
	g.p("LEAQ (R10)(R10*2), R11")
	for k := range t {
		g.p("VXORPS Y%d, Y%d, Y%d", k, k, k)
	}
	g.p("VPCMPEQW Y15, Y15, Y15")
	g.p("VPSRLW $15, Y15, Y15") // 16 x int16(1)
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.p("VPBROADCASTW (SI), X12")
	g.p("VCVTPH2PS X12, Y12") // d_w
	switch typ {
	case "Q8_0":
		g.p("VMOVDQU 2(SI), Y13")
	case "Q4_0":
		g.p("VMOVDQU 2(SI), X13")
		g.p("VPSRLW $4, X13, X14")
		g.p("VINSERTI128 $1, X14, Y13, Y13")
		g.p("VPAND nibbleMask<>(SB), Y13, Y13")
		g.p("VPSUBB eights<>(SB), Y13, Y13")
	}
	g.p("VPSIGNB Y13, Y13, Y14") // |w|
	for k := range t {
		tmp := 5 + k
		sc := 10 + k%2
		g.p("VMOVDQU %s, Y%d", rowAddr(0, "DI", "R8", "R9", k), tmp)
		g.p("VPSIGNB Y13, Y%d, Y%d", tmp, tmp)
		g.p("VPMADDUBSW Y%d, Y14, Y%d", tmp, tmp)
		g.p("VPMADDWD Y15, Y%d, Y%d", tmp, tmp)
		g.p("VCVTDQ2PS Y%d, Y%d", tmp, tmp)
		g.p("VBROADCASTSS %s, Y%d", rowAddr(0, "DX", "R10", "R11", k), sc)
		g.p("VMULPS Y12, Y%d, Y%d", sc, sc)
		g.p("VFMADD231PS Y%d, Y%d, Y%d", sc, tmp, k)
	}
	g.p("ADDQ $%d, SI", blockBytes)
	g.p("ADDQ $32, DI")
	g.p("ADDQ $4, DX")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	for k := range t {
		g.hsum(k, 4*k)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// floatTile writes a kernel dotting one row of F32 or F16 weights with t rows of float32 activations,
// n values (a multiple of 32), unrolled u vectors of 8 deep with one accumulator per (row, vector).
func (g *gen) floatTile(typ string, t int) {
	u := 4
	if t > 2 {
		u = 2
	}
	wsize := 4
	if typ == "F16" {
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
	for v := range u {
		if typ == "F16" {
			g.p("VCVTPH2PS %d(SI), Y%d", 16*v, wreg+v)
		} else {
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
		for v := 1; v < u; v++ {
			g.p("VADDPS Y%d, Y%d, Y%d", acc(k, v), acc(k, 0), acc(k, 0))
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
`)
}

func main() {
	out := flag.String("out", "matmul_amd64.s", "output file")
	flag.Parse()
	var g gen
	g.raw("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n\n")
	g.raw("DATA nibbleMask<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f\nDATA nibbleMask<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f\n")
	g.raw("DATA nibbleMask<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f\nDATA nibbleMask<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f\n")
	g.raw("GLOBL nibbleMask<>(SB), RODATA|NOPTR, $32\n\n")
	g.raw("DATA eights<>+0(SB)/8, $0x0808080808080808\nDATA eights<>+8(SB)/8, $0x0808080808080808\n")
	g.raw("DATA eights<>+16(SB)/8, $0x0808080808080808\nDATA eights<>+24(SB)/8, $0x0808080808080808\n")
	g.raw("GLOBL eights<>(SB), RODATA|NOPTR, $32\n")
	for t := 1; t <= maxTile; t++ {
		g.q8Tile("Q8_0", 34, t)
		g.q8Tile("Q4_0", 18, t)
		g.floatTile("F16", t)
		g.floatTile("F32", t)
	}
	g.vec()
	if err := os.WriteFile(*out, g.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
