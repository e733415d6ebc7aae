package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantize encodes the values of src as type t into dst. len(src) must be a whole number of t's blocks and dst
// exactly the bytes they take.
//
// For F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_K the algorithm is ggml's reference one (the blocks are
// byte-identical to llama.cpp's quantize_row_*_ref). Q4_K, Q5_K and Q6_K use a simpler round-to-nearest
// scheme than llama.cpp's iterative scale search: each sub-block's scale (and min) comes from its range, the
// scales are quantized to 6 (Q4_K/Q5_K) or 8 (Q6_K) bits relative to the super-block's largest, and each value
// is rounded to the nearest level under the quantized scale. The blocks are valid for every GGML reader; the
// error is somewhat larger than llama.cpp's (the tests bound it).
func Quantize(t Type, src []float32, dst []byte) error {
	if err := checkSizes("quantize", t, len(src), len(dst)); err != nil {
		return err
	}
	switch t {
	case TypeF32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case TypeF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32To16(v))
		}
	case TypeBF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
	case TypeQ4_0:
		forBlocks(src, dst, 32, 18, quantQ4_0)
	case TypeQ4_1:
		forBlocks(src, dst, 32, 20, quantQ4_1)
	case TypeQ5_0:
		forBlocks(src, dst, 32, 22, quantQ5_0)
	case TypeQ5_1:
		forBlocks(src, dst, 32, 24, quantQ5_1)
	case TypeQ8_0:
		forBlocks(src, dst, 32, 34, quantQ8_0)
	case TypeQ4_K:
		forBlocks(src, dst, qkK, 144, func(x []float32, b []byte) { quantQ45K(x, b, 15) })
	case TypeQ5_K:
		forBlocks(src, dst, qkK, 176, func(x []float32, b []byte) { quantQ45K(x, b, 31) })
	case TypeQ6_K:
		forBlocks(src, dst, qkK, 210, quantQ6K)
	case TypeQ8_K:
		forBlocks(src, dst, qkK, 292, quantQ8K)
	default:
		return fmt.Errorf("weights: quantize: %w", &TypeError{Type: t})
	}
	return nil
}

func putF16(b []byte, v float32) { binary.LittleEndian.PutUint16(b, Float32To16(v)) }

// nearestInt rounds to the nearest integer, ties to even (ggml's nearest_int for |v| < 2^22).
func nearestInt(v float32) int { return int(math.RoundToEven(float64(v))) }

// absMax returns the value of largest magnitude (the first one on ties) and its magnitude.
func absMax(x []float32) (max, amax float32) {
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, max = a, v
		}
	}
	return max, amax
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// roundAway rounds half away from zero like C's roundf, for |v| < 2^28 (the float64 sum is exact).
// It is branchless: add 0.5 with v's sign, then truncate toward zero.
func roundAway(v float32) int {
	f := float64(v)
	half := math.Float64frombits(0x3fe0000000000000 | math.Float64bits(f)&(1<<63))
	return int(f + half)
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// truncInt8 converts like C's (int8_t) cast of a float in range: toward zero. (The float32(a*b)+c conversions
// at its call sites forbid fusing into an FMA, which would change the rounding.)
func truncInt8(v float32) int { return int(int8(int32(v))) }

func quantQ4_0(x []float32, b []byte) {
	mx, _ := absMax(x)
	d := mx / -8
	id := inverse(d)
	putF16(b, d)
	for j := 0; j < 16; j++ {
		x0 := min(15, truncInt8(float32(x[j]*id)+8.5))
		x1 := min(15, truncInt8(float32(x[j+16]*id)+8.5))
		b[2+j] = byte(x0) | byte(x1)<<4
	}
}

func quantQ4_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	id := inverse(d)
	putF16(b, d)
	putF16(b[2:], lo)
	for j := 0; j < 16; j++ {
		x0 := min(15, truncInt8(float32((x[j]-lo)*id)+0.5))
		x1 := min(15, truncInt8(float32((x[j+16]-lo)*id)+0.5))
		b[4+j] = byte(x0) | byte(x1)<<4
	}
}

func quantQ5_0(x []float32, b []byte) {
	mx, _ := absMax(x)
	d := mx / -16
	id := inverse(d)
	putF16(b, d)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0 := byte(min(31, truncInt8(float32(x[j]*id)+16.5)))
		x1 := byte(min(31, truncInt8(float32(x[j+16]*id)+16.5)))
		b[6+j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0&0x10) >> 4 << j
		qh |= uint32(x1&0x10) >> 4 << (j + 16)
	}
	binary.LittleEndian.PutUint32(b[2:], qh)
}

