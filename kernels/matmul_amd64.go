//go:build amd64

package kernels

import (
	"encoding/binary"
	"math"

	"golang.org/x/sys/cpu"

	"github.com/bestofn/bestofn/weights"
)

//go:generate go run ./internal/asmgen -dir .

// haveASM reports whether the CPU runs the assembly kernels (AVX2, FMA and F16C).
func haveASM() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C }

// haveAVXVNNI reports whether the CPU runs the AVX-VNNI kernels of vnni_amd64.s (VEX-encoded VPDPBUSD).
func haveAVXVNNI() bool { return cpu.X86.HasAVXVNNI }

// haveAVX512VNNI reports whether the CPU (and OS) run the AVX-512 VNNI kernels of vnni_amd64.s.
func haveAVX512VNNI() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI
}

// vnniKernel returns the VNNI kernel of isa for weights of typ (Q8_0 biased, or Q4_0) and an mr x nr tile
// (mr 1 for ISAAVXVNNI, 1 or 2 for ISAAVX512VNNI and ISAAMX; nr 1..vnniNR).
func vnniKernel(isa ISA, typ weights.Type, mr, nr int) vnniFunc {
	t := 0
	if typ == weights.TypeQ4_0 {
		t = 1
	}
	if isa.avx512() {
		return vnni512Kernels[t][mr-1][nr-1]
	}
	return avxvnniKernels[t][nr-1]
}

// panelKernel returns the AVX-512 panel kernel of typ (Q4_0 or Q8_0), np panels (1 or 2) by nr activation rows
// (1..6).
func panelKernel(typ weights.Type, np, nr int) panelFunc {
	if typ == weights.TypeQ8_0 {
		return vnni512PanelKernels[0][np-1][nr-1]
	}
	return vnni512PanelKernels[1][np-1][nr-1]
}

// The tile kernels below compute, for k < T (the digit in the name),
//
//	res[k] = sum over blocks i < nb of d_w(i) * xd[k*dstride/4 + i] * sum_j w(i, j) * xq[k*qstride + 32*i + j]
//
// where w(i, j) is value j of weight block i (Q8_0: int8 q; Q4_0: nibble-8) and d_w(i) its fp16 scale, read
// from w in the file's block layout (34 or 18 bytes per block). For T > 1 the activation scales are read
// block-major instead: row k's scale of block i at xd[i*dstride/4 + k], with 8 floats readable there.
// The Q4_0 kernels also take xs, the activation block sums d_x*sum(q_x) laid out like xd, and compute the
// offset of 8 as -8*sum_i d_w(i)*xs(i) (see the generator's q40Tile). See dotQ8_0 and dotQ4_0 for the same loops
// in Go; results differ only in float summation order.

