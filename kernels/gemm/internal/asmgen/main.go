// Command asmgen writes kernels/gemm/sgemm_amd64.s: the register-tile micro-kernels of Sgemm for AVX-512F and
// for AVX2+FMA, and the FMA peak probes. The kernels are built from one template per ISA so that their
// variants (A packed or read in place) stay consistent. Run it through `go generate ./kernels/gemm/`.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
)

// isa describes one micro-kernel shape: an mr x nr tile of C held in registers (mr rows, nr/vec vectors of
// vec floats per row), with the register file and its prefix.
type isa struct {
	name    string // in the function names: AVX512, AVX2
	reg     string // register prefix: Z or Y
	vec     int    // floats per register
	mr, nr  int    // tile rows and columns
	nregs   int    // registers in the file (32 or 16)
	chains  int    // independent FMA chains of the peak probe
	cacheLn int    // bytes per cache line
}

var isas = []isa{
	{name: "AVX512", reg: "Z", vec: 16, mr: 12, nr: 32, nregs: 32, chains: 24, cacheLn: 64},
	{name: "AVX2", reg: "Y", vec: 8, mr: 6, nr: 16, nregs: 16, chains: 14, cacheLn: 64},
}

type gen struct{ bytes.Buffer }

// vecConst writes a read-only 64-byte constant: the 32-bit word v, 16 times.
func (g *gen) vecConst(name string, v uint32) {
	g.WriteString("\n")
	for off := 0; off < 64; off += 8 {
		fmt.Fprintf(&g.Buffer, "DATA %s<>+%d(SB)/8, $0x%08x%08x\n", name, off, v, v)
	}
	fmt.Fprintf(&g.Buffer, "GLOBL %s<>(SB), RODATA|NOPTR, $64\n", name)
}

// masks sets lo and hi to the lane masks of the first CX (at most 32) floats over two ZMM vectors, through
// the scratch register tmp, with AVX-512F's 16-bit mask moves.
func (g *gen) masks(tmp, lo, hi string) {
	g.p("MOVQ $1, %s", tmp)
	g.p("SHLQ CX, %s", tmp)
	g.p("DECQ %s", tmp)
	g.p("KMOVW %s, %s", tmp, lo)
	g.p("SHRQ $16, %s", tmp)
	g.p("KMOVW %s, %s", tmp, hi)
}

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.Buffer, "\t"+format+"\n", args...) }
func (g *gen) label(l string)               { fmt.Fprintf(&g.Buffer, "%s:\n", l) }

func (s isa) nv() int { return s.nr / s.vec }

// tile is a kernel's register tile: s.mr rows of nv vectors (s.nv(), or 1 for the half-width kernels).
type tile struct {
	isa
	nv int
}

func (t tile) acc(r, v int) int { return r*t.nv + v }
func (t tile) bReg(v int) int   { return t.mr*t.nv + v }

// bcastReg is the register row r's A value is broadcast into: the registers left after the accumulators and
// the B vectors, in turn, so consecutive broadcasts do not wait on one register.
func (t tile) bcastReg(r int) int {
	first := t.mr*t.nv + t.nv
	return first + r%(t.nregs-first)
}

func (s isa) r(i int) string { return fmt.Sprintf("%s%d", s.reg, i) }

