package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

var allTypes = []weights.Type{
	weights.TypeF32, weights.TypeF16, weights.TypeBF16, weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ4_1,
	weights.TypeQ5_0, weights.TypeQ5_1, weights.TypeQ4_K, weights.TypeQ5_K, weights.TypeQ6_K, weights.TypeQ8_K,
}

// randomMatrix returns a rows x cols matrix of type t with random quants and sane scales (fp16 scales around
// 0.01, as trained weights have), its data starting at an odd address offset to exercise unaligned loads.
func randomMatrix(rng *rand.Rand, t weights.Type, rows, cols int) Matrix {
	rb, err := t.RowBytes(cols)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, rows*rb+1)
	data := buf[1:]
	for i := 0; i < len(data); i += 8 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], rng.Uint64())
		copy(data[i:], b[:])
	}
	putF16 := func(b []byte, v float32) { binary.LittleEndian.PutUint16(b, weights.Float32To16(v)) }
	scale := func() float32 { return 0.002 + 0.02*rng.Float32() }
	bb := t.BlockBytes()
	for off := 0; off < len(data); off += bb {
		b := data[off : off+bb]
		switch t {
		case weights.TypeF32:
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(rng.NormFloat64())))
		case weights.TypeF16:
			putF16(b, float32(rng.NormFloat64()))
		case weights.TypeBF16:
			binary.LittleEndian.PutUint16(b, uint16(math.Float32bits(float32(rng.NormFloat64()))>>16))
		case weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ5_0:
			putF16(b, scale())
		case weights.TypeQ4_1, weights.TypeQ5_1, weights.TypeQ4_K, weights.TypeQ5_K:
			putF16(b, scale())
			putF16(b[2:], scale()*(rng.Float32()-0.5))
		case weights.TypeQ6_K:
			putF16(b[208:], scale()/8)
		case weights.TypeQ8_K:
			binary.LittleEndian.PutUint32(b, math.Float32bits(scale()))
		}
	}
	return Matrix{Type: t, Rows: rows, Cols: cols, Data: data}
}

func randomVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// reference computes out[b*rows+r] = sum dequant(w)[r][i]*x[b][i] in float64 from weights.Dequantize, and a
// bound on the error MatMul may make: the 8-bit quantization of activations (half a step, max|x_block|/254,
// per value, for integer types) plus float32 rounding (1e-5 of sum |w*x|).
func reference(t *testing.T, m Matrix, x []float32, batch int) (want, tol []float64) {
	t.Helper()
	deq := make([]float32, m.Rows*m.Cols)
	if err := weights.Dequantize(m.Type, m.Data[:m.Rows*m.RowBytes()], deq); err != nil {
		t.Fatal(err)
	}
	blk := 0
	switch m.Type {
	case weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ4_1, weights.TypeQ5_0, weights.TypeQ5_1:
		blk = 32
	case weights.TypeQ4_K, weights.TypeQ5_K, weights.TypeQ6_K, weights.TypeQ8_K:
		blk = 256
	}
	want = make([]float64, batch*m.Rows)
	tol = make([]float64, batch*m.Rows)
	for b := range batch {
		xb := x[b*m.Cols : (b+1)*m.Cols]
		step := make([]float64, m.Cols) // half a quantization step of each activation
		if blk > 0 {
			for i0 := 0; i0 < m.Cols; i0 += blk {
				var amax float64
				for _, v := range xb[i0 : i0+blk] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i := i0; i < i0+blk; i++ {
					step[i] = amax / 254
				}
			}
		}
		for r := range m.Rows {
			w := deq[r*m.Cols : (r+1)*m.Cols]
			var s, abs, qerr float64
			for i := range w {
				s += float64(w[i]) * float64(xb[i])
				abs += math.Abs(float64(w[i]) * float64(xb[i]))
				qerr += math.Abs(float64(w[i])) * step[i]
			}
			want[b*m.Rows+r] = s
			tol[b*m.Rows+r] = qerr*1.01 + 1e-5*abs + 1e-6
		}
	}
	return want, tol
}

