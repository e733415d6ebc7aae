package kernels

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/bestofn/bestofn/weights"
)

// Interleaved layouts. A row of Q8_0 or Q4_0 weights is stored in groups of 8 blocks (256 values): the 8
// blocks' fp16 scales (16 bytes), then runs of 32 bytes holding 4 bytes of block 0, then 4 of block 1, ...,
// block 7. Q8_0 has 8 runs, run v holding values 4v..4v+3 of each block (272 bytes a group); Q4_0 has 4 runs,
// run v holding quant bytes 4v..4v+3 of each block, whose low nibbles are values 4v..4v+3 and high nibbles
// values 16+4v..16+4v+3 (144 bytes a group). The bytes and the row size are those of the file's layout, only
// their order differs.
//
// Activations are quantized to 8 bits and interleaved like Q8_0 weights. A 32-byte multiply-add of a weight run
// and an activation run then leaves in 32-bit lane j a partial dot product of block j alone, so the integer
// sums of 8 blocks build up side by side and are scaled once per group by the vector of their 8 scale
// products. The file layout instead needs a conversion, a scale broadcast and an FMA per block and activation
// row, which makes a batch of 5 rows (best-of-5 decode) compute-bound on AVX2 (see BenchmarkQ8_0TileHot).
const (
	groupBlocks = 8
	groupValues = groupBlocks * 32
)

// groupBytes returns the size of a group of 8 blocks of t (Q8_0 or Q4_0).
func groupBytes(t weights.Type) int {
	if t == weights.TypeQ4_0 {
		return groupBlocks * 18
	}
	return groupBlocks * 34
}

// interleavable reports whether a matrix of type t and cols columns has an interleaved layout.
func interleavable(t weights.Type, cols int) bool {
	return (t == weights.TypeQ8_0 || t == weights.TypeQ4_0) && cols%groupValues == 0
}

// InterleaveWorthwhile reports whether Interleave applies to m (Q8_0 or Q4_0, not interleaved yet, a multiple
// of 256 columns) and pays off with the kernels of isa (ISAAuto: this CPU's best): every assembly ISA reads
// the interleaved layout faster for batches of several rows, and as fast for one.
func InterleaveWorthwhile(m Matrix, isa ISA) bool {
	isa = isa.resolve()
	return isa != ISAGo && isa.Supported() && !m.Interleaved && interleavable(m.Type, m.Cols)
}

// Interleave returns a copy of m (Q8_0 or Q4_0, Cols a multiple of 256) in the interleaved layout, the form
// the kernels of isa (ISAAuto: this CPU's best) read fastest: for the VNNI ISAs, Q8_0 quants are also biased
// to unsigned bytes (q+128, Matrix.Biased), which VPDPBUSD multiplies with signed activations in one
// instruction; for the AVX-512 ISAs, on the CPUs where LayoutAuto chooses panels, Q8_0 and Q4_0 matrices of a
// multiple of 16 rows go into the panel layout of panels.go instead of groups (Matrix.Panels). The copy lives
// on the heap: it is as large as m's data. For ISAAMX the result also keeps m's data as its File, which the
// AMX kernels read for large batches: it must stay valid and unchanged (a checkpoint's mapping does). Every
// ISA computes MatMul on either form (the ISAs without a kernel for one fall back to the Go loops), so the
// choice is about speed only.
func Interleave(m Matrix, isa ISA) (Matrix, error) { return InterleaveLayout(m, isa, LayoutAuto) }