//go:noescape
func dotQ8_0T1(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0T2(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0T3(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0T4(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0T5(nb int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

// The interleaved Q8_0 kernels compute, for k < T, res[k] = dot(w, activation row k) for ngroups groups of 8
// blocks in the layout of Interleave (weights and activations alike), with activation row k at
// xq + k*qstride and its block scales (row-major float32) at xd + k*dstride, strides in bytes; see dotQ8_0I.

//go:noescape
func dotQ8_0IT1(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0IT2(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0IT3(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0IT4(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ8_0IT5(ngroups int, w *byte, xq *int8, xd *float32, qstride, dstride int, res *float32)

// The interleaved Q4_0 kernels are the Q8_0 ones for Q4_0 weights, with xc the int16 offset vectors of
// offsetQ4_0I (16 per group, row k at xc + k*dstride bytes, like xd); see dotQ4_0I.

//go:noescape
func dotQ4_0IT1(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0IT2(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0IT3(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0IT4(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0IT5(ngroups int, w *byte, xq *int8, xd *float32, xc *int16, qstride, dstride int, res *float32)

// interleavedTileASM calls the interleaved kernel of typ (Q8_0 or Q4_0; xc is read for Q4_0 only) for t rows.
func interleavedTileASM(typ weights.Type, t, ng int, w *byte, xq *int8, xd *float32, xc *int16, qs, ds int, res *float32) {
	if typ == weights.TypeQ4_0 {
		switch t {
		case 1:
			dotQ4_0IT1(ng, w, xq, xd, xc, qs, ds, res)
		case 2:
			dotQ4_0IT2(ng, w, xq, xd, xc, qs, ds, res)
		case 3:
			dotQ4_0IT3(ng, w, xq, xd, xc, qs, ds, res)
		case 4:
			dotQ4_0IT4(ng, w, xq, xd, xc, qs, ds, res)
		default:
			dotQ4_0IT5(ng, w, xq, xd, xc, qs, ds, res)
		}
		return
	}
	switch t {
	case 1:
		dotQ8_0IT1(ng, w, xq, xd, qs, ds, res)
	case 2:
		dotQ8_0IT2(ng, w, xq, xd, qs, ds, res)
	case 3:
		dotQ8_0IT3(ng, w, xq, xd, qs, ds, res)
	case 4:
		dotQ8_0IT4(ng, w, xq, xd, qs, ds, res)
	default:
		dotQ8_0IT5(ng, w, xq, xd, qs, ds, res)
	}
}

//go:noescape
func dotQ4_0T1(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0T2(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0T3(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0T4(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)

//go:noescape
func dotQ4_0T5(nb int, w *byte, xq *int8, xd, xs *float32, qstride, dstride int, res *float32)

// The float tile kernels compute, for k < T,
//
//	res[k] = sum over i < n of w[i] * x[k*xstride/4 + i]
//
// with w float32 (F32), IEEE half (F16, converted by VCVTPH2PS) or bfloat16 (BF16, shifted into the top half
// of a float32); n must be a multiple of 64. See dotF32Bytes, dotF16 and dotBF16 for the Go loops.

//go:noescape
func dotF16T1(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF16T2(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF16T3(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF16T4(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF16T5(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotBF16T1(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotBF16T2(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotBF16T3(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotBF16T4(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotBF16T5(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF32T1(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF32T2(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF32T3(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF32T4(n int, w *byte, x *float32, xstride int, res *float32)

//go:noescape
func dotF32T5(n int, w *byte, x *float32, xstride int, res *float32)

// The K-quant tile kernels compute, for k < T,
//
//	res[k] = sum over blocks i < nb of dot(weight block i, Q8_K record i of activation row k)
//
// with activation row k's records at xk + k*xstride (see dotQ4_K, dotQ5_K and dotQ6_K for the Go loops).

//go:noescape
func dotQ4_KT1(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ4_KT2(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ4_KT3(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ4_KT4(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ4_KT5(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ5_KT1(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ5_KT2(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ5_KT3(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ5_KT4(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ5_KT5(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ6_KT1(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ6_KT2(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ6_KT3(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ6_KT4(nb int, w *byte, xk *byte, xstride int, res *float32)

//go:noescape
func dotQ6_KT5(nb int, w *byte, xk *byte, xstride int, res *float32)

// dotF32ASM returns sum over i < n of a[i]*b[i]; n must be a multiple of 32.
//
//go:noescape
func dotF32ASM(a, b *float32, n int) float32

// axpyF32ASM sets y[i] += alpha*x[i] for i < n; n must be a multiple of 32.
//
//go:noescape
func axpyF32ASM(alpha float32, x, y *float32, n int)

// dotRowsF32ASM sets out[i] = sum over j < n of a[i*stride/4 + j]*x[j] for i < rows; n must be a positive
// multiple of 32 and stride is in bytes.
//
//go:noescape
func dotRowsF32ASM(out, a *float32, stride, rows int, x *float32, n int)

// axpyRowsF32ASM adds sum over i < rows of w[i]*a[i*stride/4 + j] to y[j] for j < n; n must be a positive
// multiple of 32 and stride is in bytes.
//
//go:noescape
func axpyRowsF32ASM(y, a *float32, stride, rows int, w *float32, n int)

// quantQ8_0ASM quantizes nb blocks of 32 values of x into q, d and s exactly as quantizeBlock does (same
// bytes and scales): d[i] = max|x| of block i / 127, q = round(x/d), s[i] = d[i]*sum of block i's q.
//
//go:noescape
func quantQ8_0ASM(x *float32, q *int8, d, s *float32, nb int)

// packRecordsASM writes the VNNI activation records of ngroups groups exactly as packRecords does: from
// the group's 256 quants at q and 8 scales at d, with corrections -c*sum(q) per block.
//
//go:noescape
func packRecordsASM(rec *byte, q *int8, d *float32, ngroups int, c int32)

// quantTileASM calls the Q8_0 tile kernel for t rows.
func quantTileASM(t, nb int, w *byte, xq *int8, xd *float32, qs, ds int, res *float32) {
	switch t {
	case 1:
		dotQ8_0T1(nb, w, xq, xd, qs, ds, res)
	case 2:
		dotQ8_0T2(nb, w, xq, xd, qs, ds, res)
	case 3:
		dotQ8_0T3(nb, w, xq, xd, qs, ds, res)
	case 4:
		dotQ8_0T4(nb, w, xq, xd, qs, ds, res)
	default:
		dotQ8_0T5(nb, w, xq, xd, qs, ds, res)
	}
}

// q40TileASM calls the Q4_0 tile kernel for t rows.
func q40TileASM(t, nb int, w *byte, xq *int8, xd, xs *float32, qs, ds int, res *float32) {
	switch t {
	case 1:
		dotQ4_0T1(nb, w, xq, xd, xs, qs, ds, res)
	case 2:
		dotQ4_0T2(nb, w, xq, xd, xs, qs, ds, res)
	case 3:
		dotQ4_0T3(nb, w, xq, xd, xs, qs, ds, res)
	case 4:
		dotQ4_0T4(nb, w, xq, xd, xs, qs, ds, res)
	default:
		dotQ4_0T5(nb, w, xq, xd, xs, qs, ds, res)
	}
}

// kTileASM calls the K-quant tile kernel of type typ for t rows.
func kTileASM(typ weights.Type, t, nb int, w, xk *byte, xs int, res *float32) {
	switch typ {
	case weights.TypeQ4_K:
		switch t {
		case 1:
			dotQ4_KT1(nb, w, xk, xs, res)
		case 2:
			dotQ4_KT2(nb, w, xk, xs, res)
		case 3:
			dotQ4_KT3(nb, w, xk, xs, res)
		case 4:
			dotQ4_KT4(nb, w, xk, xs, res)
		default:
			dotQ4_KT5(nb, w, xk, xs, res)
		}
	case weights.TypeQ5_K:
		switch t {
		case 1:
			dotQ5_KT1(nb, w, xk, xs, res)
		case 2:
			dotQ5_KT2(nb, w, xk, xs, res)
		case 3:
			dotQ5_KT3(nb, w, xk, xs, res)
		case 4:
			dotQ5_KT4(nb, w, xk, xs, res)
		default:
			dotQ5_KT5(nb, w, xk, xs, res)
		}
	default:
		switch t {
		case 1:
			dotQ6_KT1(nb, w, xk, xs, res)
		case 2:
			dotQ6_KT2(nb, w, xk, xs, res)
		case 3:
			dotQ6_KT3(nb, w, xk, xs, res)
		case 4:
			dotQ6_KT4(nb, w, xk, xs, res)
		default:
			dotQ6_KT5(nb, w, xk, xs, res)
		}
	}
}

// floatTileASM calls the F32, F16 or BF16 tile kernel for t rows.
func floatTileASM(typ weights.Type, t, n int, w *byte, x *float32, xs int, res *float32) {
	switch typ {
	case weights.TypeF16:
		switch t {
		case 1:
			dotF16T1(n, w, x, xs, res)
		case 2:
			dotF16T2(n, w, x, xs, res)
		case 3:
			dotF16T3(n, w, x, xs, res)
		case 4:
			dotF16T4(n, w, x, xs, res)
		default:
			dotF16T5(n, w, x, xs, res)
		}
	case weights.TypeBF16:
		switch t {
		case 1:
			dotBF16T1(n, w, x, xs, res)
		case 2:
			dotBF16T2(n, w, x, xs, res)
		case 3:
			dotBF16T3(n, w, x, xs, res)
		case 4:
			dotBF16T4(n, w, x, xs, res)
		default:
			dotBF16T5(n, w, x, xs, res)
		}
	default:
		switch t {
		case 1:
			dotF32T1(n, w, x, xs, res)
		case 2:
			dotF32T2(n, w, x, xs, res)
		case 3:
			dotF32T3(n, w, x, xs, res)
		case 4:
			dotF32T4(n, w, x, xs, res)
		default:
			dotF32T5(n, w, x, xs, res)
		}
	}
}

// rowsASM computes out[r] for r in [lo, hi) with batch 1, calling the single-row kernel directly (tiny
// matrices spend much of their time in the per-row dispatch otherwise). It reports false when it does not
// handle the type or shape.
func (j *matJob) rowsASM(lo, hi int) bool {
	m, rb := j.m, j.rowBytes
	if lo >= hi {
		return true
	}
	switch m.Type {
	case weights.TypeF32, weights.TypeF16, weights.TypeBF16:
		if m.Cols%64 != 0 {
			return false
		}
		r := lo
		if pair := floatRows(j.isa, m.Type); pair != nil {
			for ; r+2 <= hi; r += 2 {
				pair(m.Cols, &m.Data[r*rb], rb, &j.x[0], &j.out[r])
			}
		}
		for ; r < hi; r++ {
			floatTileASM(m.Type, 1, m.Cols, &m.Data[r*rb], &j.x[0], 0, &j.out[r])
		}
		return true
	case weights.TypeQ8_0, weights.TypeQ4_0:
		nb := m.Cols / 32
		if m.Biased {
			return false // the AVX2 kernels take signed Q8_0 quants; the Go loops take these
		}
		if m.Interleaved {
			for r := lo; r < hi; r++ {
				interleavedTileASM(m.Type, 1, nb/groupBlocks, &m.Data[r*rb], &j.q.qi[0], &j.q.d[0], &j.q.ci[0], 0, 0, &j.out[r])
			}
			return true
		}
		for r := lo; r < hi; r++ {
			if m.Type == weights.TypeQ8_0 {
				dotQ8_0T1(nb, &m.Data[r*rb], &j.q.q[0], &j.q.d[0], 0, 0, &j.out[r])
			} else {
				dotQ4_0T1(nb, &m.Data[r*rb], &j.q.q[0], &j.q.d[0], &j.q.s[0], 0, 0, &j.out[r])
			}
		}
		return true
	}
	return false
}

// floatRows returns the two-row kernel of float type typ (F32, F16 or BF16) for a VNNI ISA, or nil: ISAAVX2
// reads one row at a time with dot<typ>T1.
func floatRows(isa ISA, typ weights.Type) func(n int, w *byte, wstride int, x *float32, res *float32) {
	switch {
	case !isa.vnni():
		return nil
	case typ == weights.TypeF32:
		return dotF32Y2
	case typ == weights.TypeF16:
		return dotF16Y2
	}
	return dotBF16Y2
}

// tileASM runs the assembly kernel for w's type on activation rows b..b+t-1, if there is one.
// For float types w holds columns [c0, c1) of a row.
func (j *matJob) tileASM(w []byte, b, t, c0, c1 int, res *[tileBatch]float32) bool {
	cols := j.m.Cols
	if j.m.Biased {
		return false
	}
	if j.m.Interleaved {
		nb := cols / 32
		interleavedTileASM(j.m.Type, t, nb/groupBlocks, &w[0], &j.q.qi[b*cols], &j.q.d[b*nb], &j.q.ci[2*b*nb], cols, nb*4,
			&res[0])
		return true
	}
	switch j.m.Type {
	case weights.TypeQ8_0, weights.TypeQ4_0:
		nb := cols / 32
		xd, xs, ds := &j.q.d[b*nb], &j.q.s[b*nb], 0
		if t > 1 {
			xd, xs, ds = &j.q.dT[b], &j.q.sT[b], j.q.dTStride*4
		}
		if j.m.Type == weights.TypeQ8_0 {
			quantTileASM(t, nb, &w[0], &j.q.q[b*cols], xd, cols, ds, &res[0])
		} else {
			q40TileASM(t, nb, &w[0], &j.q.q[b*cols], xd, xs, cols, ds, &res[0])
		}
		return true
	case weights.TypeQ4_K, weights.TypeQ5_K, weights.TypeQ6_K:
		nb := cols / 256
		kTileASM(j.m.Type, t, nb, &w[0], &j.q.k[b*nb*q8KBytes], nb*q8KBytes, &res[0])
		return true
	case weights.TypeF32, weights.TypeF16, weights.TypeBF16:
		n := (c1 - c0) &^ 63
		if n > 0 {
			floatTileASM(j.m.Type, t, n, &w[0], &j.x[b*cols+c0], cols*4, &res[0])
		} else {
			*res = [tileBatch]float32{}
		}
		for k := range t {
			x := j.x[(b+k)*cols+c0 : (b+k)*cols+c1]
			for i := n; i < c1-c0; i++ {
				var wv float32
				switch j.m.Type {
				case weights.TypeF16:
					wv = f16ToF32(binary.LittleEndian.Uint16(w[2*i:]))
				case weights.TypeBF16:
					wv = math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:])) << 16)
				default:
					wv = math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
				}
				res[k] += wv * x[i]
			}
		}
		return true
	}
	return false
}

// swigluASM sets gate[i] = gate[i] / (1 + e^-gate[i]) * up[i] for i < n; n must be a multiple of 8.
//
//go:noescape
func swigluASM(gate, up *float32, n int)

// maxF32ASM returns the largest of x[0..n); n must be a positive multiple of 8.
//
//go:noescape
func maxF32ASM(x *float32, n int) float32

// expSumASM sets x[i] = e^(x[i]-shift) for i < n (clamped below at e^-87.33654) and returns their sum; n must
// be a multiple of 8.
//
//go:noescape
func expSumASM(x *float32, n int, shift float32) float32

// streamReadASM reads n bytes at p (n a multiple of 256), with software prefetches ahead, and returns the XOR
// of their 8-byte words folded to one (the read-bandwidth probe of ReadBandwidth).
//
//go:noescape
func streamReadASM(p *byte, n int) uint64
