package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

// VNNI kernels. On the VNNI ISAs, interleaved Q8_0 (biased: quants stored as q+128) and Q4_0 weights are
// multiplied with VPDPBUSD, unsigned weight bytes times signed activation bytes, four products summed into
// each int32 lane: one instruction per 64 (AVX-512) or 32 (AVX-VNNI) multiply-adds, where AVX2 needs a sign
// trick and two widening multiplies. The +128 (Q8_0) or +8 (Q4_0, whose nibbles are unsigned already) offset
// of the weights is undone by starting each block's integer sum at -C*sum(q_x), computed once per activation
// block when the activations are quantized.
//
// The activations go into records, one per group of 8 blocks (256 values) of a row, vnniRecordBytes apart:
//
//	[0, 256)   the group's int8 quants, interleaved like the weights (run v: values 4v..4v+3 of each block)
//	[256, 320) the 8 blocks' scales d_x as float32, twice (lanes j and j+8 of a 512-bit register both hold
//	           partial sums of block j)
//	[320, 352) the 8 blocks' corrections -C*sum(q_x) as int32
//	[352, 384) padding, so that records stay 64-byte aligned
//
// A kernel computes an MR x NR tile of results, MR weight rows by NR activation rows (vnniFunc), so that each
// weight vector loaded is used NR times and each activation vector MR times: prefill (batches of many rows)
// runs at the speed of the integer units instead of re-reading each weight row for every 5 activation rows.
const (
	vnniRecordBytes = 384
	vnniScales      = 256
	vnniCorr        = 320
	// vnniNR is the largest number of activation rows of a tile.
	vnniNR = 6
)

// vnniFunc is the signature of the VNNI kernels: for r < MR and a < NR,
//
//	out[a*ostride/4 + r] = dot(weight row r at w + r*wstride, activation row a's records at x + a*xstride)
//
// over ngroups groups of 8 blocks, strides in bytes; see dotRecords for the same computation in Go.
type vnniFunc func(ngroups int, w *byte, wstride int, x *byte, xstride int, out *float32, ostride int)

// vnniCorrection returns the C of the job's activation records (128 for biased Q8_0, 8 for Q4_0), or 0 when
// the job does not run the VNNI kernels.
func (j *matJob) vnniCorrection() int32 {
	if !j.vnni {
		return 0
	}
	return weightOffset(j.m.Type)
}

// growRecords makes room for groups activation records, 64-byte aligned.
func (s *scratch) growRecords(groups int) {
	n := groups * vnniRecordBytes
	if cap(s.recBuf) < n+64 {
		s.recBuf = make([]byte, n+64)
	}
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(s.recBuf))) & 63)
	s.rec = s.recBuf[off : off+n]
}

// packRecords writes the records of groups [g0, g1) from quants q (block order) and block scales d, with
// corrections -c*sum(q) per block.
func packRecords(rec []byte, q []int8, d []float32, g0, g1 int, c int32) {
	qb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q))
	for g := g0; g < g1; g++ {
		r := rec[g*vnniRecordBytes : (g+1)*vnniRecordBytes]
		src := qb[g*groupValues : (g+1)*groupValues]
		for j := range groupBlocks {
			blk := src[32*j : 32*j+32]
			var sum int32
			for v := range 8 {
				w := binary.LittleEndian.Uint32(blk[4*v:])
				binary.LittleEndian.PutUint32(r[32*v+4*j:], w)
				sum += int32(int8(w)) + int32(int8(w>>8)) + int32(int8(w>>16)) + int32(int8(w>>24))
			}
			f := math.Float32bits(d[g*groupBlocks+j])
			binary.LittleEndian.PutUint32(r[vnniScales+4*j:], f)
			binary.LittleEndian.PutUint32(r[vnniScales+32+4*j:], f)
			binary.LittleEndian.PutUint32(r[vnniCorr+4*j:], uint32(-c*sum))
		}
		clear(r[vnniCorr+32:])
	}
}

// dotRecords is the Go form of a VNNI kernel for one weight row w (interleaved Q4_0, or biased Q8_0) and one
// activation row's records x, ngroups groups: per block, d_w * d_x * (correction + sum of weight byte times
// activation quant), the weight bytes taken as the unsigned values VPDPBUSD sees.
func dotRecords(typ weights.Type, w, x []byte, ngroups int) float32 {
	gb := groupBytes(typ)
	var sum float32
	for g := range ngroups {
		grp := w[g*gb : (g+1)*gb]
		r := x[g*vnniRecordBytes : (g+1)*vnniRecordBytes]
		for j := range groupBlocks {
			isum := int32(binary.LittleEndian.Uint32(r[vnniCorr+4*j:]))
			if typ == weights.TypeQ4_0 {
				for v := range 4 {
					for t := range 4 {
						b := grp[16+32*v+4*j+t]
						isum += int32(b&15)*int32(int8(r[32*v+4*j+t])) + int32(b>>4)*int32(int8(r[32*(4+v)+4*j+t]))
					}
				}
			} else {
				for v := range 8 {
					for t := range 4 {
						isum += int32(grp[16+32*v+4*j+t]) * int32(int8(r[32*v+4*j+t]))
					}
				}
			}
			dx := math.Float32frombits(binary.LittleEndian.Uint32(r[vnniScales+4*j:]))
			sum += f16(grp[2*j:]) * dx * float32(isum)
		}
	}
	return sum
}

// runVNNI computes output rows [lo, hi) for the whole batch with the VNNI kernels: for each tile of up to
// vnniNR activation rows, the rows of [lo, hi) in tiles of as many weight rows as the ISA's kernels take.
func (j *matJob) runVNNI(lo, hi int) {
	m := j.m
	ng := m.Cols / groupValues
	rs := ng * vnniRecordBytes
	maxMR := 1
	if j.isa.avx512() {
		maxMR = 2
	}
	for b := 0; b < j.batch; b += vnniNR {
		t := min(vnniNR, j.batch-b)
		for r := lo; r < hi; {
			mr := min(maxMR, hi-r)
			vnniKernel(j.isa, m.Type, mr, t)(ng, &m.Data[r*j.rowBytes], j.rowBytes, &j.q.rec[b*rs], rs,
				&j.out[b*m.Rows+r], m.Rows*4)
			r += mr
		}
	}
}