// runMatMul calls MatMul with out and x placed at misaligned offsets inside larger buffers filled with guard
// values, and fails if anything outside out changes.
func runMatMul(t *testing.T, p *Pool, m Matrix, x []float32, batch int) []float32 {
	t.Helper()
	const guard = 3
	xbuf := make([]float32, len(x)+1)
	copy(xbuf[1:], x)
	obuf := make([]float32, batch*m.Rows+2*guard)
	sentinel := float32(math.Inf(-1))
	for i := range obuf {
		obuf[i] = sentinel
	}
	out := obuf[guard : guard+batch*m.Rows]
	p.MatMul(out, m, xbuf[1:], batch)
	for i := range guard {
		if obuf[i] != sentinel || obuf[len(obuf)-1-i] != sentinel {
			t.Fatalf("%v %dx%d batch %d: guard value overwritten", m.Type, m.Rows, m.Cols, batch)
		}
	}
	return out
}

func colsFor(typ weights.Type) []int {
	switch typ.BlockSize() {
	case 1:
		return []int{1, 7, 32, 33, 100, 172, 320, 1300, 2100}
	case 32:
		return []int{32, 64, 96, 320}
	}
	return []int{256, 768}
}

// TestMatMulReference checks every type, both the assembly and the Go path, against dequantize-then-float64.
func TestMatMulReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		defer p.Close()
		for _, typ := range allTypes {
			for _, cols := range colsFor(typ) {
				for _, rows := range []int{1, 7, 33} {
					m := randomMatrix(rng, typ, rows, cols)
					batch := 1 + rng.IntN(9)
					x := randomVec(rng, batch*cols)
					want, tol := reference(t, m, x, batch)
					for _, isa := range SupportedISAs() {
						p.setISA(isa)
						got := runMatMul(t, p, m, x, batch)
						for i := range got {
							if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol[i]) {
								t.Fatalf("%v %dx%d batch %d threads %d %v: out[%d] = %g, want %g ± %g",
									typ, rows, cols, batch, threads, isa, i, got[i], want[i], tol[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestASMMatchesGo checks the assembly of every ISA this CPU runs against the Go kernels on the same quantized
// activations, so only the float summation order differs, for every batch size 1..9 (tiles of 1..5 rows).
func TestASMMatchesGo(t *testing.T) {
	if !haveASM() {
		t.Skip("no AVX2/FMA/F16C")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	p := NewPool(2)
	defer p.Close()
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeF16, weights.TypeF32,
		weights.TypeBF16, weights.TypeQ4_K, weights.TypeQ5_K, weights.TypeQ6_K} {
		for batch := 1; batch <= 9; batch++ {
			cols := max(typ.BlockSize(), 32) * (1 + rng.IntN(12))
			rows := 1 + rng.IntN(40)
			m := randomMatrix(rng, typ, rows, cols)
			x := randomVec(rng, batch*cols)
			p.setISA(ISAGo)
			slow := runMatMul(t, p, m, x, batch)
			_, tol := reference(t, m, x, batch)
			for _, isa := range SupportedISAs() {
				if isa == ISAGo {
					continue
				}
				p.setISA(isa)
				fast := runMatMul(t, p, m, x, batch)
				for i := range slow {
					// tol includes activation quantization, which both paths share; the float rounding part is
					// what may differ, bounded well below it.
					if d := math.Abs(float64(slow[i] - fast[i])); d > 1e-5*math.Abs(float64(slow[i]))+tol[i]/100 {
						t.Fatalf("%v %dx%d batch %d: %v out[%d] = %g, go %g", typ, rows, cols, batch, isa, i, fast[i], slow[i])
					}
				}
			}
		}
	}
}

func TestDotAxpyF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		for off := range 3 {
			a := randomVec(rng, n+off)[off:]
			b := randomVec(rng, n+3)[3:]
			var want, abs float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				abs += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := DotF32(a, b); math.Abs(float64(got)-want) > 1e-5*abs+1e-6 {
				t.Errorf("DotF32 n=%d off=%d: %g, want %g", n, off, got, want)
			}
			y := randomVec(rng, n+2)
			y0 := append([]float32(nil), y...)
			AxpyF32(0.75, a, y[1:n+1])
			for i := range y {
				w := y0[i]
				if i >= 1 && i <= n {
					w = y0[i] + 0.75*a[i-1]
				}
				if math.Abs(float64(y[i]-w)) > 1e-6*(1+math.Abs(float64(w))) {
					t.Fatalf("AxpyF32 n=%d off=%d: y[%d] = %g, want %g", n, off, i, y[i], w)
				}
			}
		}
	}
}

func TestMatMulAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	p := NewPool(2)
	defer p.Close()
	for _, typ := range allTypes {
		m := randomMatrix(rng, typ, 300, 512)
		x := randomVec(rng, 5*512)
		out := make([]float32, 5*300)
		p.MatMul(out, m, x, 5)
		if n := testing.AllocsPerRun(10, func() { p.MatMul(out, m, x, 5) }); n != 0 {
			t.Errorf("%v: %v allocations per MatMul", typ, n)
		}
	}
}

type countTask struct{ hits []int32 }

func (c *countTask) Run(lo, hi, worker int) {
	for i := lo; i < hi; i++ {
		c.hits[i]++ // each index is handed to one worker only
	}
}

func TestPoolRunCoversOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 4} {
		p := NewPool(threads)
		for _, n := range []int{1, 5, 100, 1001} {
			for _, grain := range []int{0, 1, 7, 2000} {
				c := &countTask{hits: make([]int32, n)}
				p.Run(n, grain, c)
				for i, h := range c.hits {
					if h != 1 {
						t.Fatalf("threads %d n %d grain %d: item %d run %d times", threads, n, grain, i, h)
					}
				}
			}
		}
		p.Close()
		p.Close()
	}
}

func TestValidate(t *testing.T) {
	good := Matrix{Type: weights.TypeQ8_0, Rows: 2, Cols: 64, Data: make([]byte, 2*68)}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]Matrix{
		"type":  {Type: weights.Type(99), Rows: 2, Cols: 64, Data: make([]byte, 1000)},
		"cols":  {Type: weights.TypeQ8_0, Rows: 2, Cols: 60, Data: make([]byte, 1000)},
		"short": {Type: weights.TypeQ8_0, Rows: 3, Cols: 64, Data: make([]byte, 2*68)},
		"rows":  {Type: weights.TypeQ8_0, Rows: 0, Cols: 64, Data: make([]byte, 2*68)},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzMatMul compares MatMul on every ISA this CPU runs, and on each ISA's interleaved layout of Q8_0 and
// Q4_0, with the dequantize reference on random shapes.
func FuzzMatMul(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(2), uint8(3), uint64(1))
	f.Add(uint8(4), uint8(1), uint8(1), uint8(9), uint64(2))
	f.Add(uint8(1), uint8(17), uint8(7), uint8(5), uint64(3))
	f.Add(uint8(10), uint8(3), uint8(1), uint8(1), uint64(4))
	f.Add(uint8(3), uint8(13), uint8(15), uint8(11), uint64(5)) // Q8_0, 256 columns: interleaved, 2 tiles
	f.Add(uint8(4), uint8(6), uint8(7), uint8(7), uint64(6))    // Q4_0, 256 columns
	p := NewPool(2)
	defer p.Close()
	isas := SupportedISAs()
	f.Fuzz(func(t *testing.T, ti, rows, colBlocks, batch uint8, seed uint64) {
		typ := allTypes[int(ti)%len(allTypes)]
		r, b := 1+int(rows)%64, 1+int(batch)%12
		cols := (1 + int(colBlocks)%8) * typ.BlockSize()
		if typ.BlockSize() == 1 {
			cols = 1 + int(colBlocks)
		}
		rng := rand.New(rand.NewPCG(seed, 9))
		m := randomMatrix(rng, typ, r, cols)
		x := randomVec(rng, b*cols)
		want, tol := reference(t, m, x, b)
		// Every ISA this CPU runs, on the file layout and, where it applies, on each ISA's interleaved form.
		layouts := []Matrix{m}
		for _, isa := range isas {
			if interleavable(m.Type, m.Cols) {
				mi, err := Interleave(m, isa)
				if err != nil {
					t.Fatal(err)
				}
				layouts = append(layouts, mi)
			}
		}
		for _, isa := range isas {
			p.setISA(isa)
			for _, mm := range layouts {
				got := runMatMul(t, p, mm, x, b)
				for i := range got {
					if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol[i]) {
						t.Fatalf("%v %dx%d batch %d %v interleaved %v biased %v: out[%d] = %g, want %g ± %g", typ, r,
							cols, b, isa, mm.Interleaved, mm.Biased, i, got[i], want[i], tol[i])
					}
				}
			}
		}
	})
}

func ExamplePool_MatMul() {
	p := NewPool(2)
	defer p.Close()
	// A 2x3 F32 matrix [[1 2 3] [4 5 6]] times two activation rows.
	data := make([]byte, 0, 24)
	for _, v := range []float32{1, 2, 3, 4, 5, 6} {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	m := Matrix{Type: weights.TypeF32, Rows: 2, Cols: 3, Data: data}
	out := make([]float32, 4)
	p.MatMul(out, m, []float32{1, 0, 0, 1, 1, 1}, 2)
	fmt.Println(out)
	// Output: [1 4 6 15]
}

// TestMatMulPrefill checks a prompt-sized batch (many tiles, split activation quantization, reduced grains)
// against the reference.
func TestMatMulPrefill(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	p := NewPool(2)
	defer p.Close()
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0, weights.TypeQ4_K, weights.TypeQ6_K,
		weights.TypeF16, weights.TypeBF16, weights.TypeQ5_1} {
		const rows, cols, batch = 50, 1280, 37
		m := randomMatrix(rng, typ, rows, cols)
		x := randomVec(rng, batch*cols)
		want, tol := reference(t, m, x, batch)
		got := runMatMul(t, p, m, x, batch)
		for i := range got {
			if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol[i]) {
				t.Fatalf("%v batch %d: out[%d] = %g, want %g ± %g", typ, batch, i, got[i], want[i], tol[i])
			}
		}
	}
}