// The A operand of a kernel is read in one of two layouts:
//   - packed: A(r, kk) at a + 4*(kk*mr + r), the k-major panel the driver packs;
//   - rows: A(r, kk) at a + r*lda + 4*kk, op(A) read in place from a row-major matrix (lda in bytes).
//
// For rows, SI holds row 0, R8 lda and R9 3*lda; DI holds row 5 and R11 row 10, so that every row of a
// 12-row tile is one base plus one scaled index.
func (s isa) aAddr(rows bool, r, kk int) string {
	if !rows {
		return fmt.Sprintf("%d(SI)", 4*(kk*s.mr+r))
	}
	d := 4 * kk
	base, rr := "SI", r
	switch {
	case r >= 10:
		base, rr = "R11", r-10
	case r >= 5:
		base, rr = "DI", r-5
	}
	switch rr {
	case 0:
		return fmt.Sprintf("%d(%s)", d, base)
	case 1:
		return fmt.Sprintf("%d(%s)(R8*1)", d, base)
	case 2:
		return fmt.Sprintf("%d(%s)(R8*2)", d, base)
	case 3:
		return fmt.Sprintf("%d(%s)(R9*1)", d, base)
	case 4:
		return fmt.Sprintf("%d(%s)(R8*4)", d, base)
	}
	panic("row out of range")
}

// unroll is how many k steps one iteration of the main loop takes.
const unroll = 4

