package kernels

import (
	"fmt"

	"github.com/bestofn/bestofn/weights"
)

// Matrix is a weight matrix in its file format: Rows rows of Cols values of Type, row r at
// Data[r*RowBytes():]. It matches a weights.Tensor of Shape [Cols, Rows].
type Matrix struct {
	Type       weights.Type
	Rows, Cols int
	Data       []byte
	// Interleaved marks Q8_0 or Q4_0 data in the interleaved layout of Interleave rather than the file's.
	Interleaved bool
	// Biased marks interleaved Q8_0 data whose quants are stored as q+128 (unsigned bytes), the form the
	// VNNI kernels multiply (see Interleave).
	Biased bool
	// Panels marks interleaved Q4_0 or Q8_0 (biased) data in the panel layout of Interleave for the AVX-512
	// ISAs (16 rows side by side, block by block) rather than in groups of 8 blocks per row.
	Panels bool
	// File, when set on an interleaved matrix, holds the same rows in the file's layout (Interleave for
	// ISAAMX keeps its source there, usually a checkpoint's mapping): the AMX kernels read it for large
	// batches. MatMul never writes it.
	File []byte
}

// RowBytes returns the size of one row in bytes, or 0 when Type is unknown or Cols is not a whole number of
// blocks (Validate says which).
func (m Matrix) RowBytes() int {
	n, err := m.Type.RowBytes(m.Cols)
	if err != nil {
		return 0
	}
	return n
}

// Validate reports whether MatMul can use m: a supported type, positive dimensions, Cols a whole number of
// blocks and Data holding all rows. Call it once when loading weights; MatMul trusts a valid Matrix.
func (m Matrix) Validate() error {
	if !Supported(m.Type) {
		return fmt.Errorf("kernels: matmul does not support type %v", m.Type)
	}
	if m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("kernels: bad matrix shape %dx%d", m.Rows, m.Cols)
	}
	rb, err := m.Type.RowBytes(m.Cols)
	if err != nil {
		return fmt.Errorf("kernels: %d columns: %w", m.Cols, err)
	}
	if m.Interleaved && !interleavable(m.Type, m.Cols) {
		return fmt.Errorf("kernels: interleaved %v matrix of %d columns: only Q8_0 or Q4_0 with a multiple of %d columns",
			m.Type, m.Cols, groupValues)
	}
	if m.File != nil && (!m.Interleaved || len(m.File) < m.Rows*rb) {
		return fmt.Errorf("kernels: a %v matrix with a file copy must be interleaved and the copy hold %d rows of %d bytes (has %d bytes)",
			m.Type, m.Rows, rb, len(m.File))
	}
	if m.Biased && (!m.Interleaved || m.Type != weights.TypeQ8_0) {
		return fmt.Errorf("kernels: biased %v matrix (interleaved %v): only interleaved Q8_0 is biased", m.Type, m.Interleaved)
	}
	if m.Panels && (!m.Interleaved || m.Rows%panelRows != 0 || m.Type == weights.TypeQ8_0 && !m.Biased) {
		return fmt.Errorf("kernels: %v matrix of %d rows in the panel layout (interleaved %v, biased %v): only interleaved Q4_0 or biased Q8_0 with a multiple of %d rows",
			m.Type, m.Rows, m.Interleaved, m.Biased, panelRows)
	}
	if m.Rows > len(m.Data)/rb {
		return fmt.Errorf("kernels: %v matrix %dx%d needs %d rows of %d bytes, data has %d bytes",
			m.Type, m.Rows, m.Cols, m.Rows, rb, len(m.Data))
	}
	return nil
}

// Supported reports whether MatMul handles weights of type t.
func Supported(t weights.Type) bool {
	switch t {
	case weights.TypeF32, weights.TypeF16, weights.TypeBF16, weights.TypeQ8_0, weights.TypeQ4_0,
		weights.TypeQ4_1, weights.TypeQ5_0, weights.TypeQ5_1, weights.TypeQ4_K, weights.TypeQ5_K,
		weights.TypeQ6_K, weights.TypeQ8_K:
		return true
	}
	return false
}