// InterleaveLayout is Interleave with the layout of the AVX-512 ISAs chosen: LayoutPanels or LayoutGroups
// force one (to compare them on one CPU), LayoutAuto is Interleave's choice.
func InterleaveLayout(m Matrix, isa ISA, layout Layout) (Matrix, error) {
	if err := m.Validate(); err != nil {
		return Matrix{}, err
	}
	if m.Interleaved || !interleavable(m.Type, m.Cols) {
		return Matrix{}, fmt.Errorf("kernels: cannot interleave a %v matrix of %d columns (interleaved %v): needs Q8_0 or Q4_0 with a multiple of %d columns",
			m.Type, m.Cols, m.Interleaved, groupValues)
	}
	rb := m.RowBytes()
	out := m
	out.Data = make([]byte, m.Rows*rb)
	out.Interleaved = true
	out.Biased = m.Type == weights.TypeQ8_0 && isa.resolve().vnni()
	out.Panels = panelable(isa, layout, m.Rows)
	if isa.resolve() == ISAAMX {
		out.File = m.Data[:m.Rows*rb]
	}
	if out.Panels {
		tr := panelMaxP * panelRows
		tiles := (m.Rows + tr - 1) / tr
		workers := min(runtime.NumCPU(), max(1, tiles/32))
		var wg sync.WaitGroup
		for w := range workers {
			t0, t1 := tiles*w/workers, tiles*(w+1)/workers
			wg.Go(func() {
				for t := t0; t < t1; t++ {
					np := min(panelMaxP, (m.Rows-t*tr)/panelRows)
					interleavePanel(m.Type, out.Data[t*tr*rb:(t*tr+np*panelRows)*rb], m.Data[t*tr*rb:], rb, m.Cols/32, np)
				}
			})
		}
		wg.Wait()
		return out, nil
	}
	// Split the groups across the CPUs: a 7B model has about 7 GB of them.
	gb := groupBytes(m.Type)
	groups := m.Rows * rb / gb
	workers := min(runtime.NumCPU(), max(1, groups/4096))
	var wg sync.WaitGroup
	for w := range workers {
		g0, g1 := groups*w/workers, groups*(w+1)/workers
		group := interleaveGroup
		switch {
		case m.Type == weights.TypeQ4_0:
			group = interleaveGroupQ4_0
		case out.Biased:
			group = interleaveGroupBiased
		}
		wg.Go(func() {
			for g := g0; g < g1; g++ {
				group(out.Data[g*gb:(g+1)*gb], m.Data[g*gb:(g+1)*gb])
			}
		})
	}
	wg.Wait()
	return out, nil
}

// interleaveGroup writes 8 Q8_0 blocks of src (file layout) into dst in the interleaved layout.
// interleaveGroupQ4_0 is the same for Q4_0 (4 runs instead of 8); they stay two functions because constant
// bounds let the compiler drop the bounds checks, which a shared version taking the block size kept (slower
// at load).
func interleaveGroup(dst, src []byte) {
	dst, src = dst[:8*34], src[:8*34]
	for j := range groupBlocks {
		blk := src[j*34 : (j+1)*34]
		dst[2*j], dst[2*j+1] = blk[0], blk[1]
		for v := range 8 {
			binary.LittleEndian.PutUint32(dst[16+32*v+4*j:], binary.LittleEndian.Uint32(blk[2+4*v:]))
		}
	}
}

// interleaveGroupBiased is interleaveGroup with each quant q stored as the unsigned byte q+128 (q XOR 0x80).
func interleaveGroupBiased(dst, src []byte) {
	dst, src = dst[:8*34], src[:8*34]
	for j := range groupBlocks {
		blk := src[j*34 : (j+1)*34]
		dst[2*j], dst[2*j+1] = blk[0], blk[1]
		for v := range 8 {
			binary.LittleEndian.PutUint32(dst[16+32*v+4*j:], binary.LittleEndian.Uint32(blk[2+4*v:])^0x80808080)
		}
	}
}

// interleaveGroupQ4_0 writes 8 Q4_0 blocks of src (file layout) into dst in the interleaved layout.
func interleaveGroupQ4_0(dst, src []byte) {
	dst, src = dst[:8*18], src[:8*18]
	for j := range groupBlocks {
		blk := src[j*18 : (j+1)*18]
		dst[2*j], dst[2*j+1] = blk[0], blk[1]
		for v := range 4 {
			binary.LittleEndian.PutUint32(dst[16+32*v+4*j:], binary.LittleEndian.Uint32(blk[2+4*v:]))
		}
	}
}

