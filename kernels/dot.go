package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file holds the pure-Go dot products of one weight row (in its file format) with one activation row.
// They are always compiled: they serve CPUs without AVX2 and are the reference the assembly is tested against.

// f16ToF32 converts an IEEE 754 half-precision value to float32.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// f16 reads a little-endian half-precision value at b[0:2].
func f16(b []byte) float32 { return f16ToF32(binary.LittleEndian.Uint16(b)) }

func dotF32Bytes(w []byte, x []float32) float32 {
	var s float32
	for i := range x {
		s += math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])) * x[i]
	}
	return s
}

func dotF16(w []byte, x []float32) float32 {
	var s float32
	for i := range x {
		s += f16(w[2*i:]) * x[i]
	}
	return s
}

func dotBF16(w []byte, x []float32) float32 {
	var s float32
	for i := range x {
		s += math.Float32frombits(uint32(binary.LittleEndian.Uint16(w[2*i:]))<<16) * x[i]
	}
	return s
}

// dotQ8_0: blocks of 34 bytes: fp16 d, 32 int8 q; value = d*q.
func dotQ8_0(w []byte, xq []int8, xd []float32, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*34 : i*34+34]
		qs := blk[2:34]
		x := xq[i*32 : i*32+32]
		var s int32
		for j := range 32 {
			s += int32(int8(qs[j])) * int32(x[j])
		}
		sum += f16(blk) * xd[i] * float32(s)
	}
	return sum
}

// dotQ4_0: blocks of 18 bytes: fp16 d, 16 bytes of nibbles (value j low nibble, value j+16 high nibble);
// value = d*(nibble-8).
func dotQ4_0(w []byte, xq []int8, xd []float32, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*18 : i*18+18]
		qs := blk[2:18]
		x := xq[i*32 : i*32+32]
		var s int32
		for j := range 16 {
			s += (int32(qs[j]&15)-8)*int32(x[j]) + (int32(qs[j]>>4)-8)*int32(x[j+16])
		}
		sum += f16(blk) * xd[i] * float32(s)
	}
	return sum
}

// dotQ4_1: blocks of 20 bytes: fp16 d, fp16 m, 16 bytes of nibbles; value = d*nibble + m.
func dotQ4_1(w []byte, xq []int8, xd, xs []float32, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*20 : i*20+20]
		qs := blk[4:20]
		x := xq[i*32 : i*32+32]
		var s int32
		for j := range 16 {
			s += int32(qs[j]&15)*int32(x[j]) + int32(qs[j]>>4)*int32(x[j+16])
		}
		sum += f16(blk)*xd[i]*float32(s) + f16(blk[2:])*xs[i]
	}
	return sum
}

// dotQ5_0: blocks of 22 bytes: fp16 d, 32 high bits (uint32), 16 bytes of low nibbles; value = d*(q-16).
func dotQ5_0(w []byte, xq []int8, xd []float32, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*22 : i*22+22]
		qh := binary.LittleEndian.Uint32(blk[2:])
		qs := blk[6:22]
		x := xq[i*32 : i*32+32]
		var s int32
		for j := range 16 {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			s += (int32(uint32(qs[j]&15)|h0)-16)*int32(x[j]) + (int32(uint32(qs[j]>>4)|h1)-16)*int32(x[j+16])
		}
		sum += f16(blk) * xd[i] * float32(s)
	}
	return sum
}

// dotQ5_1: blocks of 24 bytes: fp16 d, fp16 m, 32 high bits, 16 bytes of low nibbles; value = d*q + m.
func dotQ5_1(w []byte, xq []int8, xd, xs []float32, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*24 : i*24+24]
		qh := binary.LittleEndian.Uint32(blk[4:])
		qs := blk[8:24]
		x := xq[i*32 : i*32+32]
		var s int32
		for j := range 16 {
			h0 := (qh >> j << 4) & 0x10
			h1 := (qh >> (j + 12)) & 0x10
			s += int32(uint32(qs[j]&15)|h0)*int32(x[j]) + int32(uint32(qs[j]>>4)|h1)*int32(x[j+16])
		}
		sum += f16(blk)*xd[i]*float32(s) + f16(blk[2:])*xs[i]
	}
	return sum
}

