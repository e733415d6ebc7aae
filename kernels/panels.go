package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

// The panel layout of Q4_0 and Q8_0 weights, for the AVX-512 ISAs. Rows go in tiles of 32 (the last one 16
// when the rows are an odd number of 16s), each the size of its rows in the file, holding for each 32-value
// block in turn one panel per 16 rows (panelBlockBytes(typ)): the 16 rows' fp16 scales (row i at 2i), then
// vectors of 64 bytes, vector k holding quant bytes 4k..4k+3 of row i at 4i. Q4_0 has 4 such vectors (their
// low nibbles are values 4k..4k+3, their high nibbles values 16+4k..16+4k+3), Q8_0 8 (values 4k..4k+3), each
// quant stored as the unsigned byte q+128 as in the biased groups; Q8_0 tiles go by pairs of blocks, in the
// order the kernels read them (panelQ8_0Offset). A tile is read as one stream. The bytes and
// the matrix size are the file's, only their order (and Q8_0's sign bits) differ.
//
// Lane i of a 512-bit vector then belongs to row i, so VPDPBUSD multiplies a vector of unsigned weight bytes
// of 16 rows with 4 activation bytes broadcast from memory into the 16 rows' sums in one instruction, and a
// block's sums are scaled once per 16 rows (the 16 weight scales times the activation's): fewer loads and half
// the float work per multiply-add of the interleaved groups of 8 blocks, whose vectors hold 2 rows of 8 blocks
// each and whose activations are loaded 64 bytes at a time. Batches of 5 rows (best-of-5 decode) are
// compute-bound there; in panels a 32 x 5 Q4_0 tile costs 1.4 ns per 256-value dot product on a Zen 4 against
// 2.3 for 2 x 5 groups, with the weights in cache.
//
// The activations stay in Q8_0 blocks in their natural order (scratch.q), with per block the pair (d_x,
// -C*sum(q_x)) in scratch.dc: the correction starts each block's integer sum, which undoes the weights' offset
// C (8 for Q4_0 nibbles, value = d_w*(nibble-8); 128 for the biased Q8_0 bytes).
const (
	panelRows = 16
	// panelMaxP and panelMaxNR bound the panel kernels' tiles: up to 2 panels (32 rows) by 6 activation rows.
	panelMaxP  = 2
	panelMaxNR = 6
)

// panelBlockBytes is the size of one block of a 16-row panel of typ (Q4_0 or Q8_0).
func panelBlockBytes(typ weights.Type) int {
	if typ == weights.TypeQ8_0 {
		return panelRows * 34
	}
	return panelRows * 18
}

// weightOffset is the offset C of typ's unsigned weight bytes in the VNNI groups and the panels (8 for Q4_0
// nibbles, 128 for biased Q8_0), which the activation corrections -C*sum(q_x) undo.
func weightOffset(typ weights.Type) int32 {
	if typ == weights.TypeQ8_0 {
		return 128
	}
	return 8
}

// panelFunc is the signature of the panel kernels: for a tile of P panels at w (P*panelBlockBytes(typ) bytes
// a block, in pairs of blocks for Q8_0), q < P, a < NR activation rows and lane i < 16,
//
//	out[a*ostride/4 + 16*q + i] = dot(row 16*q + i of the tile, activation row a)
//
// with activation row a's quants at x + a*xstride and its (d_x, correction) pairs at dc + a*dcstride (8 bytes
// a block); nb blocks, an even number. See dotPanelQ4_0 and dotPanelQ8_0 for the same computation in Go.
type panelFunc func(nb int, w *byte, x *byte, xstride int, dc *byte, dcstride int, out *float32, ostride int)

// panelable reports whether a Q4_0 or Q8_0 matrix of rows rows goes into the panel layout for isa and layout.
func panelable(isa ISA, layout Layout, rows int) bool {
	return isa.resolve().avx512() && layout.resolve() == LayoutPanels && rows%panelRows == 0
}