func quantQ5_1(x []float32, b []byte) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	id := inverse(d)
	putF16(b, d)
	putF16(b[2:], lo)
	var qh uint32
	for j := 0; j < 16; j++ {
		x0 := byte(uint32(float32((x[j]-lo)*id) + 0.5))
		x1 := byte(uint32(float32((x[j+16]-lo)*id) + 0.5))
		b[8+j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0&0x10) >> 4 << j
		qh |= uint32(x1&0x10) >> 4 << (j + 16)
	}
	binary.LittleEndian.PutUint32(b[4:], qh)
}

func quantQ8_0(x []float32, b []byte) {
	_, amax := absMax(x)
	d := amax / 127
	id := inverse(d)
	putF16(b, d)
	for j, v := range x {
		b[2+j] = byte(int8(roundAway(v * id)))
	}
}

func quantQ8K(x []float32, b []byte) {
	clear(b)
	mx, amax := absMax(x)
	if amax == 0 {
		return
	}
	iscale := -127 / mx
	qs := b[4:260]
	for j, v := range x {
		qs[j] = byte(int8(min(127, nearestInt(iscale*v))))
	}
	for j := 0; j < 16; j++ {
		sum := 0
		for _, q := range qs[16*j : 16*j+16] {
			sum += int(int8(q))
		}
		binary.LittleEndian.PutUint16(b[260+2*j:], uint16(int16(sum)))
	}
	binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
}

// quantQ45K quantizes one Q4_K (nmax 15) or Q5_K (nmax 31) super-block by round-to-nearest: sub-block j of 32
// values gets scale (max-min)/nmax and min -min(min(x), 0), both stored as 6-bit multiples of the super-block's
// d and dmin.
func quantQ45K(x []float32, b []byte, nmax int) {
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		lo, hi := minMax(x[32*j : 32*j+32])
		lo = min(lo, 0)
		scales[j] = (hi - lo) / float32(nmax)
		mins[j] = -lo
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := b[4:16]
	clear(sc)
	for j := range 8 {
		ls := byte(min(63, nearestInt(invScale*scales[j])))
		lm := byte(min(63, nearestInt(invMin*mins[j])))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(b, maxScale/63)
	putF16(b[2:], maxMin/63)
	d, dmin := f16(b), f16(b[2:])
	var L [qkK]byte
	for j := range 8 {
		s, m := scaleMinK4(j, sc)
		dj := d * float32(s)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(m)
		for i := range 32 {
			L[32*j+i] = byte(max(0, min(nmax, nearestInt((x[32*j+i]+dm)/dj))))
		}
	}
	if nmax == 15 {
		q := b[16:144]
		for j := 0; j < qkK; j += 64 {
			for l := range 32 {
				q[l] = L[j+l] | L[j+l+32]<<4
			}
			q = q[32:]
		}
		return
	}
	qh := b[16:48]
	ql := b[48:176]
	clear(qh)
	m1, m2 := byte(1), byte(2)
	for n := 0; n < qkK; n += 64 {
		for j := range 32 {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
		ql = ql[32:]
	}
}

// quantQ6K quantizes one Q6_K super-block by round-to-nearest: sub-block j of 16 values gets the scale that
// maps its largest-magnitude value to -32, stored as an int8 multiple of the super-block's d.
func quantQ6K(x []float32, b []byte) {
	clear(b)
	var scales [16]float32
	var maxScale, maxAbs float32
	for j := range 16 {
		mx, _ := absMax(x[16*j : 16*j+16])
		scales[j] = mx / -32
		if a := float32(math.Abs(float64(scales[j]))); a > maxAbs {
			maxAbs, maxScale = a, scales[j]
		}
	}
	if maxAbs < 1e-15 {
		return
	}
	iscale := -128 / maxScale
	putF16(b[208:], 1/iscale)
	d := f16(b[208:])
	sc := b[192:208]
	var L [qkK]byte
	for j := range 16 {
		s := int8(min(127, nearestInt(iscale*scales[j])))
		sc[j] = byte(s)
		dj := d * float32(s)
		if dj == 0 {
			for i := range 16 {
				L[16*j+i] = 32
			}
			continue
		}
		for i := range 16 {
			L[16*j+i] = byte(max(-32, min(31, nearestInt(x[16*j+i]/dj))) + 32)
		}
	}
	ql := b[0:128]
	qh := b[128:192]
	for j := 0; j < qkK; j += 128 {
		for l := range 32 {
			q1, q2, q3, q4 := L[j+l], L[j+l+32], L[j+l+64], L[j+l+96]
			ql[l] = q1&0xf | (q3&0xf)<<4
			ql[l+32] = q2&0xf | (q4&0xf)<<4
			qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
		}
		ql = ql[64:]
		qh = qh[32:]
	}
}