// kernel writes sgemm<ISA><Packed|Rows>[Half]: C tile (mr x nr at c, rows ldc bytes apart) = alpha*sum over
// kk < kc of A(r, kk)*B(kk, v) + beta*C, with B k-major (B(kk, v) at b + kk*ldb + 4*v: a packed panel, or
// op(B) read in place) and beta 0 not reading C. The AVX-512 kernels store (and read) only rows x cols of the tile, through masks; the Half ones
// compute the first 16 columns only (cols <= 16). The AVX2 kernels take full tiles (rows, cols unused).
func (g *gen) kernel(s isa, rows bool, nv int) {
	t := tile{s, nv}
	name := "sgemm" + s.name + map[bool]string{false: "Packed", true: "Rows"}[rows]
	if nv < s.nv() {
		name += "Half"
	}
	masked := s.reg == "Z"
	fmt.Fprintf(&g.Buffer, "\n// func %s(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32, rows, cols int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-80\n", name)
	g.p("MOVQ kc+0(FP), CX")
	g.p("MOVQ a+8(FP), SI")
	g.p("MOVQ lda+16(FP), R8")
	g.p("MOVQ b+24(FP), BX")
	g.p("MOVQ c+40(FP), DX")
	g.p("MOVQ ldc+48(FP), R10")
	if rows {
		g.p("LEAQ (R8)(R8*2), R9")
		g.p("LEAQ (SI)(R8*4), DI")
		g.p("ADDQ R8, DI") // row 5
		if s.mr > 10 {
			g.p("LEAQ (DI)(R8*4), R11")
			g.p("ADDQ R8, R11") // row 10
		}
	}
	for r := range s.mr {
		for v := range nv {
			a := t.acc(r, v)
			g.p("VXORPS %s, %s, %s", s.r(a), s.r(a), s.r(a))
		}
	}
	// Fetch the C tile while the products run; its rows are written at the end.
	g.p("MOVQ DX, R12")
	for range s.mr {
		for off := 0; off < 4*nv*s.vec; off += s.cacheLn {
			g.p("PREFETCHT0 %d(R12)", off)
		}
		g.p("ADDQ R10, R12")
	}
	// B row kk of a 4-step iteration at BX + kk*ldb: R12 = ldb, R13 = 3*ldb.
	g.p("MOVQ ldb+32(FP), R12")
	g.p("LEAQ (R12)(R12*2), R13")
	bRow := []string{"(BX)", "(BX)(R12*1)", "(BX)(R12*2)", "(BX)(R13*1)"}
	step := func(kk int) {
		for v := range nv {
			g.p("VMOVUPS %d%s, %s", 4*v*s.vec, bRow[kk], s.r(t.bReg(v)))
		}
		for r := range s.mr {
			bc := t.bcastReg(r)
			g.p("VBROADCASTSS %s, %s", s.aAddr(rows, r, kk), s.r(bc))
			for v := range nv {
				g.p("VFMADD231PS %s, %s, %s", s.r(t.bReg(v)), s.r(bc), s.r(t.acc(r, v)))
			}
		}
	}
	advance := func(steps int) {
		if rows {
			g.p("ADDQ $%d, SI", 4*steps)
			g.p("ADDQ $%d, DI", 4*steps)
			if s.mr > 10 {
				g.p("ADDQ $%d, R11", 4*steps)
			}
		} else {
			g.p("ADDQ $%d, SI", 4*steps*s.mr)
		}
		if steps == unroll { // bRow covers 4 steps
			g.p("LEAQ (BX)(R12*4), BX")
		} else {
			g.p("ADDQ R12, BX")
		}
	}
	g.p("CMPQ CX, $%d", unroll)
	g.p("JLT %s_tail", name)
	g.label(name + "_loop")
	for kk := range unroll {
		step(kk)
	}
	advance(unroll)
	g.p("SUBQ $%d, CX", unroll)
	g.p("CMPQ CX, $%d", unroll)
	g.p("JGE %s_loop", name)
	g.label(name + "_tail")
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_tail1")
	step(0)
	advance(1)
	g.p("DECQ CX")
	g.p("JNZ %s_tail1", name)

	g.label(name + "_done")
	alpha, beta, tmp := t.bcastReg(0), t.bcastReg(1), t.bcastReg(2)
	g.p("VBROADCASTSS alpha+56(FP), %s", s.r(alpha))
	if masked {
		// K1, K2: the cols stored lanes of the two vectors; R13 counts the rows left to store.
		// (AVX-512F only: 16-bit mask moves, the shift count in CX, free after the loop.)
		g.p("MOVQ cols+72(FP), CX")
		g.masks("R12", "K1", "K2")
		g.p("MOVQ rows+64(FP), R13")
	}
	mask := func(v int) string { return fmt.Sprintf("K%d, ", v+1) }
	rowEnd := func() {
		g.p("ADDQ R10, DX")
		if masked {
			g.p("DECQ R13")
			g.p("JZ %s_end", name)
		}
	}
	g.p("MOVL beta+60(FP), AX")
	g.p("ANDL $0x7fffffff, AX") // beta = ±0: C is not read
	g.p("JZ %s_store", name)
	g.p("VBROADCASTSS beta+60(FP), %s", s.r(beta))
	for r := range s.mr {
		for v := range nv {
			a := s.r(t.acc(r, v))
			g.p("VMULPS %s, %s, %s", s.r(alpha), a, a)
			if masked {
				g.p("VMOVUPS.Z %d(DX), %s%s", 4*v*s.vec, mask(v), s.r(tmp))
				g.p("VFMADD231PS %s, %s, %s", s.r(tmp), s.r(beta), a)
				g.p("VMOVUPS %s, %s%d(DX)", a, mask(v), 4*v*s.vec)
			} else {
				g.p("VFMADD231PS %d(DX), %s, %s", 4*v*s.vec, s.r(beta), a)
				g.p("VMOVUPS %s, %d(DX)", a, 4*v*s.vec)
			}
		}
		rowEnd()
	}
	g.p("JMP %s_end", name)
	g.label(name + "_store")
	for r := range s.mr {
		for v := range nv {
			a := s.r(t.acc(r, v))
			g.p("VMULPS %s, %s, %s", s.r(alpha), a, a)
			if masked {
				g.p("VMOVUPS %s, %s%d(DX)", a, mask(v), 4*v*s.vec)
			} else {
				g.p("VMOVUPS %s, %d(DX)", a, 4*v*s.vec)
			}
		}
		rowEnd()
	}
	g.label(name + "_end")
	g.p("VZEROUPPER")
	g.p("RET")
}