// q8KRecord returns the scale, the 256 quants and the 16 partial sums of Q8_K record i of xk.
func q8KRecord(xk []byte, i int) (d float32, q []byte, sums [16]int16) {
	rec := xk[i*q8KBytes : (i+1)*q8KBytes]
	for g := range sums {
		sums[g] = int16(binary.LittleEndian.Uint16(rec[q8KSums+2*g:]))
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(rec)), rec[q8KQs:q8KSums], sums
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j from the 12 packed bytes of a Q4_K/Q5_K block.
func scaleMinK4(j int, q []byte) (sc, m int32) {
	if j < 4 {
		return int32(q[j] & 63), int32(q[j+4] & 63)
	}
	return int32(q[j+4]&0xF | (q[j-4]>>6)<<4), int32(q[j+4]>>4 | (q[j]>>6)<<4)
}

// dotQ4_K: super-blocks of 256 values in 144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins for
// 8 sub-blocks of 32, 128 bytes of nibbles (each 32 bytes hold sub-blocks 2k (low) and 2k+1 (high));
// value = d*sc*q - dmin*m.
func dotQ4_K(w, xk []byte, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*144 : i*144+144]
		scales := blk[4:16]
		qs := blk[16:144]
		xd, x, bs := q8KRecord(xk, i)
		var sumi, summ int32
		for k := range 4 {
			sc1, m1 := scaleMinK4(2*k, scales)
			sc2, m2 := scaleMinK4(2*k+1, scales)
			q := qs[32*k : 32*k+32]
			xx := x[64*k : 64*k+64]
			var s1, s2 int32
			for l := range 32 {
				s1 += int32(q[l]&15) * int32(int8(xx[l]))
				s2 += int32(q[l]>>4) * int32(int8(xx[l+32]))
			}
			sumi += sc1*s1 + sc2*s2
			summ += m1*(int32(bs[4*k])+int32(bs[4*k+1])) + m2*(int32(bs[4*k+2])+int32(bs[4*k+3]))
		}
		sum += xd * (f16(blk)*float32(sumi) - f16(blk[2:])*float32(summ))
	}
	return sum
}

// dotQ5_K: super-blocks of 256 values in 176 bytes: fp16 d, fp16 dmin, 12 bytes of scales/mins, 32 bytes of
// fifth bits (bit 2k / 2k+1 of byte l for value l of sub-block 2k / 2k+1), 128 bytes of nibbles.
func dotQ5_K(w, xk []byte, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*176 : i*176+176]
		scales := blk[4:16]
		qh := blk[16:48]
		qs := blk[48:176]
		xd, x, bs := q8KRecord(xk, i)
		var sumi, summ int32
		for k := range 4 {
			sc1, m1 := scaleMinK4(2*k, scales)
			sc2, m2 := scaleMinK4(2*k+1, scales)
			q := qs[32*k : 32*k+32]
			xx := x[64*k : 64*k+64]
			var s1, s2 int32
			for l := range 32 {
				h1 := int32(qh[l]>>(2*k)&1) << 4
				h2 := int32(qh[l]>>(2*k+1)&1) << 4
				s1 += (int32(q[l]&15) | h1) * int32(int8(xx[l]))
				s2 += (int32(q[l]>>4) | h2) * int32(int8(xx[l+32]))
			}
			sumi += sc1*s1 + sc2*s2
			summ += m1*(int32(bs[4*k])+int32(bs[4*k+1])) + m2*(int32(bs[4*k+2])+int32(bs[4*k+3]))
		}
		sum += xd * (f16(blk)*float32(sumi) - f16(blk[2:])*float32(summ))
	}
	return sum
}

