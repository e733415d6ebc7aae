package main

import "fmt"

// The AMX kernels (amx_amd64.s) multiply a panel of 16 Q8_0 or Q4_0 weight rows, in the file's block layout,
// with a tile of 16 activation rows on the tile unit: per 32-value block, one TDPBSSD of a 16 x 32 int8 tile
// of weights (A, 16 rows of one block's quants, read in place for Q8_0, from an unpacked copy for Q4_0) by an
// 8 x 64 tile of activations (B: row i holds bytes 4i..4i+3 of the block of each of the 16 activation rows,
// the layout TDPBSSD wants) into 16 x 16 int32 sums (C), which AVX-512 then scales by the weight and
// activation block scales into 16 float vectors, one per weight row, over the 16 activation rows.
//
// A kernel's scratch (64-byte aligned, see kernels.amxScratch) holds the tile configuration at 0, two C
// tiles of 1 KiB at amxCBuf, and from amxScales the panel's weight scales as float32, 16 per block (row m's
// scale of block k at amxScales + 64k + 4m); for Q4_0 the unpacked weights follow, row m's block k at
// amxScales + 64*nblocks + (m*nblocks + k)*32. The Go code writes the configuration: tmm0/tmm3 A (16 rows of
// 32 bytes), tmm1/tmm4 B (8 rows of 64 bytes), tmm2/tmm5 C (16 rows of 64 bytes).
const (
	amxCBuf   = 64
	amxScales = 64 + 2048
)

// The Go assembler has no AMX instructions: they are written as bytes (VEX encodings, checked against GNU
// as in TestAMXEncodings).

// regNum is the x86 number of a general register name.
var regNum = map[string]int{"AX": 0, "CX": 1, "DX": 2, "BX": 3, "SP": 4, "BP": 5, "SI": 6, "DI": 7,
	"R8": 8, "R9": 9, "R10": 10, "R11": 11, "R12": 12, "R13": 13, "R14": 14, "R15": 15}

// vexBytes writes a 3-byte-VEX instruction of map 0F38 with W0, L0: prefix pp (0 none, 1 66, 2 F3, 3 F2),
// vvvv v (a register number, or 0 for "unused", encoded as 1111), opcode op, and the ModRM/SIB bytes.
func (g *gen) vexBytes(comment string, rx, bx, v, pp, op int, modrm ...int) {
	b1 := ((rx^1)&1)<<7 | ((bx>>1^1)&1)<<6 | ((bx^1)&1)<<5 | 0x02
	b2 := (^v&15)<<3 | pp
	s := fmt.Sprintf("BYTE $0xc4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x%02x", b1, b2, op)
	for _, m := range modrm {
		s += fmt.Sprintf("; BYTE $0x%02x", m)
	}
	g.p("%s // %s", s, comment)
}

// memOp returns the X and B bits (as bx = X<<1 | B) and the ModRM and SIB bytes of reg with memory operand
// (base)(index*1), no displacement (base must not be BP or R13, whose no-displacement form means something
// else).
func memOp(reg int, base, index string) (rx, bx int, bytes []int) {
	b, x := regNum[base], regNum[index]
	if b&7 == 5 {
		panic("base BP/R13 needs a displacement")
	}
	modrm := (reg&7)<<3 | 4
	sib := (x&7)<<3 | b&7
	return reg >> 3, (x>>3)<<1 | b>>3, []int{modrm, sib}
}

func (g *gen) ldtilecfg(base string) {
	b := regNum[base]
	g.vexBytes("LDTILECFG ("+base+")", 0, b>>3, 0, 0, 0x49, b&7)
}

func (g *gen) tilerelease() { g.vexBytes("TILERELEASE", 0, 0, 0, 0, 0x49, 0xc0) }

func (g *gen) tilezero(t int) {
	g.vexBytes(fmt.Sprintf("TILEZERO TMM%d", t), 0, 0, 0, 3, 0x49, 0xc0|t<<3)
}

// tileloadd loads tile t from (base)(index*1), rows index bytes apart.
func (g *gen) tileloadd(t int, base, index string) {
	rx, bx, m := memOp(t, base, index)
	g.vexBytes(fmt.Sprintf("TILELOADD (%s)(%s*1), TMM%d", base, index, t), rx, bx, 0, 3, 0x4b, m...)
}