// MatMul computes out[b*m.Rows+r] = dot(row r of m, x[b*m.Cols:(b+1)*m.Cols]) for b < batch, splitting rows
// across the pool's threads. Each weight row is loaded once and dotted with up to tileBatch activation rows
// while it is in cache, so a batch of 5 costs little more than 1 when memory-bound.
//
// For integer weight types the activations are first quantized (once per call, into a buffer the Pool owns)
// to 8 bits per value: blocks of 32 with a float scale for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights, blocks of
// 256 for the K-quants, as llama.cpp does. Results then differ from a float dot product by that quantization
// (about 0.4% of the block's largest activation per value). Float weight types use x as is.
//
// m must be valid (see Validate), len(out) >= batch*m.Rows and len(x) >= batch*m.Cols; MatMul panics
// otherwise, as slice indexing does. MatMul allocates nothing once the Pool's buffer has grown to the largest
// batch*Cols seen. Not safe for concurrent use on one Pool.
func (p *Pool) MatMul(out []float32, m Matrix, x []float32, batch int) {
	if batch <= 0 {
		return
	}
	rb := m.RowBytes()
	if rb == 0 || !Supported(m.Type) || m.Rows <= 0 || m.Rows > len(m.Data)/rb {
		panic(fmt.Sprintf("kernels: matmul on invalid %v matrix %dx%d with %d bytes", m.Type, m.Rows, m.Cols, len(m.Data)))
	}
	if len(out) < batch*m.Rows || len(x) < batch*m.Cols {
		panic(fmt.Sprintf("kernels: matmul %dx%d batch %d: out has %d values, x has %d", m.Rows, m.Cols, batch, len(out), len(x)))
	}
	j := &p.mat
	j.out, j.m, j.rowBytes, j.x, j.batch = out, m, rb, x, batch
	j.asm, j.isa = p.asm, p.isa
	j.panels = m.Panels
	j.vnni = m.Interleaved && !m.Panels && p.isa.vnni() && (m.Type == weights.TypeQ4_0 || m.Biased)
	var panelC int32
	if m.Panels {
		panelC = weightOffset(m.Type)
	}
	j.amx = (j.vnni || j.panels && p.isa.avx512()) && p.isa == ISAAMX && batch >= amxMinBatch && m.File != nil &&
		m.Rows >= amxPanel && m.Cols%64 == 0
	switch m.Type {
	case weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ4_1, weights.TypeQ5_0, weights.TypeQ5_1:
		p.quant.quantizeQ8_0(p, x[:batch*m.Cols], m.Cols, m.Interleaved && !m.Panels, j.vnniCorrection(), panelC)
		if j.amx {
			p.quant.packAMX(p, batch, m.Cols)
		}
	case weights.TypeQ4_K, weights.TypeQ5_K, weights.TypeQ6_K, weights.TypeQ8_K:
		p.quant.quantizeQ8_K(p, x[:batch*m.Cols])
	}
	j.q = &p.quant
	// Grains of rows: enough chunks to balance threads, at least ~64 KiB of weights each so that waking a
	// worker (a few microseconds) pays off; smaller matrices run on the caller's goroutine.
	grain := max(64<<10/rb, m.Rows/(8*p.threads), 1)
	// Column chunks for float weights in batches of several tiles (prefill): keep a tile of float32 activation
	// rows within ~24 KiB of L1 while the rows of a grain stream past it, and the grain within L2 (~128 KiB)
	// so that its other column chunks are still there. A batch of one tile (decode, best of 5) reads each
	// weight once: chunking its rows into 2 KiB pieces only breaks the stream the prefetchers follow (F16 1.1B
	// step at batch 5, BenchmarkBatchRatio on a Zen 4: 5.6-5.9 steps/s unchunked against 3.8-4.1). Quantized
	// activations (1 byte per value) need no chunking.
	j.kc = m.Cols
	if !p.quant.active && batch > tileBatch && tileBatch*m.Cols*4 > 24<<10 {
		j.kc = 1024
		grain = max(1, min(grain, (128<<10)/rb))
	}
	// When the batch spans several tiles, each tile re-reads the grain's weights: keep a grain within L2.
	if batch > tileBatch || (j.vnni && batch > vnniNR) {
		grain = max(1, min(grain, (256<<10)/rb))
	}
	if j.amx {
		grain = (grain + amxPanel - 1) &^ (amxPanel - 1) // whole panels of 16 rows
	}
	if j.panels {
		grain = (grain + 2*panelRows - 1) &^ (2*panelRows - 1) // whole pairs of panels
	}
	p.Run(m.Rows, grain, j)
	j.out, j.x, j.m.Data, j.q = nil, nil, nil, nil
	p.quant.active = false
}

// tileBatch is the number of activation rows dotted with one weight row at a time.
const tileBatch = 5

// matJob is the Task of one MatMul call.
type matJob struct {
	p        *Pool
	out      []float32
	m        Matrix
	rowBytes int
	x        []float32
	batch    int
	kc       int  // columns per chunk (float types), a multiple of 32 or all columns
	asm      bool // the AVX2 kernels run (every ISA from ISAAVX2 up)
	isa      ISA
	vnni     bool // interleaved Q8_0 (biased) or Q4_0 weights on a VNNI ISA: runVNNI's tiles
	panels   bool // Q4_0 or Q8_0 weights in the panel layout: runPanels
	amx      bool // and a batch for the AMX kernels (runAMX), with vnni for the rows past the last panel
	q        *scratch
}