// interleavePanel writes one tile of np panels of typ (Q4_0 or Q8_0) into dst in the panel layout.
func interleavePanel(typ weights.Type, dst, src []byte, rb, nb, np int) {
	if typ == weights.TypeQ8_0 {
		interleavePanelQ8_0(dst, src, rb, nb, np)
		return
	}
	interleavePanelQ4_0(dst, src, rb, nb, np)
}

// interleavePanelQ4_0 writes one tile of np panels (np*16 Q4_0 rows of nb blocks; src: file layout, rows rb
// bytes apart) into dst in the panel layout.
func interleavePanelQ4_0(dst, src []byte, rb, nb, np int) {
	for r := range np * panelRows {
		row := src[r*rb : r*rb+nb*18]
		i := r % panelRows
		for b := range nb {
			blk := row[b*18 : b*18+18]
			pb := panelBlockBytes(weights.TypeQ4_0)
			off := (b*np + r/panelRows) * pb
			d := dst[off : off+pb]
			d[2*i], d[2*i+1] = blk[0], blk[1]
			for k := range 4 {
				binary.LittleEndian.PutUint32(d[32+64*k+4*i:], binary.LittleEndian.Uint32(blk[2+4*k:]))
			}
		}
	}
}

// interleavePanelQ8_0 writes one tile of np panels (np*16 Q8_0 rows of nb blocks, nb even; src: file layout,
// rows rb bytes apart) into dst in the panel layout, each quant q as the byte q+128, by pairs of blocks
// (panelQ8_0Offset).
func interleavePanelQ8_0(dst, src []byte, rb, nb, np int) {
	const bias = 0x80808080
	for r := range np * panelRows {
		row := src[r*rb : r*rb+nb*34]
		for b := range nb {
			blk := row[b*34 : b*34+34]
			sc, vec := panelQ8_0Offset(r, np, b)
			dst[sc], dst[sc+1] = blk[0], blk[1]
			for k := range 8 {
				binary.LittleEndian.PutUint32(dst[vec+64*np*k:], binary.LittleEndian.Uint32(blk[2+4*k:])^bias)
			}
		}
	}
}

// panelQ8_0Offset returns where, in a tile of np Q8_0 panels, row r's fp16 scale of block b and its 4 quant
// bytes of vector 0 are (vector k is 64*np*k further). Per pair of blocks (b even, b+1) the tile holds
// np*1088 bytes in the order the panel kernels read them: for each panel q, the 16 rows' scales of block b
// (row i at 2i) and of block b+1 (at 32 + 2i), one cache line per panel; then for each of the two blocks, for
// each vector k, the panels' vectors k in turn. Every 64-byte vector is one cache line and the kernels touch
// the lines in address order, which the hardware prefetchers follow (panels of 544-byte blocks, read vector
// by vector in each panel and the scales last, streamed at 9-15 GB/s on one Zen 4 thread against 17-20 for
// the groups of 8 blocks).
func panelQ8_0Offset(r, np, b int) (scale, vec int) {
	const unit = panelRows * 34 * 2 // one panel's share of a pair of blocks
	i, q, h := r%panelRows, r/panelRows, b%2
	base := b / 2 * np * unit
	return base + 64*q + 32*h + 2*i, base + 64*np + 64*(q+np*8*h) + 4*i
}

// dotPanelQ4_0 is the dot product of row r of a tile of np Q4_0 panels (tile: its data) with activation quants
// xq and block scales xd, nb blocks: dotQ4_0 reading the panel layout.
func dotPanelQ4_0(tile []byte, r, np, nb int, xq []int8, xd []float32) float32 {
	var sum float32
	i := r % panelRows
	for b := range nb {
		pb := panelBlockBytes(weights.TypeQ4_0)
		off := (b*np + r/panelRows) * pb
		blk := tile[off : off+pb]
		x := xq[b*32 : b*32+32]
		var s int32
		for k := range 4 {
			for t := range 4 {
				q := blk[32+64*k+4*i+t]
				s += (int32(q&15)-8)*int32(x[4*k+t]) + (int32(q>>4)-8)*int32(x[16+4*k+t])
			}
		}
		sum += f16(blk[2*i:]) * xd[b] * float32(s)
	}
	return sum
}