// tilestored stores tile t to (base)(index*1).
func (g *gen) tilestored(t int, base, index string) {
	rx, bx, m := memOp(t, base, index)
	g.vexBytes(fmt.Sprintf("TILESTORED TMM%d, (%s)(%s*1)", t, base, index), rx, bx, 0, 2, 0x4b, m...)
}

// tdpbssd adds to tile c the products of signed bytes of a (16 x 4k) and b (k x 16 groups of 4).
func (g *gen) tdpbssd(c, a, b int) {
	g.vexBytes(fmt.Sprintf("TDPBSSD TMM%d, TMM%d, TMM%d", b, a, c), 0, 0, b, 3, 0x5e, 0xc0|c<<3|a)
}

// amxPrep writes amxPrep<typ>(nblocks int, w *byte, rb int, scratch *byte): the panel's weight scales as
// float32 into the scratch (gathered from 16 rows rb bytes apart), and for Q4_0 its quants unpacked to int8
// values nibble-8 (nblocks must be even).
func (g *gen) amxPrep(typ string) {
	name := "amxPrep" + typ
	blockBytes := 34
	if typ == "Q4_0" {
		blockBytes = 18
	}
	fmt.Fprintf(&g.Buffer, "\n// func %s(nblocks int, w *byte, rb int, scratch *byte)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-32\n", name)
	g.p("MOVQ nblocks+0(FP), CX")
	g.p("MOVQ w+8(FP), SI")
	g.p("MOVQ rb+16(FP), BX")
	g.p("MOVQ scratch+24(FP), R11")
	g.p("LEAQ %d(R11), DI", amxScales)
	// Z18 = m*rb, the gather offsets of the 16 rows.
	g.p("VPBROADCASTD BX, Z18")
	g.p("VPMULLD amxIota<>(SB), Z18, Z18")
	g.p("MOVQ CX, R8")
	g.p("MOVQ SI, R9")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_scales")
	g.p("KXNORW K0, K0, K2")
	g.p("VPGATHERDD (SI)(Z18*1), K2, Z5")
	g.p("VPMOVDW Z5, Y5")
	g.p("VCVTPH2PS Y5, Z5")
	g.p("VMOVUPS Z5, (DI)")
	g.p("ADDQ $%d, SI", blockBytes)
	g.p("ADDQ $64, DI")
	g.p("DECQ CX")
	g.p("JNZ %s_scales", name)
	if typ == "Q4_0" {
		// DI is now the unpacked area; for each row m (16), each block: 16 nibble bytes -> 32 values.
		g.p("MOVL $0x0f0f0f0f, AX")
		g.p("VPBROADCASTD AX, X14")
		g.p("MOVL $0x08080808, AX")
		g.p("VPBROADCASTD AX, X15")
		g.p("MOVQ $16, R10")
		g.label(name + "_row")
		g.p("MOVQ R9, SI")
		g.p("MOVQ R8, CX")
		// Two blocks a step (nblocks is even): their 16 nibble bytes side by side in Y0, low and high nibbles
		// split, minus 8, then each block's 16 low values and 16 high values put together.
		g.p("VINSERTI128 $1, X14, Y14, Y14")
		g.p("VINSERTI128 $1, X15, Y15, Y15")
		g.label(name + "_block")
		g.p("VMOVDQU 2(SI), X0")
		g.p("VINSERTI128 $1, 20(SI), Y0, Y0")
		g.p("VPAND Y14, Y0, Y1")
		g.p("VPSRLW $4, Y0, Y0")
		g.p("VPAND Y14, Y0, Y0")
		g.p("VPSUBB Y15, Y1, Y1")
		g.p("VPSUBB Y15, Y0, Y0")
		g.p("VPERM2I128 $0x20, Y0, Y1, Y2")
		g.p("VPERM2I128 $0x31, Y0, Y1, Y3")
		g.p("VMOVDQU Y2, (DI)")
		g.p("VMOVDQU Y3, 32(DI)")
		g.p("ADDQ $36, SI")
		g.p("ADDQ $64, DI")
		g.p("SUBQ $2, CX")
		g.p("JNZ %s_block", name)
		g.p("ADDQ BX, R9")
		g.p("DECQ R10")
		g.p("JNZ %s_row", name)
	}
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

// amxTile writes amxTile(nblocks int, a *byte, astride, ablock int, b *byte, dx *float32, out *float32,
// ostride, nvalid int, scratch *byte): one panel (its A rows astride bytes apart, block k at a + k*ablock)
// times one tile of activations (block k's B tile at b + 512k, its 16 scales at dx + 64k), results (row m,
// activation n < nvalid) stored at out + n*ostride + 4m. The scratch holds the configuration, the C buffers
// and the weight scales (amxPrep). Blocks go two at a time through two sets of tiles (A, B, C: tmm0-2 and
// tmm3-5) so that the tile unit works on one while AVX-512 scales the other; nblocks must be even.
func (g *gen) amxTile() {
	name := "amxTile"
	fmt.Fprintf(&g.Buffer, "\n// func %s(nblocks int, a *byte, astride, ablock int, b *byte, dx *float32, out *float32, ostride, nvalid int, scratch *byte)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	g.p("MOVQ nblocks+0(FP), CX")
	g.p("MOVQ a+8(FP), SI")
	g.p("MOVQ astride+16(FP), AX")
	g.p("MOVQ ablock+24(FP), BX")
	g.p("MOVQ b+32(FP), R14")
	g.p("MOVQ dx+40(FP), DX")
	g.p("MOVQ scratch+72(FP), R11")
	g.p("LEAQ %d(R11), R12", amxScales) // weight scales of block k
	g.p("LEAQ %d(R11), R9", amxCBuf)    // C buffer 0; buffer 1 at +1024
	g.p("MOVQ $64, R8")
	g.ldtilecfg("R11")
	for m := range 16 {
		g.p("VPXORD Z%d, Z%d, Z%d", m, m, m)
	}
	// ops issues the tile work of one block with tile set s (A = 3s, B = 3s+1, C = 3s+2) into C buffer s,
	// then advances A and B.
	ops := func(s int) {
		a, b, c := 3*s, 3*s+1, 3*s+2
		g.tileloadd(a, "SI", "AX")
		g.tileloadd(b, "R14", "R8")
		g.tilezero(c)
		g.tdpbssd(c, a, b)
		if s == 0 {
			g.tilestored(c, "R9", "R8")
		} else {
			g.p("LEAQ 1024(R9), R10")
			g.tilestored(c, "R10", "R8")
		}
		g.p("ADDQ BX, SI")
		g.p("ADDQ $512, R14")
	}
	// scale adds C buffer s's block (scales at R12, activation scales at DX) into the 16 float vectors.
	scale := func(s int) {
		g.p("VMOVUPS (DX), Z16")
		for m := range 16 {
			g.p("VCVTDQ2PS %d(R9), Z17", 1024*s+64*m)
			g.p("VMULPS Z16, Z17, Z17")
			g.p("VFMADD231PS.BCST %d(R12), Z17, Z%d", 4*m, m)
		}
		g.p("ADDQ $64, R12")
		g.p("ADDQ $64, DX")
	}
	g.p("TESTQ CX, CX")
	g.p("JZ %s_store", name)
	ops(0)
	g.p("SUBQ $2, CX")
	g.p("JZ %s_last", name)
	g.label(name + "_loop")
	ops(1)
	scale(0)
	ops(0)
	scale(1)
	g.p("SUBQ $2, CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_last")
	ops(1)
	scale(0)
	scale(1)
	g.label(name + "_store")
	g.tilerelease()
	// Scatter row m's 16 results to out + n*ostride + 4m for n < nvalid.
	g.p("MOVQ out+48(FP), DI")
	g.p("MOVQ ostride+56(FP), AX")
	g.p("MOVQ nvalid+64(FP), CX")
	g.p("VPBROADCASTD AX, Z18")
	g.p("VPMULLD amxIota<>(SB), Z18, Z18")
	g.p("MOVL $1, AX")
	g.p("SHLL CX, AX")
	g.p("DECL AX")
	g.p("KMOVW AX, K1")
	for m := range 16 {
		g.p("KMOVW K1, K2")
		g.p("VSCATTERDPS Z%d, K2, %d(DI)(Z18*1)", m, 4*m)
	}
	g.p("VZEROUPPER")
	g.p("RET")
}

// amxFile returns the text of amx_amd64.s.
func amxFile() []byte {
	var g gen
	g.raw("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n\n")
	for i := 0; i < 16; i += 2 {
		g.raw(fmt.Sprintf("DATA amxIota<>+%d(SB)/8, $0x%08x%08x\n", 4*i, i+1, i))
	}
	g.raw("GLOBL amxIota<>(SB), RODATA|NOPTR, $64\n")
	g.amxPrep("Q8_0")
	g.amxPrep("Q4_0")
	g.amxTile()
	return g.Bytes()
}
