package main

import (
	"fmt"
	"strings"
)

// The VNNI kernels (vnni_amd64.s, with the float rows of floatRows) dot interleaved Q8_0 or Q4_0 weight rows (see kernels.Interleave; Q8_0 in
// its biased form, each quant stored as q+128, an unsigned byte) with activation records (see the kernels
// package's vnniRecord): per group of 8 blocks, 256 bytes of int8 quants interleaved like the weights, then
// 16 float32 scales (the 8 blocks' d_x twice), then 8 int32 corrections -C*sum(q_x) (C = 128 for Q8_0, 8 for
// Q4_0), 384 bytes in all. VPDPBUSD multiplies the unsigned weight bytes with the signed activations and adds
// groups of 4 products into int32 lanes, so lane j of a 32-byte run sums block j alone; the integer sums of a
// group start from the corrections (which undo the +128 or +8 offset of the weights) and are scaled once per
// group by the products of the blocks' scales.
//
// A kernel computes MR x NR dot products: weight rows r < MR at w + r*wstride, activation records a < NR at
// x + a*xstride, result (r, a) stored at out + a*ostride + 4*r (strides in bytes). The AVX-512 kernels take
// MR up to 2 (the two rows side by side in each vector, vnni512Pair) and NR up to 6; the
// AVX-VNNI kernels (VEX-encoded VPDPBUSD on 256-bit registers, for CPUs without AVX-512) take MR = 1 and NR
// up to 6 (16 registers).

// vnniRecordBytes is the size of one group's activation record; vnniScales and vnniCorr are the offsets of
// its scales and corrections.
const (
	vnniRecordBytes = 384
	vnniScales      = 256
	vnniCorr        = 320
)

// vnniMaxNR and vnniMaxMR bound the tile shapes generated.
const (
	vnniMaxNR = 6
	vnniMaxMR = 2
)

// vnniPrefetchAhead is the distance (bytes) the AVX-512 and AVX-VNNI float rows prefetch weights ahead of
// the row being read. On the Xeon (Emerald Rapids) this was tuned on, one thread streaming a 1.1B decode step
// reads at 0.96-1.08 of a plain read's speed with 4 KiB, 0.89 with 1 KiB (the AVX2 kernels' distance, tuned
// on an AMD EPYC) and 0.92-0.98 with 2 KiB.
const vnniPrefetchAhead = 4096

// The VNNI kernels prefetch weights in two steps: into L2 vnniPrefetchL2 bytes ahead, into L1
// vnniPrefetchL1 bytes ahead. With batch 1 (decode) this reads at 1.1-1.2 of a plain read's speed on one
// thread (4 KiB into L1 alone: 1.1-1.15), with batch 5 at 1.07-1.18 for Q8_0 (0.86) and 0.78 for Q4_0
// (0.77-0.86); without software prefetch, 0.9-1.0 and 0.45-0.58.
const (
	vnniPrefetchL2 = 8192
	vnniPrefetchL1 = 1024
)

// vnniAddr returns the address of byte off of record (or output) a, given the base of rows 0..2 (b0, with
// stride s1) and of rows 3..5 (b3 = b0 + 3*stride).
func vnniAddr(off int, b0, b3, s1 string, a int) string {
	o := ""
	if off != 0 {
		o = fmt.Sprint(off)
	}
	switch a {
	case 0:
		return fmt.Sprintf("%s(%s)", o, b0)
	case 1:
		return fmt.Sprintf("%s(%s)(%s*1)", o, b0, s1)
	case 2:
		return fmt.Sprintf("%s(%s)(%s*2)", o, b0, s1)
	case 3:
		return fmt.Sprintf("%s(%s)", o, b3)
	case 4:
		return fmt.Sprintf("%s(%s)(%s*1)", o, b3, s1)
	case 5:
		return fmt.Sprintf("%s(%s)(%s*2)", o, b3, s1)
	}
	panic("record out of range")
}

// xrec is the address of byte off of activation record a in the current group.
func xrec(off, a int) string { return vnniAddr(off, "DI", "R13", "R8", a) }

// wrow is the address of byte off of weight row r in the current group.
func wrow(off, r int) string {
	if r == 0 {
		return fmt.Sprintf("%d(SI)", off)
	}
	return fmt.Sprintf("%d(SI)(BX*1)", off)
}