// dotQ6_K: super-blocks of 256 values in 210 bytes: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs,
// 16 int8 scales (one per 16 values), fp16 d; value = d*sc*(q-32).
func dotQ6_K(w, xk []byte, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*210 : i*210+210]
		xd, x, _ := q8KRecord(xk, i)
		var sumi int32
		for n := range 2 {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			sc := blk[192+8*n : 192+8*n+8]
			xx := x[128*n : 128*n+128]
			for is := range 2 {
				var s1, s2, s3, s4 int32
				for l := 16 * is; l < 16*is+16; l++ {
					q1 := int32(ql[l]&15|(qh[l]&3)<<4) - 32
					q2 := int32(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
					q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
					q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
					s1 += q1 * int32(int8(xx[l]))
					s2 += q2 * int32(int8(xx[l+32]))
					s3 += q3 * int32(int8(xx[l+64]))
					s4 += q4 * int32(int8(xx[l+96]))
				}
				sumi += int32(int8(sc[is]))*s1 + int32(int8(sc[is+2]))*s2 + int32(int8(sc[is+4]))*s3 +
					int32(int8(sc[is+6]))*s4
			}
		}
		sum += xd * f16(blk[208:]) * float32(sumi)
	}
	return sum
}

// dotQ8_K: blocks of 256 values in 292 bytes: float32 d, 256 int8 q, 16 int16 sums (unused here).
func dotQ8_K(w, xk []byte, nb int) float32 {
	var sum float32
	for i := range nb {
		blk := w[i*292 : i*292+292]
		qs := blk[4:260]
		xd, x, _ := q8KRecord(xk, i)
		var s int32
		for j := range 256 {
			s += int32(int8(qs[j])) * int32(int8(x[j]))
		}
		sum += math.Float32frombits(binary.LittleEndian.Uint32(blk)) * xd * float32(s)
	}
	return sum
}

// DotF32 returns the dot product of a and b[:len(a)] (attention scores). It uses AVX2 when available.
func DotF32(a, b []float32) float32 {
	b = b[:len(a)]
	n := 0
	var s float32
	if haveASM() && len(a) >= 32 {
		n = len(a) &^ 31
		s = dotF32ASM(&a[0], &b[0], n)
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// AxpyF32 sets y[i] += alpha*x[i] for i < len(x) (attention's weighted sum of values). It uses AVX2 when
// available.
func AxpyF32(alpha float32, x, y []float32) {
	y = y[:len(x)]
	n := 0
	if haveASM() && len(x) >= 32 {
		n = len(x) &^ 31
		axpyF32ASM(alpha, &x[0], &y[0], n)
	}
	for i := n; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// DotRowsF32 sets out[i] = dot(a[i*stride : i*stride+len(x)], x) for i < len(out): one query head's
// attention scores over a run of cached keys, rows stride floats apart. It panics, as slice indexing would,
// when a is too short. AVX2 is used when len(x) is a multiple of 32.
func DotRowsF32(out, a []float32, stride int, x []float32) {
	rows, n := len(out), len(x)
	if rows == 0 {
		return
	}
	if stride < n || len(a) < (rows-1)*stride+n {
		panic(fmt.Sprintf("kernels: DotRowsF32: %d rows of %d values %d apart need %d values, have %d",
			rows, n, stride, (rows-1)*stride+n, len(a)))
	}
	if haveASM() && n >= 32 && n%32 == 0 {
		dotRowsF32ASM(&out[0], &a[0], stride*4, rows, &x[0], n)
		return
	}
	for i := range out {
		out[i] = dotF32(a[i*stride:i*stride+n], x)
	}
}

// AxpyRowsF32 adds w[i]*a[i*stride : i*stride+len(y)] to y for i < len(w): one head's weighted sum of a run
// of cached values, rows stride floats apart. It panics, as slice indexing would, when a is too short. AVX2
// is used when len(y) is a multiple of 32; y then stays in registers across the rows.
func AxpyRowsF32(y, a []float32, stride int, w []float32) {
	rows, n := len(w), len(y)
	if rows == 0 || n == 0 {
		return
	}
	if stride < n || len(a) < (rows-1)*stride+n {
		panic(fmt.Sprintf("kernels: AxpyRowsF32: %d rows of %d values %d apart need %d values, have %d",
			rows, n, stride, (rows-1)*stride+n, len(a)))
	}
	if haveASM() && n%32 == 0 {
		axpyRowsF32ASM(&y[0], &a[0], stride*4, rows, &w[0], n)
		return
	}
	for i, wi := range w {
		r := a[i*stride : i*stride+n]
		for j := range y {
			y[j] += wi * r[j]
		}
	}
}

// dotF32 is the Go dot product.
func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
