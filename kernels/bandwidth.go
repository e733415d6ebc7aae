package kernels

import (
	"encoding/binary"
	"time"
)

// ReadBandwidth reads buf once, split across p's threads in chunks of 1 MiB, and returns the bytes read per
// second: the memory bandwidth a MatMul streaming weights can hope for, when buf is much larger than the
// last-level cache (with a smaller buffer it measures the cache). It uses the AVX2 loads when the pool runs
// assembly kernels. buf's contents do not matter; touch its pages once before timing, so that page faults
// are not counted. The reads prefetch ahead as the VNNI kernels do, the fastest way found to read memory.
func (p *Pool) ReadBandwidth(buf []byte) float64 {
	n := len(buf) &^ (bandwidthChunk - 1)
	if n == 0 {
		return 0
	}
	t := &streamTask{buf: buf[:n], asm: p.asm}
	t0 := time.Now()
	p.Run(n/bandwidthChunk, 1, t)
	return float64(n) / time.Since(t0).Seconds()
}

// bandwidthChunk is the unit of work of ReadBandwidth.
const bandwidthChunk = 1 << 20

// streamTask reads chunks of buf; sink keeps the reads from being optimized away.
type streamTask struct {
	buf  []byte
	asm  bool
	sink [64]uint64 // one slot per worker, 8 bytes apart (false sharing is rare: each worker writes once per MiB)
}

func (s *streamTask) Run(lo, hi, worker int) {
	c := s.buf[lo*bandwidthChunk : hi*bandwidthChunk]
	var v uint64
	if s.asm {
		v = streamReadASM(&c[0], len(c))
	} else {
		for i := 0; i+8 <= len(c); i += 8 {
			v ^= binary.LittleEndian.Uint64(c[i:])
		}
	}
	s.sink[worker%len(s.sink)] ^= v
}