// vnniHeader writes a VNNI kernel's prologue: arguments in CX (groups), SI (weights), BX (weight stride),
// DI/R13 (records 0 and 3), R8 (record stride), R12/R10 (outputs 0 and 3), AX (output stride).
func (g *gen) vnniHeader(name string) {
	fmt.Fprintf(&g.Buffer, "\n// func %s(ngroups int, w *byte, wstride int, x *byte, xstride int, out *float32, ostride int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	g.p("MOVQ ngroups+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ wstride+16(FP), BX")
	g.p("MOVQ x+24(FP), DI")
	g.p("MOVQ xstride+32(FP), R8")
	g.p("MOVQ out+40(FP), R12")
	g.p("MOVQ ostride+48(FP), AX")
	g.p("LEAQ (R8)(R8*2), R9")
	g.p("LEAQ (DI)(R9*1), R13")
	g.p("LEAQ (AX)(AX*2), R10")
	g.p("ADDQ R12, R10")
}

// vnniFooter advances to the next group and loops.
func (g *gen) vnniFooter(name string, groupBytes int) {
	g.p("ADDQ $%d, SI", groupBytes)
	g.p("ADDQ $%d, DI", vnniRecordBytes)
	g.p("ADDQ $%d, R13", vnniRecordBytes)
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
}

// vnniGroupBytes is the size of one row's group of 8 blocks of typ ("Q8_0" or "Q4_0") in the interleaved layout.
func vnniGroupBytes(typ string) int {
	if typ == "Q4_0" {
		return 144
	}
	return 272
}

// vnniPrefetch prefetches groupBytes of each of rows weight rows, into L2 vnniPrefetchL2 bytes ahead of the
// current group and into L1 vnniPrefetchL1 bytes ahead.
func (g *gen) vnniPrefetch(rows, groupBytes int) {
	for r := range rows {
		for off := 0; off < groupBytes; off += 64 {
			g.p("PREFETCHT2 %s", wrow(vnniPrefetchL2+off, r))
			g.p("PREFETCHT0 %s", wrow(vnniPrefetchL1+off, r))
		}
	}
}

// outAddr is the address of result (r, a).
func outAddr(r, a int) string { return vnniAddr(4*r, "R12", "R10", "AX", a) }

// vnni512 writes an AVX-512 VNNI kernel for typ ("Q8_0" or "Q4_0") and an mr x nr tile.
//
// Registers: Z(r*nr+a) integer sums of the group, Z(12+r*nr+a) float sums, Z24/Z25 weight vectors, Z26..Z31
// activation vectors (each loaded once and multiplied with the mr weight rows: loads, not the integer units,
// would bound the loop with memory operands); after the integer sums, Z24/Z25 hold the weight scales (the 8
// fp16 block scales twice, as float32) and Z26.. scratch.
func (g *gen) vnni512(typ string, mr, nr int) {
	if mr == 2 {
		g.vnni512Pair(typ, nr)
		return
	}
	name := fmt.Sprintf("vnni512%sM%dN%d", typ, mr, nr)
	groupBytes := vnniGroupBytes(typ)
	ia := func(r, a int) int { return r*nr + a }
	fa := func(r, a int) int { return 12 + r*nr + a }
	g.vnniHeader(name)
	for r := range mr {
		for a := range nr {
			g.p("VPXORD Z%d, Z%d, Z%d", fa(r, a), fa(r, a), fa(r, a))
		}
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.vnniPrefetch(mr, groupBytes)
	// Integer sums start from the corrections (a 256-bit load zeroes the upper half).
	for r := range mr {
		for a := range nr {
			g.p("VMOVDQU %s, Y%d", xrec(vnniCorr, a), ia(r, a))
		}
	}
	// dots multiplies activation vector off of each record with weight vector Z(24+r) of each row, the
	// weight vector made by load(r).
	dots := func(off int, load func(r int)) {
		for a := range nr {
			g.p("VMOVDQU64 %s, Z%d", xrec(off, a), 26+a)
		}
		for r := range mr {
			load(r)
			for a := range nr {
				g.p("VPDPBUSD Z%d, Z%d, Z%d", 26+a, 24+r, ia(r, a))
			}
		}
	}
	if typ == "Q8_0" {
		for i := range 4 {
			dots(64*i, func(r int) { g.p("VMOVDQU64 %s, Z%d", wrow(16+64*i, r), 24+r) })
		}
	} else {
		// Weight bytes 16+64u hold runs 2u and 2u+1: their low nibbles meet activation bytes 64u.., their high
		// nibbles activation bytes 128+64u...
		for u := range 2 {
			dots(64*u, func(r int) {
				g.p("VMOVDQU64 %s, Z%d", wrow(16+64*u, r), 24+r)
				g.p("VPANDD.BCST vnniNibbles<>(SB), Z%d, Z%d", 24+r, 24+r)
			})
			dots(128+64*u, func(r int) {
				g.p("VMOVDQU64 %s, Z%d", wrow(16+64*u, r), 24+r)
				g.p("VPSRLW $4, Z%d, Z%d", 24+r, 24+r)
				g.p("VPANDD.BCST vnniNibbles<>(SB), Z%d, Z%d", 24+r, 24+r)
			})
		}
	}
	for r := range mr {
		g.p("VBROADCASTI32X4 %s, Y26", wrow(0, r))
		g.p("VCVTPH2PS Y26, Z%d", 24+r)
	}
	for r := range mr {
		for a := range nr {
			g.p("VCVTDQ2PS Z%d, Z%d", ia(r, a), ia(r, a))
			g.p("VMULPS %s, Z%d, Z%d", xrec(vnniScales, a), 24+r, 26+a)
			g.p("VFMADD231PS Z%d, Z%d, Z%d", 26+a, ia(r, a), fa(r, a))
		}
	}
	g.vnniFooter(name, groupBytes)
	// Horizontal sums through Y0/X1 (the integer registers are free now; VHADDPS has no EVEX form).
	for r := range mr {
		for a := range nr {
			f := fa(r, a)
			g.p("VEXTRACTF64X4 $1, Z%d, Y0", f)
			g.p("VADDPS Y%d, Y0, Y0", f)
			g.p("VEXTRACTF128 $1, Y0, X1")
			g.p("VADDPS X1, X0, X0")
			g.p("VHADDPS X0, X0, X0")
			g.p("VHADDPS X0, X0, X0")
			g.p("VMOVSS X0, %s", outAddr(r, a))
		}
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// vnni512Pair writes the AVX-512 VNNI kernel of a 2 x nr tile for typ, with the two weight rows side by side
// in each vector: a 32-byte run of row 0 in the low half and the same run of row 1 in the high half
// (VINSERTI64X4), multiplied with the activation run broadcast to both halves (VBROADCASTI64X4). Lane j of
// the integer sums is then block j of row 0 and lane 8+j block j of row 1, every lane a whole block's sum,
// so one conversion, one multiply by the scale products (the records hold the 8 d_x twice) and one FMA per
// activation serve both rows: half the float work of vnni512's 1-row vectors, whose lanes j and 8+j hold two
// halves of one block, for one shuffle per weight vector.
//
// Registers: Z(a) integer sums, Z(12+a) float sums (row 0 in lanes 0..7, row 1 in 8..15), Z24/Z25 weight
// vectors (low and high nibbles for Q4_0), then the weight scales; Z26.. activations.
func (g *gen) vnni512Pair(typ string, nr int) {
	name := fmt.Sprintf("vnni512%sM2N%d", typ, nr)
	groupBytes := vnniGroupBytes(typ)
	g.vnniHeader(name)
	for a := range nr {
		g.p("VPXORD Z%d, Z%d, Z%d", 12+a, 12+a, 12+a)
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.vnniPrefetch(2, groupBytes)
	// Integer sums start from the corrections, in both halves.
	for a := range nr {
		g.p("VBROADCASTI64X4 %s, Z%d", xrec(vnniCorr, a), a)
	}
	// pair loads run v (32 bytes at 16+32v) of both rows into Z24.
	pair := func(v int) {
		g.p("VMOVDQU64 %s, Y24", wrow(16+32*v, 0))
		g.p("VINSERTI64X4 $1, %s, Z24, Z24", wrow(16+32*v, 1))
	}
	// dots multiplies activation run off (broadcast) of each record with weight vector Z(w).
	dots := func(off, w int) {
		for a := range nr {
			g.p("VBROADCASTI64X4 %s, Z%d", xrec(off, a), 26+a)
		}
		for a := range nr {
			g.p("VPDPBUSD Z%d, Z%d, Z%d", 26+a, w, a)
		}
	}
	if typ == "Q8_0" {
		for v := range 8 {
			pair(v)
			dots(32*v, 24)
		}
	} else {
		// Weight run v's low nibbles meet activation bytes 32v.., its high nibbles bytes 128+32v...
		for v := range 4 {
			pair(v)
			g.p("VPSRLW $4, Z24, Z25")
			g.p("VPANDD.BCST vnniNibbles<>(SB), Z24, Z24")
			g.p("VPANDD.BCST vnniNibbles<>(SB), Z25, Z25")
			dots(32*v, 24)
			dots(128+32*v, 25)
		}
	}
	g.p("VMOVDQU64 %s, X25", wrow(0, 0))
	g.p("VINSERTI32X4 $1, %s, Y25, Y25", wrow(0, 1))
	g.p("VCVTPH2PS Y25, Z24")
	for a := range nr {
		g.p("VCVTDQ2PS Z%d, Z%d", a, a)
		g.p("VMULPS %s, Z24, Z%d", xrec(vnniScales, a), 26+a)
		g.p("VFMADD231PS Z%d, Z%d, Z%d", 26+a, a, 12+a)
	}
	g.vnniFooter(name, groupBytes)
	// Horizontal sums: row 0 from the low 8 lanes, row 1 from the high 8 (through Y0/X1, free now).
	for a := range nr {
		f := 12 + a
		g.p("VEXTRACTF32X4 $1, Y%d, X1", f)
		g.p("VADDPS X1, X%d, X0", f)
		g.p("VHADDPS X0, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VMOVSS X0, %s", outAddr(0, a))
		g.p("VEXTRACTF64X4 $1, Z%d, Y0", f)
		g.p("VEXTRACTF128 $1, Y0, X1")
		g.p("VADDPS X1, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VMOVSS X0, %s", outAddr(1, a))
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// vpdpbusdVEX writes the VEX-encoded (AVX-VNNI) VPDPBUSD Y<acc> += unsigned bytes of Y<u> times signed bytes
// of Y<s>, as bytes: the Go assembler encodes VPDPBUSD only with EVEX, which needs AVX-512.
func (g *gen) vpdpbusdVEX(acc, u, s int) {
	r := (acc>>3)&1 ^ 1
	b := (s>>3)&1 ^ 1
	b1 := r<<7 | 1<<6 | b<<5 | 0x02 // R X B, map 0F38
	b2 := (^u&15)<<3 | 1<<2 | 1     // W0, vvvv = ~u, L = 256, pp = 66
	modrm := 0xc0 | (acc&7)<<3 | s&7
	g.p("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x // VPDPBUSD Y%d, Y%d, Y%d", b1, b2, modrm, s, u, acc)
}

// avxvnni writes an AVX-VNNI kernel (256-bit registers) for typ and a 1 x nr tile.
//
// Registers: Y(a) integer sums, Y(6+a) float sums, Y12 weights, Y13 activations, Y14 weight scales, Y15
// scratch (the high nibbles for Q4_0).
func (g *gen) avxvnni(typ string, nr int) {
	name := fmt.Sprintf("avxvnni%sM1N%d", typ, nr)
	groupBytes := vnniGroupBytes(typ)
	g.vnniHeader(name)
	for a := range nr {
		g.p("VXORPS Y%d, Y%d, Y%d", 6+a, 6+a, 6+a)
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.vnniPrefetch(1, groupBytes)
	for a := range nr {
		g.p("VMOVDQU %s, Y%d", xrec(vnniCorr, a), a)
	}
	if typ == "Q8_0" {
		for v := range 8 {
			g.p("VMOVDQU %d(SI), Y12", 16+32*v)
			for a := range nr {
				g.p("VMOVDQU %s, Y13", xrec(32*v, a))
				g.vpdpbusdVEX(a, 12, 13)
			}
		}
	} else {
		for v := range 4 {
			g.p("VMOVDQU %d(SI), Y15", 16+32*v)
			g.p("VPAND vnniNibbles<>(SB), Y15, Y12")
			g.p("VPSRLW $4, Y15, Y15")
			g.p("VPAND vnniNibbles<>(SB), Y15, Y15")
			for a := range nr {
				g.p("VMOVDQU %s, Y13", xrec(32*v, a))
				g.vpdpbusdVEX(a, 12, 13)
				g.p("VMOVDQU %s, Y13", xrec(128+32*v, a))
				g.vpdpbusdVEX(a, 15, 13)
			}
		}
	}
	g.p("VCVTPH2PS (SI), Y14")
	for a := range nr {
		g.p("VCVTDQ2PS Y%d, Y%d", a, a)
		g.p("VMULPS %s, Y14, Y15", xrec(vnniScales, a))
		g.p("VFMADD231PS Y15, Y%d, Y%d", a, 6+a)
	}
	g.vnniFooter(name, groupBytes)
	for a := range nr {
		f := 6 + a
		g.p("VEXTRACTF128 $1, Y%d, X0", f)
		g.p("VADDPS X%d, X0, X0", f)
		g.p("VHADDPS X0, X0, X0")
		g.p("VHADDPS X0, X0, X0")
		g.p("VMOVSS X0, %s", outAddr(0, a))
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// floatRows writes dot<typ>Y2 (ymm, AVX2 instructions only; with zmm, dot<typ>Z2), the float rows of the
// VNNI ISAs: two rows of F32, F16 or BF16 weights (w and w+wstride) dotted with one row of float32
// activations, n values (a multiple of 64), into res[0] and res[1]; 64 values a step into 4 accumulators per
// row, prefetching both rows in two steps as the VNNI kernels do. Two rows streamed side by side and the
// longer prefetch distances make them faster than the AVX2 row on the Xeon (F16 batch 1 on one thread: 0.82-0.96
// of the probe's read against 0.58-0.62, BenchmarkDecodeShare); the 512-bit form measured no faster (0.82-0.91),
// so both VNNI ISAs use the 256-bit one.
func (g *gen) floatRows(typ string, zmm bool) {
	wsize := 4
	if typ != "F32" {
		wsize = 2
	}
	R, lanes, name := "Y", 8, fmt.Sprintf("dot%sY2", typ)
	if zmm {
		R, lanes, name = "Z", 16, fmt.Sprintf("dot%sZ2", typ)
	}
	u := 64 / lanes // vectors per row per step
	acc := func(r, v int) int { return r*4 + v%4 }
	fmt.Fprintf(&g.Buffer, "\n// func %s(n int, w *byte, wstride int, x *float32, res *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-40\n", name)
	g.p("MOVQ n+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ wstride+16(FP), BX")
	g.p("MOVQ x+24(FP), DI")
	g.p("MOVQ res+32(FP), R12")
	for i := range 8 {
		g.p("VXORPS %s%d, %s%d, %s%d", R, i, R, i, R, i)
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	step := 64 * wsize
	for r := range 2 {
		for off := 0; off < step; off += 64 {
			g.p("PREFETCHT2 %s", wrow(vnniPrefetchL2+off, r))
			g.p("PREFETCHT0 %s", wrow(vnniPrefetchL1+off, r))
		}
	}
	for v := range u {
		for r := range 2 {
			w := 8 + 2*(v%4) + r
			switch typ {
			case "F16":
				g.p("VCVTPH2PS %s, %s%d", wrow(2*lanes*v, r), R, w)
			case "BF16":
				g.p("VPMOVZXWD %s, %s%d", wrow(2*lanes*v, r), R, w)
				g.p("VPSLLD $16, %s%d, %s%d", R, w, R, w)
			default:
				g.p("VMOVUPS %s, %s%d", wrow(4*lanes*v, r), R, w)
			}
			g.p("VFMADD231PS %d(DI), %s%d, %s%d", 4*lanes*v, R, w, R, acc(r, v))
		}
	}
	g.p("ADDQ $%d, SI", step)
	g.p("ADDQ $256, DI")
	g.p("SUBQ $64, CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	for r := range 2 {
		b := 4 * r
		g.p("VADDPS %s%d, %s%d, %s%d", R, b+1, R, b, R, b)
		g.p("VADDPS %s%d, %s%d, %s%d", R, b+3, R, b+2, R, b+2)
		g.p("VADDPS %s%d, %s%d, %s%d", R, b+2, R, b, R, b)
		if zmm {
			g.p("VEXTRACTF64X4 $1, Z%d, Y%d", b, b+1)
			g.p("VADDPS Y%d, Y%d, Y%d", b+1, b, b)
		}
		g.hsum(b, 4*r)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// vnniFile returns the text of vnni_amd64.s.
func vnniFile() []byte {
	var g gen
	g.raw("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n\n")
	g.vecConst("vnniNibbles", 0x0f0f0f0f0f0f0f0f)
	for _, typ := range []string{"Q8_0", "Q4_0"} {
		for mr := 1; mr <= vnniMaxMR; mr++ {
			for nr := 1; nr <= vnniMaxNR; nr++ {
				g.vnni512(typ, mr, nr)
			}
		}
		for nr := 1; nr <= vnniMaxNR; nr++ {
			g.avxvnni(typ, nr)
		}
	}
	for _, typ := range []string{"Q8_0", "Q4_0"} {
		for np := 1; np <= panelMaxP; np++ {
			for nr := 1; nr <= panelMaxNR; nr++ {
				g.vnni512Panel(typ, np, nr)
			}
		}
	}
	for _, typ := range []string{"F16", "BF16", "F32"} {
		g.floatRows(typ, false)
	}
	return g.Bytes()
}

// vnniDecls returns the text of vnni_kernels_amd64.go: the Go declarations of the VNNI kernels and the
// tables kernels picks them from.
func vnniDecls() []byte {
	var b []byte
	add := func(format string, args ...any) { b = fmt.Appendf(b, format, args...) }
	add("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\npackage kernels\n")
	add("\n// The VNNI kernels of vnni_amd64.s; see vnniFunc for what they compute.\n")
	sig := "(ngroups int, w *byte, wstride int, x *byte, xstride int, out *float32, ostride int)"
	var names512, namesAVX [2][]string
	for ti, typ := range []string{"Q8_0", "Q4_0"} {
		for mr := 1; mr <= vnniMaxMR; mr++ {
			for nr := 1; nr <= vnniMaxNR; nr++ {
				n := fmt.Sprintf("vnni512%sM%dN%d", typ, mr, nr)
				names512[ti] = append(names512[ti], n)
				add("\n//go:noescape\nfunc %s%s\n", n, sig)
			}
		}
		for nr := 1; nr <= vnniMaxNR; nr++ {
			n := fmt.Sprintf("avxvnni%sM1N%d", typ, nr)
			namesAVX[ti] = append(namesAVX[ti], n)
			add("\n//go:noescape\nfunc %s%s\n", n, sig)
		}
	}
	add("\n// vnni512Kernels[t][mr-1][nr-1] is the AVX-512 kernel of an mr x nr tile, t 0 for Q8_0 and 1 for Q4_0.\n")
	add("var vnni512Kernels = [2][%d][%d]vnniFunc{\n", vnniMaxMR, vnniMaxNR)
	for ti := range 2 {
		add("\t{\n")
		for mr := range vnniMaxMR {
			add("\t\t{")
			for nr := range vnniMaxNR {
				if nr > 0 {
					add(", ")
				}
				add("%s", names512[ti][mr*vnniMaxNR+nr])
			}
			add("},\n")
		}
		add("\t},\n")
	}
	add("}\n")
	for _, typ := range []string{"F16", "BF16", "F32"} {
		add("\n// dot%sY2 sets res[0] and res[1] to the dot products of rows w and w+wstride with x (n a multiple of\n", typ)
		add("// 64).\n//\n//go:noescape\nfunc dot%sY2(n int, w *byte, wstride int, x *float32, res *float32)\n", typ)
	}
	add("\n// avxvnniKernels[t][nr-1] is the AVX-VNNI kernel of a 1 x nr tile, t as for vnni512Kernels.\n")
	add("var avxvnniKernels = [2][%d]vnniFunc{\n", vnniMaxNR)
	for ti := range 2 {
		add("\t{")
		for nr := range vnniMaxNR {
			if nr > 0 {
				add(", ")
			}
			add("%s", namesAVX[ti][nr])
		}
		add("},\n")
	}
	add("}\n")
	psig := "(nb int, w *byte, x *byte, xstride int, dc *byte, dcstride int, out *float32, ostride int)"
	add("\n// vnni512PanelKernels[t][p-1][nr-1] is the AVX-512 kernel of p panels of weights by nr activation rows, t 0\n")
	add("// for Q8_0 and 1 for Q4_0.\n")
	var table []string
	for _, typ := range []string{"Q8_0", "Q4_0"} {
		var names []string
		for np := 1; np <= panelMaxP; np++ {
			for nr := 1; nr <= panelMaxNR; nr++ {
				n := fmt.Sprintf("vnni512%sP%dN%d", typ, np, nr)
				names = append(names, n)
				add("\n//go:noescape\nfunc %s%s\n", n, psig)
			}
		}
		table = append(table, "\t{\n")
		for np := range panelMaxP {
			table = append(table, fmt.Sprintf("\t\t{%s},\n", strings.Join(names[np*panelMaxNR:(np+1)*panelMaxNR], ", ")))
		}
		table = append(table, "\t},\n")
	}
	add("\nvar vnni512PanelKernels = [2][%d][%d]panelFunc{\n%s}\n", panelMaxP, panelMaxNR, strings.Join(table, ""))
	return b
}

// The panel kernels (AVX-512 VNNI) dot Q4_0 or Q8_0 weights in the panel layout of kernels.Interleave (tiles
// of 32 rows, or 16 for the last: per 32-value block, one or two panels of 16 rows side by side, each the 16
// rows' fp16 scales, then 4 (Q4_0) or 8 (Q8_0, quants biased to q+128) vectors of 64 bytes, vector k holding
// quant bytes 4k..4k+3 of each row in turn) with activation rows quantized to Q8_0 blocks in their natural
// order.
// Lane i of a vector belongs to row i of the panel, so VPDPBUSD multiplies one nibble vector with 4
// activation bytes broadcast from memory ({1to16}) into 16 rows' sums at once: the activations are read 4
// bytes at a time and never reloaded in 64-byte vectors, and each block's integer sums are scaled (VCVTDQ2PS,
// VMULPS by the 16 weight scales times the broadcast activation scale, VFMADD231PS) once per 16 rows. The
// float sums of 16 rows end in one vector, stored as it is: no horizontal sums.
//
// A kernel computes a tile of P panels (P*16 weight rows read as one stream, P*panelBlockBytes bytes a
// block) by NR activation rows: for q < P, a < NR and lane i < 16,
//
//	out[a*ostride/4 + 16*q + i] = dot(row 16*q + i of the tile, activation row a)
//
// with activation row a's int8 quants at x + a*xstride (block order) and its per-block pairs (float32 scale
// d_x, int32 correction -C*sum(q_x), C = 8 for Q4_0 and 128 for Q8_0) at dc + a*dcstride, 8 bytes a block. nb
// (the blocks per row) must be even: the loop takes two blocks a step.
//
// Registers: Z(q*NR+a) integer sums of the block, Z(12+q*NR+a) float sums, Z24+q low nibbles or Q8_0 weight
// vectors (then the weight scales), Z26+q high nibbles or the next Q8_0 weight vectors, Z28 the nibble mask,
// Z29..Z31 scratch.

// panelBlockBytes is the size of one block of a 16-row panel of typ.
func panelBlockBytes(typ string) int {
	if typ == "Q8_0" {
		return 16 * 34
	}
	return 16 * 18
}

// vnni512Panel writes the panel kernel of np panels (1 or 2) by nr activation rows (1..6). A tile is one
// stream, which the hardware prefetchers follow at batch 1; with several activation rows, where the loop is
// compute-bound, the kernel also prefetches into L2 vnniPrefetchL2 bytes ahead so that the memory keeps
// streaming. On a Zen 4 (1.1B decode step, BenchmarkPanelRatio's pairing against the groups of 8 blocks), one
// thread: with no software prefetch batch 1 took 0.91-0.94x and batch 5 0.77-0.80x the groups' time; the
// groups' prefetches (into L2 8 KiB ahead and into L1 1 KiB ahead) made batch 1 1.13x; into L2 alone at
// batch 5, 0.65-0.66x.
func (g *gen) vnni512Panel(typ string, np, nr int) {
	name := fmt.Sprintf("vnni512%sP%dN%d", typ, np, nr)
	fmt.Fprintf(&g.Buffer, "\n// func %s(nb int, w *byte, x *byte, xstride int, dc *byte, dcstride int, out *float32, ostride int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-64\n", name)
	g.p("MOVQ nb+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ x+16(FP), DI")
	g.p("MOVQ xstride+24(FP), R8")
	g.p("MOVQ dc+32(FP), DX")
	g.p("MOVQ dcstride+40(FP), R9")
	g.p("MOVQ out+48(FP), R12")
	g.p("MOVQ ostride+56(FP), AX")
	g.p("LEAQ (R8)(R8*2), R11")
	g.p("LEAQ (DI)(R11*1), R13")
	g.p("LEAQ (R9)(R9*2), R11")
	g.p("LEAQ (DX)(R11*1), R14")
	g.p("LEAQ (AX)(AX*2), R10")
	g.p("ADDQ R12, R10")
	ia := func(q, a int) int { return q*nr + a }
	fa := func(q, a int) int { return 12 + q*nr + a }
	xa := func(off, a int) string { return vnniAddr(off, "DI", "R13", "R8", a) }
	da := func(off, a int) string { return vnniAddr(off, "DX", "R14", "R9", a) }
	pb := panelBlockBytes(typ)
	bb := np * pb // bytes per block of the tile
	wp := func(off, q int) string { return fmt.Sprintf("%d(SI)", off+q*pb) }
	for q := range np {
		for a := range nr {
			g.p("VPXORD Z%d, Z%d, Z%d", fa(q, a), fa(q, a), fa(q, a))
		}
	}
	g.p("VPBROADCASTD vnniNibbles<>(SB), Z28")
	g.p("SHRQ $1, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	if nr > 1 && typ == "Q4_0" {
		for off := 0; off < 2*bb; off += 64 {
			g.p("PREFETCHT2 %s", wp(vnniPrefetchL2+off, 0))
		}
	}
	tmp := 0
	for blk := range 2 {
		wo, xo, do := blk*bb, 32*blk, 8*blk
		// Integer sums start from the corrections -C*sum(q_x), which undo the weights' offset C.
		for q := range np {
			for a := range nr {
				g.p("VPBROADCASTD %s, Z%d", da(do+4, a), ia(q, a))
			}
		}
		for k := range 8 {
			if typ != "Q8_0" {
				break
			}
			// Vector k of each panel, alternately in Z24+q and Z26+q so that the next loads need not wait.
			// Q8_0 tiles go by pairs of blocks: each panel's scales of both blocks (64 bytes), then for each
			// block and vector k the panels' vectors k in turn (kernels.panelQ8_0Offset).
			wr := 24 + q2(k)
			for q := range np {
				g.p("VMOVDQU64 %d(SI), Z%d", 64*np+64*(q+np*(k+8*blk)), wr+q)
			}
			for a := range nr {
				for q := range np {
					g.p("VPDPBUSD.BCST %s, Z%d, Z%d", xa(xo+4*k, a), wr+q, ia(q, a))
				}
			}
		}
		for k := range 4 {
			if typ == "Q8_0" {
				break
			}
			for q := range np {
				g.p("VPANDD %s, Z28, Z%d", wp(wo+32+64*k, q), 24+q)
				g.p("VPSRLW $4, %s, Z%d", wp(wo+32+64*k, q), 26+q)
				g.p("VPANDD Z28, Z%d, Z%d", 26+q, 26+q)
			}
			for a := range nr {
				for q := range np {
					g.p("VPDPBUSD.BCST %s, Z%d, Z%d", xa(xo+4*k, a), 24+q, ia(q, a))
				}
				for q := range np {
					g.p("VPDPBUSD.BCST %s, Z%d, Z%d", xa(xo+16+4*k, a), 26+q, ia(q, a))
				}
			}
		}
		for q := range np {
			if typ == "Q8_0" {
				g.p("VCVTPH2PS %d(SI), Z%d", 64*q+32*blk, 24+q)
			} else {
				g.p("VCVTPH2PS %s, Z%d", wp(wo, q), 24+q)
			}
		}
		for q := range np {
			for a := range nr {
				t := 29 + tmp%3
				tmp++
				g.p("VCVTDQ2PS Z%d, Z%d", ia(q, a), ia(q, a))
				g.p("VMULPS.BCST %s, Z%d, Z%d", da(do, a), 24+q, t)
				g.p("VFMADD231PS Z%d, Z%d, Z%d", t, ia(q, a), fa(q, a))
			}
		}
	}
	g.p("ADDQ $%d, SI", 2*bb)
	g.p("ADDQ $64, DI")
	g.p("ADDQ $64, R13")
	g.p("ADDQ $16, DX")
	g.p("ADDQ $16, R14")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	for q := range np {
		for a := range nr {
			g.p("VMOVUPS Z%d, %s", fa(q, a), vnniAddr(64*q, "R12", "R10", "AX", a))
		}
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// q2 is the register offset (0 or 2) of the k-th weight vector of a Q8_0 panel kernel.
func q2(k int) int { return 2 * (k % 2) }

// panelMaxP and panelMaxNR bound the panel kernels generated.
const (
	panelMaxP  = 2
	panelMaxNR = 6
)