// TestRowsF32 checks DotRowsF32 and AxpyRowsF32 against float64 loops, for lengths on and off the assembly
// path, with guard values after the outputs and rows padded apart.
func TestRowsF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, n := range []int{8, 32, 64, 96, 128, 100} {
		for _, rows := range []int{1, 3, 17} {
			stride := n + 5
			a := randomVec(rng, (rows-1)*stride+n)
			x := randomVec(rng, n)
			out := make([]float32, rows+1)
			out[rows] = 42
			DotRowsF32(out[:rows], a, stride, x)
			for i := range rows {
				var want, abs float64
				for j := range n {
					want += float64(a[i*stride+j]) * float64(x[j])
					abs += math.Abs(float64(a[i*stride+j]) * float64(x[j]))
				}
				if math.Abs(float64(out[i])-want) > 1e-5*abs+1e-6 {
					t.Fatalf("DotRowsF32 n=%d rows=%d: out[%d] = %g, want %g", n, rows, i, out[i], want)
				}
			}
			if out[rows] != 42 {
				t.Fatalf("DotRowsF32 n=%d rows=%d wrote past out", n, rows)
			}
			w := randomVec(rng, rows)
			y := randomVec(rng, n+1)
			y0 := append([]float32(nil), y...)
			AxpyRowsF32(y[:n], a, stride, w)
			for j := range n {
				want, abs := float64(y0[j]), math.Abs(float64(y0[j]))
				for i := range rows {
					want += float64(w[i]) * float64(a[i*stride+j])
					abs += math.Abs(float64(w[i]) * float64(a[i*stride+j]))
				}
				if math.Abs(float64(y[j])-want) > 1e-5*abs+1e-6 {
					t.Fatalf("AxpyRowsF32 n=%d rows=%d: y[%d] = %g, want %g", n, rows, j, y[j], want)
				}
			}
			if y[n] != y0[n] {
				t.Fatalf("AxpyRowsF32 n=%d rows=%d wrote past y", n, rows)
			}
		}
	}
}

