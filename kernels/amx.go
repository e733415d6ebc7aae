package kernels

import (
	"encoding/binary"
	"unsafe"

	"github.com/bestofn/bestofn/weights"
)

// AMX. On ISAAMX, batches of at least amxMinBatch rows (prefill) of interleaved Q8_0 and Q4_0 matrices that
// keep their file layout (Matrix.File) run on the tile unit: per panel of 16 weight rows, per tile of 16
// activation rows, per 32-value block, one TDPBSSD multiplies a 16 x 32 int8 tile of the block's weight
// quants (read in place from the file's blocks for Q8_0, from an unpacked copy of the panel for Q4_0, values
// nibble-8) by an 8 x 64 tile of activation quants (four bytes of each of the 16 rows per tile row, packed by
// packAMX) into 16 x 16 exact int32 sums, which AVX-512 scales by the blocks' weight and activation scales
// into float sums (see internal/asmgen/amx.go). The rows past the last whole panel go through the VNNI
// kernels.
const (
	// amxPanel is the number of weight rows (and activation rows) of a tile.
	amxPanel = 16
	// amxMinBatch is the smallest batch MatMul runs on AMX; smaller ones use the VNNI kernels (a tile of 16
	// activation rows costs the same at any fill).
	amxMinBatch = 8
	// Offsets in an AMX scratch area (the generator's amxCBuf, amxScales).
	amxCBuf   = 64
	amxScales = 64 + 2048
	// amxBTile is the size of one block's activation tile.
	amxBTile = 512
)

// amxScratch is a worker's scratch area for the AMX kernels, 64-byte aligned: tile configuration, C buffers,
// the panel's weight scales and, for Q4_0, its unpacked quants.
type amxScratch struct {
	buf, s []byte
}

// get returns the scratch for a panel of nb blocks, with the tile configuration written.
func (a *amxScratch) get(nb int) []byte {
	n := amxScales + 64*nb + amxPanel*nb*32
	if len(a.s) < n {
		a.buf = make([]byte, n+64)
		off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(a.buf))) & 63)
		a.s = a.buf[off : off+n]
		cfg := a.s[:64]
		cfg[0] = 1 // palette 1
		for _, t := range []struct{ tmm, colsb, rows int }{{0, 32, 16}, {1, 64, 8}, {2, 64, 16}, {3, 32, 16}, {4, 64, 8}, {5, 64, 16}} {
			binary.LittleEndian.PutUint16(cfg[16+2*t.tmm:], uint16(t.colsb))
			cfg[48+t.tmm] = byte(t.rows)
		}
	}
	return a.s
}

// packAMX packs the quantized activations (s.q, s.d: batch rows of cols values) into tiles of 16 rows for
// the AMX kernels: for tile t and block k, at amxB[(t*nb+k)*512:], row i of the tile holds bytes 4i..4i+3
// of block k of activation rows 16t..16t+15 in turn, and amxDx[(t*nb+k)*16:] their 16 scales; rows past the
// batch are zero.
func (s *scratch) packAMX(p *Pool, batch, cols int) {
	nb := cols / 32
	tiles := (batch + amxPanel - 1) / amxPanel
	s.amxB = grow(s.amxB, tiles*nb*amxBTile)
	s.amxDx = grow(s.amxDx, tiles*nb*amxPanel)
	s.pack.batch, s.pack.cols = batch, cols
	p.Run(tiles*nb, max(1, (16<<10)/amxBTile), &s.pack) // chunks of tile blocks
}

// amxPack is the Task of packAMX over (tile, block) pairs.
type amxPack struct {
	s           *scratch
	batch, cols int
}

func (a *amxPack) Run(lo, hi, _ int) {
	s := a.s
	nb := a.cols / 32
	qb := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.q))), len(s.q))
	for tk := lo; tk < hi; tk++ {
		t, k := tk/nb, tk%nb
		dst := s.amxB[tk*amxBTile : (tk+1)*amxBTile]
		dx := s.amxDx[tk*amxPanel : (tk+1)*amxPanel]
		for n := range amxPanel {
			row := t*amxPanel + n
			if row >= a.batch {
				for i := range 8 {
					binary.LittleEndian.PutUint32(dst[64*i+4*n:], 0)
				}
				dx[n] = 0
				continue
			}
			src := qb[row*a.cols+32*k : row*a.cols+32*k+32]
			for i := range 8 {
				binary.LittleEndian.PutUint32(dst[64*i+4*n:], binary.LittleEndian.Uint32(src[4*i:]))
			}
			dx[n] = s.d[row*nb+k]
		}
	}
}

// runAMX computes output rows [lo, hi) (lo a multiple of amxPanel) for the whole batch: whole panels on the
// tile unit, the rows past the last one with the VNNI kernels.
func (j *matJob) runAMX(lo, hi, worker int) {
	m := j.m
	nb, rb := m.Cols/32, j.rowBytes
	tiles := (j.batch + amxPanel - 1) / amxPanel
	full := lo + (hi-lo)/amxPanel*amxPanel
	if full > lo {
		sc := j.p.amxScratch(worker).get(nb)
		for r0 := lo; r0 < full; r0 += amxPanel {
			w := m.File[r0*rb:]
			a, astride, ablock := &w[2], rb, 34
			if m.Type == weights.TypeQ4_0 {
				amxPrepQ4_0(nb, &w[0], rb, &sc[0])
				a, astride, ablock = &sc[amxScales+64*nb], nb*32, 32
			} else {
				amxPrepQ8_0(nb, &w[0], rb, &sc[0])
			}
			for t := range tiles {
				amxTile(nb, a, astride, ablock, &j.q.amxB[t*nb*amxBTile], &j.q.amxDx[t*nb*amxPanel],
					&j.out[t*amxPanel*m.Rows+r0], m.Rows*4, min(amxPanel, j.batch-t*amxPanel), &sc[0])
			}
		}
	}
	if full < hi && j.panels {
		j.runPanels(full, hi)
	} else if full < hi {
		j.runVNNI(full, hi)
	}
}