// Run computes output rows [lo, hi) for the whole batch: for each tile of activation rows, for each column
// chunk, for each weight row of the grain, so the tile stays in L1 and the grain's weights in L2.
func (j *matJob) Run(lo, hi, worker int) {
	if j.amx {
		j.runAMX(lo, hi, worker)
		return
	}
	if j.panels {
		j.runPanels(lo, hi)
		return
	}
	if j.vnni {
		j.runVNNI(lo, hi)
		return
	}
	if j.batch == 1 && j.asm && j.rowsASM(lo, hi) {
		return
	}
	var res [tileBatch]float32
	rows := j.m.Rows
	for b := 0; b < j.batch; b += tileBatch {
		t := min(tileBatch, j.batch-b)
		if j.kc == j.m.Cols {
			for r := lo; r < hi; r++ {
				w := j.m.Data[r*j.rowBytes : (r+1)*j.rowBytes]
				j.tile(w, b, t, 0, j.m.Cols, &res)
				for k := range t {
					j.out[(b+k)*rows+r] = res[k]
				}
			}
			continue
		}
		es := j.rowBytes / j.m.Cols // bytes per value of a float type
		for c0 := 0; c0 < j.m.Cols; c0 += j.kc {
			c1 := min(c0+j.kc, j.m.Cols)
			for r := lo; r < hi; r++ {
				w := j.m.Data[r*j.rowBytes+c0*es : r*j.rowBytes+c1*es]
				j.tile(w, b, t, c0, c1, &res)
				for k := range t {
					if c0 == 0 {
						j.out[(b+k)*rows+r] = res[k]
					} else {
						j.out[(b+k)*rows+r] += res[k]
					}
				}
			}
		}
	}
}

// tile computes res[k] = dot(w, activation row b+k) for k < t. For float types w holds columns [c0, c1)
// of a row; quantized types always get whole rows.
func (j *matJob) tile(w []byte, b, t, c0, c1 int, res *[tileBatch]float32) {
	if j.asm && j.tileASM(w, b, t, c0, c1, res) {
		return
	}
	cols := j.m.Cols
	switch j.m.Type {
	case weights.TypeF32, weights.TypeF16, weights.TypeBF16:
		for k := range t {
			x := j.x[(b+k)*cols+c0 : (b+k)*cols+c1]
			switch j.m.Type {
			case weights.TypeF32:
				res[k] = dotF32Bytes(w, x)
			case weights.TypeF16:
				res[k] = dotF16(w, x)
			default:
				res[k] = dotBF16(w, x)
			}
		}
		return
	}
	q := j.q
	nb := cols / j.m.Type.BlockSize()
	if j.m.Interleaved {
		for k := range t {
			row := b + k
			xq, xd := q.qi[row*cols:(row+1)*cols], q.d[row*nb:(row+1)*nb]
			if j.m.Type == weights.TypeQ4_0 {
				res[k] = dotQ4_0I(w, xq, xd, q.s[row*nb:(row+1)*nb], nb/groupBlocks)
			} else {
				res[k] = dotQ8_0I(w, xq, xd, nb/groupBlocks, j.m.Biased)
			}
		}
		return
	}
	for k := range t {
		row := b + k
		var v float32
		switch j.m.Type {
		case weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ4_1, weights.TypeQ5_0, weights.TypeQ5_1:
			xq := q.q[row*cols : (row+1)*cols]
			xd, xs := q.d[row*nb:(row+1)*nb], q.s[row*nb:(row+1)*nb]
			switch j.m.Type {
			case weights.TypeQ8_0:
				v = dotQ8_0(w, xq, xd, nb)
			case weights.TypeQ4_0:
				v = dotQ4_0(w, xq, xd, nb)
			case weights.TypeQ4_1:
				v = dotQ4_1(w, xq, xd, xs, nb)
			case weights.TypeQ5_0:
				v = dotQ5_0(w, xq, xd, nb)
			case weights.TypeQ5_1:
				v = dotQ5_1(w, xq, xd, xs, nb)
			}
		default:
			xk := q.k[row*nb*q8KBytes : (row+1)*nb*q8KBytes]
			switch j.m.Type {
			case weights.TypeQ4_K:
				v = dotQ4_K(w, xk, nb)
			case weights.TypeQ5_K:
				v = dotQ5_K(w, xk, nb)
			case weights.TypeQ6_K:
				v = dotQ6_K(w, xk, nb)
			case weights.TypeQ8_K:
				v = dotQ8_K(w, xk, nb)
			}
		}
		res[k] = v
	}
}