// TestQuantQ8_0ASM checks the assembly activation quantizer byte for byte against quantizeBlock, on random
// blocks and on edge cases: all zeros, values landing exactly on .5 steps, signed zeros, one large value.
func TestQuantQ8_0ASM(t *testing.T) {
	if !haveASM() {
		t.Skip("no AVX2/FMA/F16C")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	const nb = 64
	x := make([]float32, nb*32)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * float32(math.Exp(4*rng.Float64()-2))
	}
	for j := range 32 {
		x[j] = 0                                 // block 0: zeros (d = 0)
		x[32+j] = float32(j-16) + 0.5            // block 1: halves, max 15.5
		x[64+j] = float32(math.Copysign(0, -1))  // block 2: negative zeros
		x[96+j] = float32(j) * 1e-3              // block 3: one large value below
		x[128+j] = -float32(j%3) * 127 / 254 * 2 // block 4: exact .5 steps after scaling
	}
	x[96+7] = -1e6
	q := make([]int8, len(x))
	d := make([]float32, nb)
	s := make([]float32, nb)
	quantQ8_0ASM(&x[0], &q[0], &d[0], &s[0], nb)
	wantQ := make([]int8, 32)
	for i := range nb {
		wd, sum := quantizeBlock(x[i*32:i*32+32], wantQ)
		if math.Float32bits(d[i]) != math.Float32bits(wd) || s[i] != wd*float32(sum) {
			t.Fatalf("block %d: asm d=%g s=%g, go d=%g s=%g", i, d[i], s[i], wd, wd*float32(sum))
		}
		for j := range 32 {
			if q[i*32+j] != wantQ[j] {
				t.Fatalf("block %d value %d (x=%g): asm q=%d, go q=%d", i, j, x[i*32+j], q[i*32+j], wantQ[j])
			}
		}
	}
}