// interleaveActs writes the quantized activations of groups [g0, g1) (q in block order, 32 values per block)
// into qi in the interleaved order: group g's run v holds values 4v..4v+3 of its 8 blocks in turn.
func interleaveActs(qi, q []int8, g0, g1 int) {
	for g := g0; g < g1; g++ {
		src := q[g*groupValues : (g+1)*groupValues]
		dst := qi[g*groupValues : (g+1)*groupValues]
		for j := range groupBlocks {
			for v := range 8 {
				copy(dst[32*v+4*j:32*v+4*j+4], src[32*j+4*v:32*j+4*v+4])
			}
		}
	}
}

// offsetQ4_0I writes, for groups [g0, g1) of interleaved activations qi, the int16 vectors the interleaved
// Q4_0 kernels start each group's sums from (16 per group): the AVX2 kernel's VPMADDUBSW puts a nibble times
// activation bytes 4j and 4j+1 of a run in int16 lane 2j and bytes 4j+2, 4j+3 in lane 2j+1, so lane 2j meets
// those bytes of all 8 runs and gets -8 times their sum (the weights' offset of 8), at most 8*16*127 = 16256 in
// magnitude.
func offsetQ4_0I(ci []int16, qi []int8, g0, g1 int) {
	for g := g0; g < g1; g++ {
		x := qi[g*groupValues : (g+1)*groupValues]
		c := ci[g*16 : (g+1)*16]
		for j := range groupBlocks {
			var lo, hi int16
			for v := range 8 {
				r := x[32*v+4*j : 32*v+4*j+4]
				lo += int16(r[0]) + int16(r[1])
				hi += int16(r[2]) + int16(r[3])
			}
			c[2*j], c[2*j+1] = -8*lo, -8*hi
		}
	}
}

// dotQ8_0I is the dot product of an interleaved Q8_0 row w with interleaved activations xq (block scales xd in
// block order), ngroups groups of 8 blocks: the Go form of the dotQ8_0IT kernels. With biased, w holds q+128
// (Matrix.Biased).
func dotQ8_0I(w []byte, xq []int8, xd []float32, ngroups int, biased bool) float32 {
	var sum float32
	var bias byte
	if biased {
		bias = 0x80
	}
	for g := range ngroups {
		grp := w[g*groupBytes(weights.TypeQ8_0) : (g+1)*groupBytes(weights.TypeQ8_0)]
		x := xq[g*groupValues : (g+1)*groupValues]
		for j := range groupBlocks {
			var isum int32
			for v := range 8 {
				for t := range 4 {
					isum += int32(int8(grp[16+32*v+4*j+t]^bias)) * int32(x[32*v+4*j+t])
				}
			}
			sum += f16(grp[2*j:]) * xd[g*groupBlocks+j] * float32(isum)
		}
	}
	return sum
}

// dotQ4_0I is dotQ8_0I for an interleaved Q4_0 row: with xs the activation block sums d_x*sum(q_x) in block
// order, each block adds d_w*(d_x*sum(nibble*q_x) - 8*xs), value = d_w*(nibble-8). The high nibbles of run v
// meet activation run 4+v (values 16+4v..16+4v+3).
func dotQ4_0I(w []byte, xq []int8, xd, xs []float32, ngroups int) float32 {
	var sum float32
	for g := range ngroups {
		grp := w[g*groupBytes(weights.TypeQ4_0) : (g+1)*groupBytes(weights.TypeQ4_0)]
		x := xq[g*groupValues : (g+1)*groupValues]
		for j := range groupBlocks {
			var isum int32
			for v := range 4 {
				for t := range 4 {
					b := grp[16+32*v+4*j+t]
					isum += int32(b&15)*int32(x[32*v+4*j+t]) + int32(b>>4)*int32(x[32*(4+v)+4*j+t])
				}
			}
			i := g*groupBlocks + j
			sum += f16(grp[2*j:]) * (xd[i]*float32(isum) - 8*xs[i])
		}
	}
	return sum
}
