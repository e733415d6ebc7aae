package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// qkK is the super-block size of the K-quants (QK_K in ggml).
const qkK = 256

// Float16To32 converts an IEEE 754 half-precision value to float32 exactly (subnormals, infinities and NaNs
// included).
func Float16To32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		// Zero or subnormal: man * 2^-24, exact in float32.
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// Float32To16 converts f to IEEE 754 half precision, rounding to nearest even; values beyond the half range
// become infinities, NaNs become the quiet NaN 0x7e00 (with f's sign), as ggml does.
func Float32To16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	var r, rem, half uint32
	if e <= 0 {
		// Half subnormal: value / 2^-24 = (1.man) * 2^(exp-126-23+23) = m24 >> (126-exp).
		if e < -10 {
			return sign
		}
		m24 := man | 0x800000
		shift := uint(14 - e)
		r, rem, half = m24>>shift, m24&(1<<shift-1), 1<<(shift-1)
	} else {
		r, rem, half = uint32(e)<<10|man>>13, man&0x1fff, 0x1000
	}
	if rem > half || (rem == half && r&1 == 1) {
		r++ // may carry into the exponent, up to infinity: that is correct rounding
	}
	return sign | uint16(r)
}

// BFloat16To32 converts a bfloat16 value to float32 exactly.
func BFloat16To32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to bfloat16, rounding to nearest even; NaNs stay NaNs (quieted), as ggml does.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// checkSizes validates that n values of type t take exactly nBytes bytes.
func checkSizes(op string, t Type, nValues, nBytes int) error {
	want, err := t.RowBytes(nValues)
	if err != nil {
		return fmt.Errorf("weights: %s: %w", op, err)
	}
	if nBytes != want {
		return fmt.Errorf("weights: %s %s: %d values need %d bytes, got %d", op, t, nValues, want, nBytes)
	}
	return nil
}

// Dequantize decodes len(dst) values of type t from src into dst. len(dst) must be a whole number of t's blocks
// and src exactly the bytes they take. The arithmetic follows ggml's reference dequantize_row_* routines
// operation by operation (in float32), so the results are bit-identical to llama.cpp's.
func Dequantize(t Type, src []byte, dst []float32) error {
	if err := checkSizes("dequantize", t, len(dst), len(src)); err != nil {
		return err
	}
	switch t {
	case TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case TypeF16:
		for i := range dst {
			dst[i] = Float16To32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case TypeBF16:
		for i := range dst {
			dst[i] = BFloat16To32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case TypeQ4_0:
		forBlocks(src, dst, 18, 32, dequantQ4_0)
	case TypeQ4_1:
		forBlocks(src, dst, 20, 32, dequantQ4_1)
	case TypeQ5_0:
		forBlocks(src, dst, 22, 32, dequantQ5_0)
	case TypeQ5_1:
		forBlocks(src, dst, 24, 32, dequantQ5_1)
	case TypeQ8_0:
		forBlocks(src, dst, 34, 32, dequantQ8_0)
	case TypeQ4_K:
		forBlocks(src, dst, 144, qkK, dequantQ4K)
	case TypeQ5_K:
		forBlocks(src, dst, 176, qkK, dequantQ5K)
	case TypeQ6_K:
		forBlocks(src, dst, 210, qkK, dequantQ6K)
	case TypeQ8_K:
		forBlocks(src, dst, 292, qkK, dequantQ8K)
	default:
		return fmt.Errorf("weights: dequantize: %w", &TypeError{Type: t})
	}
	return nil
}

// forBlocks applies fn to each (block bytes, block values) pair.
func forBlocks[S, D any](src []S, dst []D, srcBlock, dstBlock int, fn func(b []S, y []D)) {
	for i := 0; i < len(dst)/dstBlock; i++ {
		fn(src[i*srcBlock:(i+1)*srcBlock], dst[i*dstBlock:(i+1)*dstBlock])
	}
}

func f16(b []byte) float32 { return Float16To32(binary.LittleEndian.Uint16(b)) }

// Q4_0 block: d f16, qs[16] (value j in the low nibble of qs[j], value j+16 in the high nibble).
func dequantQ4_0(b []byte, y []float32) {
	d := f16(b)
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1 block: d f16, m f16, qs[16].
func dequantQ4_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qs := b[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&0xf)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// Q5_0 block: d f16, qh uint32 (fifth bits), qs[16].
func dequantQ5_0(b []byte, y []float32) {
	d := f16(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0xf|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

// Q5_1 block: d f16, m f16, qh uint32, qs[16].
func dequantQ5_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := 0; j < 16; j++ {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0xf|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

// Q8_0 block: d f16, qs[32] int8.
func dequantQ8_0(b []byte, y []float32) {
	d := f16(b)
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j from the 12 packed bytes of a Q4_K/Q5_K block.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K block: d f16, dmin f16, scales[12], qs[128]; 8 sub-blocks of 32 with 6-bit scales and mins.
func dequantQ4K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales := b[4:16]
	q := b[16:144]
	for j, is := 0, 0; j < qkK; j, is = j+64, is+2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := 0; l < 32; l++ {
			y[j+l] = float32(d1*float32(q[l]&0xf)) - m1
			y[j+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q = q[32:]
	}
}

// Q5_K block: d f16, dmin f16, scales[12], qh[32], qs[128].
func dequantQ5K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales := b[4:16]
	qh := b[16:48]
	ql := b[48:176]
	u1, u2 := byte(1), byte(2)
	for j, is := 0, 0; j < qkK; j, is = j+64, is+2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := 0; l < 32; l++ {
			h1, h2 := byte(0), byte(0)
			if qh[l]&u1 != 0 {
				h1 = 16
			}
			if qh[l]&u2 != 0 {
				h2 = 16
			}
			y[j+l] = float32(d1*float32(ql[l]&0xf+h1)) - m1
			y[j+32+l] = float32(d2*float32(ql[l]>>4+h2)) - m2
		}
		ql = ql[32:]
		u1 <<= 2
		u2 <<= 2
	}
}

// Q6_K block: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8, d f16; 16 sub-blocks of 16.
func dequantQ6K(b []byte, y []float32) {
	ql := b[0:128]
	qh := b[128:192]
	sc := b[192:208]
	d := f16(b[208:])
	for n := 0; n < qkK; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}

// Q8_K block: d f32, qs[256] int8, bsums[16] int16 (sums of 16 quants, used only by dot products).
func dequantQ8K(b []byte, y []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	for j := 0; j < qkK; j++ {
		y[j] = d * float32(int8(b[4+j]))
	}
}