// TestPackRecordsASM checks packRecordsASM against the Go packRecords byte for byte: quants at the extremes
// (+-127) and random, both corrections (8 for Q4_0, 128 for biased Q8_0), groups from an offset, and nothing
// written past the last record.
func TestPackRecordsASM(t *testing.T) {
	if !haveASM() {
		t.Skip("no AVX2/FMA/F16C")
	}
	rng := rand.New(rand.NewPCG(33, 34))
	const groups, g0 = 7, 2
	q := make([]int8, groups*groupValues)
	for i := range q {
		q[i] = int8(rng.IntN(255) - 127)
	}
	for i := range groupValues {
		q[g0*groupValues+i] = 127 // a group of largest sums
		q[(g0+1)*groupValues+i] = -127
	}
	d := make([]float32, groups*groupBlocks)
	for i := range d {
		d[i] = float32(rng.ExpFloat64())
	}
	for _, c := range []int32{8, 128} {
		want := make([]byte, (groups+1)*vnniRecordBytes)
		got := make([]byte, len(want))
		for i := range got {
			got[i], want[i] = 0xa5, 0xa5
		}
		packRecords(want, q, d, g0, groups, c)
		packRecordsASM(&got[g0*vnniRecordBytes], &q[g0*groupValues], &d[g0*groupBlocks], groups-g0, c)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("c=%d: byte %d (group %d, offset %d): asm %#x, go %#x", c, i, i/vnniRecordBytes, i%vnniRecordBytes, got[i], want[i])
			}
		}
	}
}

// TestReadBandwidth checks the bandwidth probe's assembly against the Go fold of the same buffer and that
// ReadBandwidth reports a positive rate on every ISA (0 for a buffer under one chunk).
func TestReadBandwidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	buf := make([]byte, 3*bandwidthChunk+100)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	var want uint64
	for i := 0; i+8 <= bandwidthChunk; i += 8 {
		want ^= binary.LittleEndian.Uint64(buf[i:])
	}
	if haveASM() {
		if got := streamReadASM(&buf[0], bandwidthChunk); got != want {
			t.Fatalf("streamReadASM = %#x, want %#x", got, want)
		}
	}
	for _, isa := range SupportedISAs() {
		p, err := NewPoolISA(2, isa)
		if err != nil {
			t.Fatal(err)
		}
		if bw := p.ReadBandwidth(buf); !(bw > 0) {
			t.Errorf("%v: ReadBandwidth = %g", isa, bw)
		}
		if bw := p.ReadBandwidth(buf[:100]); bw != 0 {
			t.Errorf("%v: ReadBandwidth of 100 bytes = %g, want 0", isa, bw)
		}
		p.Close()
	}
}
