package kernels

import (
	"encoding/binary"
	"math"
)

// scratch holds a batch of activations quantized to 8 bits.
//
// For 32-value blocks (Q8_0): q row b at q[b*cols:], one scale per block in d (row b at d[b*blocks:]), and in s
// d*sum(q) per block, used by the weight types with an offset (Q4_1, Q5_1).
//
// For 256-value blocks: k holds ggml's block_q8_K records of 292 bytes (float32 d at 0, int8 q[256] at 4,
// int16 sums of each 16 values at 260), row b at k[b*blocks*292:].
type scratch struct {
	q        []int8
	d        []float32
	s        []float32
	qi       []int8    // q in the interleaved order of Interleave, when the matrix is interleaved
	ci       []int16   // with qi: the offset vectors of the interleaved Q4_0 kernels (offsetQ4_0I), 16 per group
	dT       []float32 // the scales of d block-major: block i of row b at dT[i*dTStride+b]
	sT       []float32 // s block-major, like dT
	dTStride int
	k        []byte
	rec      []byte    // VNNI activation records (see vnniRecord), 64-byte aligned, when vnniC != 0
	dc       []uint32  // for the panel kernels: per block, d's bits and the correction -panelC*sum(q) as int32
	panelC   int32     // the weight offset dc's corrections undo (8: Q4_0, 128: Q8_0), or 0: no dc
	recBuf   []byte    // rec's allocation
	vnniC    int32     // the weight offset the records' corrections undo (128: biased Q8_0, 8: Q4_0), or 0
	amxB     []byte    // activation tiles of the AMX kernels (packAMX)
	amxDx    []float32 // their scales
	pack     amxPack   // packAMX's task
	active   bool      // holds the activations of the MatMul in progress

	x      []float32 // the activations being quantized
	blockK bool      // quantizing into Q8_K records rather than Q8_0 blocks
	inter  bool      // also fill qi
	asm    bool      // quantize Q8_0 blocks with quantQ8_0ASM
}

// Offsets in a Q8_K record.
const (
	q8KBytes = 292
	q8KQs    = 4
	q8KSums  = 260
)

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// roundInt rounds v to the nearest integer, halves away from zero.
func roundInt(v float32) int32 {
	if v >= 0 {
		return int32(v + 0.5)
	}
	return int32(v - 0.5)
}

// quantizeQ8_0 quantizes x (rows of cols values, cols a multiple of 32) in blocks of 32: d = max|x|/127,
// q = round(x/d), split across p's threads. With vnniC != 0 (cols a multiple of 256) it packs the result into
// the VNNI kernels' activation records, with corrections -vnniC*sum(q); else with interleaved (cols a
// multiple of 256) it also fills qi for interleaved weights, which read the scales from d; otherwise, with
// several rows, it fills dT and sT, padded so that 8 floats can be read from any row. With panelC != 0 it
// also fills dc for the panel kernels, with corrections -panelC*sum(q).
func (s *scratch) quantizeQ8_0(p *Pool, x []float32, cols int, interleaved bool, vnniC, panelC int32) {
	n := len(x)
	s.q = grow(s.q, n)
	s.d = grow(s.d, n/32)
	s.s = grow(s.s, n/32)
	s.vnniC, s.panelC = vnniC, panelC
	panels := panelC != 0
	if panels {
		s.dc = grow(s.dc, n/16)
	}
	if vnniC != 0 {
		s.growRecords(n / groupValues)
		interleaved = false
	}
	if interleaved {
		s.qi = grow(s.qi, n)
		s.ci = grow(s.ci, n/16)
	}
	s.active, s.x, s.blockK, s.asm, s.inter = true, x, false, p.asm, interleaved
	p.Run(n/32, quantGrain/32, s) // quantGrain/32 is a whole number of groups, so each chunk interleaves its own
	s.x = nil
	rows, nb := n/cols, cols/32
	if rows == 1 || interleaved || vnniC != 0 || panels {
		return
	}
	s.dTStride = rows + 8
	s.dT = grow(s.dT, nb*s.dTStride)
	s.sT = grow(s.sT, nb*s.dTStride)
	for b := range rows {
		for i := range nb {
			s.dT[i*s.dTStride+b] = s.d[b*nb+i]
			s.sT[i*s.dTStride+b] = s.s[b*nb+i]
		}
	}
}

// quantizeQ8_K quantizes x in blocks of 256 with one scale each into Q8_K records, split across p's threads.
func (s *scratch) quantizeQ8_K(p *Pool, x []float32) {
	n := len(x)
	s.k = grow(s.k, n/256*q8KBytes)
	s.active, s.x, s.blockK = true, x, true
	p.Run(n/256, quantGrain/256, s)
	s.x = nil
}

// quantGrain is the number of values one thread quantizes at a time.
const quantGrain = 16 << 10

// Run quantizes blocks [lo, hi) of s.x (the Task of quantizeQ8_0 and quantizeQ8_K).
func (s *scratch) Run(lo, hi, _ int) {
	if !s.blockK {
		if s.asm && hi > lo {
			quantQ8_0ASM(&s.x[lo*32], &s.q[lo*32], &s.d[lo], &s.s[lo], hi-lo)
		} else {
			for i := lo; i < hi; i++ {
				d, sum := quantizeBlock(s.x[i*32:i*32+32], s.q[i*32:i*32+32])
				s.d[i] = d
				s.s[i] = d * float32(sum)
			}
		}
		if s.inter {
			interleaveActs(s.qi, s.q, lo/groupBlocks, hi/groupBlocks)
			offsetQ4_0I(s.ci, s.qi, lo/groupBlocks, hi/groupBlocks)
		}
		if g0, g1 := lo/groupBlocks, hi/groupBlocks; s.vnniC != 0 && s.asm && g1 > g0 {
			packRecordsASM(&s.rec[g0*vnniRecordBytes], &s.q[g0*groupValues], &s.d[g0*groupBlocks], g1-g0, s.vnniC)
		} else if s.vnniC != 0 {
			packRecords(s.rec, s.q, s.d, g0, g1, s.vnniC)
		}
		if s.panelC != 0 {
			packPanelScales(s.dc, s.q, s.d, s.s, lo, hi, s.panelC)
		}
		return
	}
	var q [256]int8
	for i := lo; i < hi; i++ {
		rec := s.k[i*q8KBytes : (i+1)*q8KBytes]
		d, _ := quantizeBlock(s.x[i*256:i*256+256], q[:])
		binary.LittleEndian.PutUint32(rec, math.Float32bits(d))
		for j, v := range q {
			rec[q8KQs+j] = byte(v)
		}
		for g := range 16 {
			var sum int16
			for _, v := range q[g*16 : g*16+16] {
				sum += int16(v)
			}
			binary.LittleEndian.PutUint16(rec[q8KSums+2*g:], uint16(sum))
		}
	}
}

// quantizeBlock sets q[i] = round(x[i]/d) with d = max|x|/127 and returns d and the sum of q.
func quantizeBlock(x []float32, q []int8) (float32, int32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, v, -v)
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	var sum int32
	for i, v := range x {
		r := min(max(roundInt(v*id), -127), 127)
		q[i] = int8(r)
		sum += r
	}
	return d, sum
}