// dotPanelQ8_0 is dotPanelQ4_0 for a tile of Q8_0 panels (quants stored as q+128): dotQ8_0 reading the panel
// layout.
func dotPanelQ8_0(tile []byte, r, np, nb int, xq []int8, xd []float32) float32 {
	var sum float32
	for b := range nb {
		sc, vec := panelQ8_0Offset(r, np, b)
		x := xq[b*32 : b*32+32]
		var s int32
		for k := range 8 {
			for t := range 4 {
				s += int32(int8(tile[vec+64*np*k+t]^0x80)) * int32(x[4*k+t])
			}
		}
		sum += f16(tile[sc:]) * xd[b] * float32(s)
	}
	return sum
}

// dotPanel is dotPanelQ4_0 or dotPanelQ8_0 for typ.
func dotPanel(typ weights.Type, tile []byte, r, np, nb int, xq []int8, xd []float32) float32 {
	if typ == weights.TypeQ8_0 {
		return dotPanelQ8_0(tile, r, np, nb, xq, xd)
	}
	return dotPanelQ4_0(tile, r, np, nb, xq, xd)
}

// packPanelScales writes, for blocks [lo, hi) of the quantized activations, the panel kernels' pairs: d's
// bits and the correction -c*sum(q) (sum recovered from s = d*sum, exact for any d above the tiny ones, which
// are summed from q).
func packPanelScales(dc []uint32, q []int8, d, s []float32, lo, hi int, c int32) {
	for i := lo; i < hi; i++ {
		var sum int32
		if d[i] > 1e-30 {
			sum = int32(math.Round(float64(s[i] / d[i])))
		} else {
			for _, v := range q[32*i : 32*i+32] {
				sum += int32(v)
			}
		}
		dc[2*i] = math.Float32bits(d[i])
		dc[2*i+1] = uint32(-c * sum)
	}
}

// runPanels computes output rows [lo, hi) (whole tiles) of a Q4_0 or Q8_0 matrix in the panel layout for the
// whole batch: with the AVX-512 panel kernels, tiles of 2 panels (1 for an odd last one) by up to 6 activation
// rows (batches over 6 split evenly), the weights of a tile staying in cache while its activation tiles pass;
// with the Go loops (dotPanel) on the other ISAs.
func (j *matJob) runPanels(lo, hi int) {
	m, q := j.m, j.q
	nb, rb := m.Cols/32, j.rowBytes
	tileRows := panelMaxP * panelRows
	if !j.isa.avx512() {
		for r := lo; r < hi; r++ {
			t0 := r / tileRows * tileRows
			np := min(panelMaxP, (m.Rows-t0)/panelRows)
			tile := m.Data[t0*rb : (t0+np*panelRows)*rb]
			for b := range j.batch {
				j.out[b*m.Rows+r] = dotPanel(m.Type, tile, r-t0, np, nb, q.q[b*m.Cols:(b+1)*m.Cols], q.d[b*nb:(b+1)*nb])
			}
		}
		return
	}
	tiles := (j.batch + panelMaxNR - 1) / panelMaxNR
	x := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q.q))), len(q.q))
	dc := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q.dc))), 4*len(q.dc))
	for r := lo; r < hi; r += tileRows {
		np := min(panelMaxP, (m.Rows-r)/panelRows)
		for t := range tiles {
			b0, b1 := j.batch*t/tiles, j.batch*(t+1)/tiles
			panelKernel(m.Type, np, b1-b0)(nb, &m.Data[r*rb], &x[b0*m.Cols], m.Cols, &dc[b0*nb*8], nb*8, &j.out[b0*m.Rows+r],
				m.Rows*4)
		}
	}
}