// peak writes fmaPeak<ISA>(n int): n iterations of s.chains independent VFMADD231PS chains on zeros (no
// denormals, no dependence between chains), so the loop runs at the FMA units' throughput.
func (g *gen) peak(s isa) {
	name := "fmaPeak" + s.name
	fmt.Fprintf(&g.Buffer, "\n// func %s(n int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-8\n", name)
	g.p("MOVQ n+0(FP), CX")
	x, y := s.nregs-2, s.nregs-1
	for i := range s.chains {
		g.p("VXORPS %s, %s, %s", s.r(i), s.r(i), s.r(i))
	}
	g.p("VXORPS %s, %s, %s", s.r(x), s.r(x), s.r(x))
	g.p("VXORPS %s, %s, %s", s.r(y), s.r(y), s.r(y))
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for i := range s.chains {
		g.p("VFMADD231PS %s, %s, %s", s.r(x), s.r(y), s.r(i))
	}
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

// packCopy writes packCopy<ISA>(kc int, src *float32, lds int, dst *float32, w, width int): for kk < kc,
// row kk of dst (width floats, 4*width bytes after the previous one) gets the w floats at src + kk*lds (bytes)
// followed by zeros. Masked loads read nothing past the w floats of a row; width is at most 2 vectors.
func (g *gen) packCopy(s isa) {
	name := "packCopy" + s.name
	fmt.Fprintf(&g.Buffer, "\n// func %s(kc int, src *float32, lds int, dst *float32, w, width int)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	g.p("MOVQ src+8(FP), SI")
	g.p("MOVQ lds+16(FP), R8")
	g.p("MOVQ dst+24(FP), DI")
	g.p("MOVQ w+32(FP), AX")
	g.p("MOVQ width+40(FP), BX")
	g.p("LEAQ (BX*4), R9") // dst row bytes
	if s.reg == "Z" {
		// K1/K2: the w loaded lanes of the two vectors; K3/K4: the width stored lanes.
		g.p("MOVQ AX, CX")
		g.masks("DX", "K1", "K2")
		g.p("MOVQ BX, CX")
		g.masks("DX", "K3", "K4")
		g.p("MOVQ kc+0(FP), CX")
		g.p("TESTQ CX, CX")
		g.p("JZ %s_done", name)
		g.p("CMPQ BX, $%d", s.vec)
		g.p("JLE %s_one", name)
		g.label(name + "_loop")
		g.p("VMOVUPS.Z (SI), K1, Z0")
		g.p("VMOVUPS.Z 64(SI), K2, Z1")
		g.p("VMOVUPS Z0, K3, (DI)")
		g.p("VMOVUPS Z1, K4, 64(DI)")
	} else {
		g.p("MOVQ kc+0(FP), CX")
		// Y12/Y13: the w loaded lanes of the two vectors; Y14/Y15: the width stored lanes, from maskTable.
		g.p("LEAQ maskTable<>(SB), DX")
		for i, reg := range []struct{ n, off string }{{"AX", "0"}, {"AX", "8"}, {"BX", "0"}, {"BX", "8"}} {
			g.p("MOVQ %s, R10", reg.n)
			if reg.off != "0" {
				g.p("SUBQ $%s, R10", reg.off)
			}
			g.p("CMPQ R10, $0") // lanes = clamp(n - off, 0, 8)
			g.p("JGE %s_m%d_lo", name, i)
			g.p("XORQ R10, R10")
			g.label(fmt.Sprintf("%s_m%d_lo", name, i))
			g.p("CMPQ R10, $8")
			g.p("JLE %s_m%d_hi", name, i)
			g.p("MOVQ $8, R10")
			g.label(fmt.Sprintf("%s_m%d_hi", name, i))
			g.p("NEGQ R10")
			g.p("VMOVDQU 32(DX)(R10*4), Y%d", 12+i) // 8 - lanes words of -1 precede 0s... see maskTable
		}
		g.p("TESTQ CX, CX")
		g.p("JZ %s_done", name)
		g.p("CMPQ BX, $%d", s.vec)
		g.p("JLE %s_one", name)
		g.label(name + "_loop")
		g.p("VMASKMOVPS (SI), Y12, Y0")
		g.p("VMASKMOVPS 32(SI), Y13, Y1")
		g.p("VMASKMOVPS Y0, Y14, (DI)")
		g.p("VMASKMOVPS Y1, Y15, 32(DI)")
	}
	g.p("ADDQ R8, SI")
	g.p("ADDQ R9, DI")
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.p("JMP %s_done", name)
	// Rows of at most one vector (the A panels): one masked load and store each.
	g.label(name + "_one")
	if s.reg == "Z" {
		g.p("VMOVUPS.Z (SI), K1, Z0")
		g.p("VMOVUPS Z0, K3, (DI)")
	} else {
		g.p("VMASKMOVPS (SI), Y12, Y0")
		g.p("VMASKMOVPS Y0, Y14, (DI)")
	}
	g.p("ADDQ R8, SI")
	g.p("ADDQ R9, DI")
	g.p("DECQ CX")
	g.p("JNZ %s_one", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

// packTrans writes packTrans<ISA>(groups int, src *float32, lds int, dst *float32): the transposition of
// s.nr rows of src (lds bytes apart) into a k-major panel, t = 16 (AVX-512) or 8 (AVX2) columns per group:
//
//	for kk < groups*t, v < nr: dst[kk*nr + v] = src[v*lds/4 + kk]
//
// by t x t register transposes (unpack, then 128-bit lane shuffles).
func (g *gen) packTrans(s isa) {
	name := "packTrans" + s.name
	t := s.vec
	fmt.Fprintf(&g.Buffer, "\n// func %s(groups int, src *float32, lds int, dst *float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-32\n", name)
	g.p("MOVQ groups+0(FP), CX")
	g.p("MOVQ src+8(FP), SI")
	g.p("MOVQ lds+16(FP), R8")
	g.p("MOVQ dst+24(FP), DI")
	g.p("MOVQ R8, R9")
	g.p("SHLQ $%d, R9", map[int]int{16: 4, 8: 3}[t]) // lds * t: from one block of rows to the next
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	R := func(i int) string { return s.r(i) }
	for h := range s.nv() {
		// rows h*t .. h*t+t-1 into registers 0..t-1
		if h == 0 {
			g.p("MOVQ SI, AX")
		}
		for i := range t {
			g.p("VMOVUPS (AX), %s", R(i))
			g.p("ADDQ R8, AX")
		}
		// unpack pairs of rows: T[2p], T[2p+1] (registers t..2t-1)
		for p := 0; p < t/2; p++ {
			g.p("VUNPCKLPS %s, %s, %s", R(2*p+1), R(2*p), R(t+2*p))
			g.p("VUNPCKHPS %s, %s, %s", R(2*p+1), R(2*p), R(t+2*p+1))
		}
		// U[4q+c] = column 4L+c of rows 4q..4q+3 in 128-bit lane L (registers 0..t-1)
		for q := 0; q < t/4; q++ {
			b := t + 4*q
			g.p("VUNPCKLPD %s, %s, %s", R(b+2), R(b), R(4*q))
			g.p("VUNPCKHPD %s, %s, %s", R(b+2), R(b), R(4*q+1))
			g.p("VUNPCKLPD %s, %s, %s", R(b+3), R(b+1), R(4*q+2))
			g.p("VUNPCKHPD %s, %s, %s", R(b+3), R(b+1), R(4*q+3))
		}
		// out[4L+c] = lane L of U[c], U[4+c], ... (registers t..2t-1, out[j] in t+j)
		if t == 8 {
			for c := range 4 {
				g.p("VPERM2F128 $0x20, %s, %s, %s", R(4+c), R(c), R(t+c))
				g.p("VPERM2F128 $0x31, %s, %s, %s", R(4+c), R(c), R(t+4+c))
			}
		} else {
			for c := range 4 {
				x := func(q int) string { return R(4*q + c) }
				v := func(i int) string { return R(t + 4*c + i) } // scratch, overwritten by out below
				g.p("VSHUFF32X4 $0x44, %s, %s, %s", x(1), x(0), v(0))
				g.p("VSHUFF32X4 $0xEE, %s, %s, %s", x(1), x(0), v(1))
				g.p("VSHUFF32X4 $0x44, %s, %s, %s", x(3), x(2), v(2))
				g.p("VSHUFF32X4 $0xEE, %s, %s, %s", x(3), x(2), v(3))
				// out[4L+c] for L = 0..3 into x(0..3), whose values are now in v
				g.p("VSHUFF32X4 $0x88, %s, %s, %s", v(2), v(0), x(0))
				g.p("VSHUFF32X4 $0xDD, %s, %s, %s", v(2), v(0), x(1))
				g.p("VSHUFF32X4 $0x88, %s, %s, %s", v(3), v(1), x(2))
				g.p("VSHUFF32X4 $0xDD, %s, %s, %s", v(3), v(1), x(3))
			}
		}
		for j := range t {
			reg := R(t + j) // AVX2: out[j] in t+j; AVX-512: in j
			if t == 16 {
				reg = R(j)
			}
			g.p("VMOVUPS %s, %d(DI)", reg, 4*(j*s.nr+h*t))
		}
		if h+1 < s.nv() {
			g.p("LEAQ (SI)(R9*1), AX")
		}
	}
	g.p("ADDQ $%d, SI", 4*t)
	g.p("ADDQ $%d, DI", 4*t*s.nr)
	g.p("DECQ CX")
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

// expConsts are the Cephes expf constants kernels.Exp uses, with the clamp range: x below expLo gives 0 (as
// kernels.Exp), x is capped at expHi so that 2^n stays finite.
var expConsts = []struct {
	name string
	v    float32
}{
	{"expLo", -87.33654}, {"expHi", 88}, {"log2e", 1.44269504088896341},
	{"ln2Hi", 0.693359375}, {"ln2Lo", -2.12194440e-4},
	{"expC0", 1.9875691500e-4}, {"expC1", 1.3981999507e-3}, {"expC2", 8.3334519073e-3},
	{"expC3", 4.1665795894e-2}, {"expC4", 1.6666665459e-1}, {"expC5", 5.0000001201e-1}, {"oneF", 1},
}

// rowOps writes the row kernels of the softmax for s (n a multiple of 2*s.vec, the tail is Go's):
//
//	maxF32<ISA>(x *float32, n int) float32                  // max over x[:n]
//	expShiftSum<ISA>(x *float32, n int, shift float32) float32 // x[i] = exp(x[i]-shift), returns the sum
//	scaleF32<ISA>(x *float32, n int, s float32)               // x[i] *= s
//
// exp as kernels.Exp computes it (Cephes expf), vectorized: 0 below -87.33654, NaN stays NaN.
func (g *gen) rowOps(s isa) {
	R := s.r
	w := 4 * s.vec          // bytes per vector
	hsum := func(acc int) { // reduce R(acc) to its lane 0 (X<acc>), using R(acc+1)
		if s.reg == "Z" {
			g.p("VEXTRACTF64X4 $1, Z%d, Y%d", acc, acc+1)
			g.p("VADDPS Y%d, Y%d, Y%d", acc+1, acc, acc)
		}
		g.p("VEXTRACTF128 $1, Y%d, X%d", acc, acc+1)
		g.p("VADDPS X%d, X%d, X%d", acc+1, acc, acc)
		g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
		g.p("VHADDPS X%d, X%d, X%d", acc, acc, acc)
	}

	name := "maxF32" + s.name
	fmt.Fprintf(&g.Buffer, "\n// func %s(x *float32, n int) float32\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-20\n", name)
	g.p("MOVQ x+0(FP), SI")
	g.p("MOVQ n+8(FP), CX")
	g.p("VBROADCASTSS negInf<>(SB), %s", R(0))
	g.p("VMOVAPS %s, %s", R(0), R(1))
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.p("VMAXPS (SI), %s, %s", R(0), R(0))
	g.p("VMAXPS %d(SI), %s, %s", w, R(1), R(1))
	g.p("ADDQ $%d, SI", 2*w)
	g.p("SUBQ $%d, CX", 2*s.vec)
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VMAXPS %s, %s, %s", R(1), R(0), R(0))
	if s.reg == "Z" {
		g.p("VEXTRACTF64X4 $1, Z0, Y1")
		g.p("VMAXPS Y1, Y0, Y0")
	}
	g.p("VEXTRACTF128 $1, Y0, X1")
	g.p("VMAXPS X1, X0, X0")
	g.p("VPERMILPS $0x4E, X0, X1")
	g.p("VMAXPS X1, X0, X0")
	g.p("VPERMILPS $0xB1, X0, X1")
	g.p("VMAXPS X1, X0, X0")
	g.p("VMOVSS X0, ret+16(FP)")
	g.p("VZEROUPPER")
	g.p("RET")

	// expShiftSum: registers 0, 1 sums; per vector v (two per iteration) x in 2+6v.., consts from memory.
	name = "expShiftSum" + s.name
	fmt.Fprintf(&g.Buffer, "\n// func %s(x *float32, n int, shift float32) float32\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-28\n", name)
	g.p("MOVQ x+0(FP), SI")
	g.p("MOVQ n+8(FP), CX")
	g.p("VBROADCASTSS shift+16(FP), %s", R(14))
	g.p("VBROADCASTSS expLo<>(SB), %s", R(15))
	g.p("VXORPS %s, %s, %s", R(0), R(0), R(0))
	g.p("VXORPS %s, %s, %s", R(1), R(1), R(1))
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	for v := range 2 {
		x, t, r, z, p, e := 2+6*v, 3+6*v, 4+6*v, 5+6*v, 6+6*v, 7+6*v
		g.p("VMOVUPS %d(SI), %s", v*w, R(x))
		g.p("VSUBPS %s, %s, %s", R(14), R(x), R(x))
		// r = clamp(x): max(lo, x) and min(hi, x) return x when it is NaN
		g.p("VMAXPS %s, %s, %s", R(x), R(15), R(r))
		g.p("VBROADCASTSS expHi<>(SB), %s", R(t))
		g.p("VMINPS %s, %s, %s", R(r), R(t), R(r))
		g.p("VBROADCASTSS log2e<>(SB), %s", R(t))
		g.p("VMULPS %s, %s, %s", R(t), R(r), R(t))
		if s.reg == "Z" { // n = round(x*log2e)
			g.p("VRNDSCALEPS $0, %s, %s", R(t), R(t))
		} else {
			g.p("VROUNDPS $0, %s, %s", R(t), R(t))
		}
		g.p("VFNMADD231PS ln2Hi<>(SB), %s, %s", R(t), R(r))
		g.p("VFNMADD231PS ln2Lo<>(SB), %s, %s", R(t), R(r))
		g.p("VMULPS %s, %s, %s", R(r), R(r), R(z))
		g.p("VBROADCASTSS expC0<>(SB), %s", R(p))
		for _, c := range []string{"expC1", "expC2", "expC3", "expC4", "expC5"} {
			g.p("VFMADD213PS %s<>(SB), %s, %s", c, R(r), R(p))
		}
		g.p("VADDPS oneF<>(SB), %s, %s", R(r), R(r))
		g.p("VFMADD213PS %s, %s, %s", R(r), R(z), R(p)) // p*z + r + 1
		g.p("VCVTPS2DQ %s, %s", R(t), R(e))
		g.p("VPADDD i127<>(SB), %s, %s", R(e), R(e))
		g.p("VPSLLD $23, %s, %s", R(e), R(e))
		g.p("VMULPS %s, %s, %s", R(e), R(p), R(p))
		// 0 where x < lo (NaN compares not-less, so it stays)
		if s.reg == "Z" {
			g.p("VCMPPS $5, %s, %s, K1", R(15), R(x))
			g.p("VMOVAPS.Z %s, K1, %s", R(p), R(p))
		} else {
			g.p("VCMPPS $5, %s, %s, %s", R(15), R(x), R(e))
			g.p("VANDPS %s, %s, %s", R(e), R(p), R(p))
		}
		g.p("VMOVUPS %s, %d(SI)", R(p), v*w)
		g.p("VADDPS %s, %s, %s", R(p), R(v), R(v))
	}
	g.p("ADDQ $%d, SI", 2*w)
	g.p("SUBQ $%d, CX", 2*s.vec)
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VADDPS %s, %s, %s", R(1), R(0), R(0))
	hsum(0)
	g.p("VMOVSS X0, ret+24(FP)")
	g.p("VZEROUPPER")
	g.p("RET")

	name = "scaleF32" + s.name
	fmt.Fprintf(&g.Buffer, "\n// func %s(x *float32, n int, s float32)\n", name)
	fmt.Fprintf(&g.Buffer, "TEXT ·%s(SB), NOSPLIT, $0-20\n", name)
	g.p("MOVQ x+0(FP), SI")
	g.p("MOVQ n+8(FP), CX")
	g.p("VBROADCASTSS s+16(FP), %s", R(2))
	g.p("TESTQ CX, CX")
	g.p("JZ %s_done", name)
	g.label(name + "_loop")
	g.p("VMULPS (SI), %s, %s", R(2), R(0))
	g.p("VMULPS %d(SI), %s, %s", w, R(2), R(1))
	g.p("VMOVUPS %s, (SI)", R(0))
	g.p("VMOVUPS %s, %d(SI)", R(1), w)
	g.p("ADDQ $%d, SI", 2*w)
	g.p("SUBQ $%d, CX", 2*s.vec)
	g.p("JNZ %s_loop", name)
	g.label(name + "_done")
	g.p("VZEROUPPER")
	g.p("RET")
}

func main() {
	out := flag.String("out", "sgemm_amd64.s", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, generate(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// generate returns the text of sgemm_amd64.s.
func generate() []byte {
	var g gen
	g.WriteString("// Code generated by internal/asmgen; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n\n")
	// maskTable: 8 words of -1 then 8 of 0; the 8 words at 32-4n bytes are a VMASKMOVPS mask of n lanes.
	g.WriteString("DATA maskTable<>+0(SB)/8, $-1\nDATA maskTable<>+8(SB)/8, $-1\nDATA maskTable<>+16(SB)/8, $-1\n")
	g.WriteString("DATA maskTable<>+24(SB)/8, $-1\nDATA maskTable<>+32(SB)/8, $0\nDATA maskTable<>+40(SB)/8, $0\n")
	g.WriteString("DATA maskTable<>+48(SB)/8, $0\nDATA maskTable<>+56(SB)/8, $0\nGLOBL maskTable<>(SB), RODATA|NOPTR, $64\n")
	// The row kernels' constants, each a full 64-byte vector so that it can be a memory operand.
	for _, c := range expConsts {
		g.vecConst(c.name, math.Float32bits(c.v))
	}
	g.vecConst("negInf", 0xff800000)
	g.vecConst("i127", 127) // 2^n = (n+127) << 23
	for _, s := range isas {
		if s.mr*s.nv()+s.nv()+2 > s.nregs {
			log.Fatalf("%s: %dx%d tile does not fit %d registers", s.name, s.mr, s.nr, s.nregs)
		}
		g.kernel(s, false, s.nv())
		g.kernel(s, true, s.nv())
		if s.reg == "Z" {
			g.kernel(s, false, 1)
			g.kernel(s, true, 1)
		}
		g.peak(s)
		g.packCopy(s)
		g.packTrans(s)
		g.rowOps(s)
	}
	return g.Bytes()
}
