package weights

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Golden files in testdata/golden come from llama.cpp's (ggml's) reference C routines; see testdata/README.md.

func readF32s(t testing.TB, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/golden", name))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func readBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var goldenTypes = []Type{TypeF16, TypeBF16, TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0, TypeQ4_K, TypeQ5_K, TypeQ6_K, TypeQ8_K}

// sameBits compares floats bit for bit (so -0 != +0), treating any two NaNs as equal.
func sameBits(a, b float32) bool {
	if a != a && b != b {
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func TestDequantizeMatchesLlamaCpp(t *testing.T) {
	for _, typ := range goldenTypes {
		t.Run(typ.String(), func(t *testing.T) {
			q := readBytes(t, typ.String()+".quant")
			want := readF32s(t, typ.String()+".dequant.f32")
			got := make([]float32, len(want))
			if err := Dequantize(typ, q, got); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range want {
				if !sameBits(got[i], want[i]) {
					if bad < 5 {
						t.Errorf("value %d: got %g (%08x), llama.cpp %g (%08x)", i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d values differ", bad, len(want))
			}
		})
	}
}

// exactQuantizers use ggml's reference algorithm, so their bytes must equal llama.cpp's.
var exactQuantizers = map[Type]bool{TypeF16: true, TypeBF16: true, TypeQ4_0: true, TypeQ4_1: true, TypeQ5_0: true,
	TypeQ5_1: true, TypeQ8_0: true, TypeQ8_K: true}

func TestQuantizeMatchesLlamaCpp(t *testing.T) {
	x := readF32s(t, "input.f32")
	for _, typ := range goldenTypes {
		t.Run(typ.String(), func(t *testing.T) {
			want := readBytes(t, typ.String()+".quant")
			got := make([]byte, len(want))
			if err := Quantize(typ, x, got); err != nil {
				t.Fatal(err)
			}
			if exactQuantizers[typ] {
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("byte %d (block %d): got %#02x, llama.cpp %#02x", i, i/typ.BlockBytes(), got[i], want[i])
					}
				}
				return
			}
			// Round-to-nearest K-quants: per 256-value block, our RMS error against the input must be within
			// 1.5x llama.cpp's (plus 1e-6 of the block's range for all-zero/constant blocks).
			ours := make([]float32, len(x))
			if err := Dequantize(typ, got, ours); err != nil {
				t.Fatal(err)
			}
			theirs := readF32s(t, typ.String()+".dequant.f32")
			for blk := 0; blk < len(x)/qkK; blk++ {
				xs := x[blk*qkK : (blk+1)*qkK]
				e1 := rmsErr(xs, ours[blk*qkK:(blk+1)*qkK])
				e2 := rmsErr(xs, theirs[blk*qkK:(blk+1)*qkK])
				_, amax := absMax(xs)
				t.Logf("block %d: rms error ours %.3g llama.cpp %.3g (ratio %.2f)", blk, e1, e2, e1/e2)
				if e1 > 1.5*e2+1e-6*float64(amax) {
					t.Errorf("block %d: rms error %g > 1.5 x llama.cpp's %g", blk, e1, e2)
				}
			}
		})
	}
}

func rmsErr(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s / float64(len(a)))
}

func TestFloat32To16MatchesGGML(t *testing.T) {
	in := readBytes(t, "conv.in.f32")
	h16 := readBytes(t, "conv.f16")
	bf := readBytes(t, "conv.bf16")
	for i := 0; i < len(in)/4; i++ {
		f := math.Float32frombits(binary.LittleEndian.Uint32(in[4*i:]))
		if got, want := Float32To16(f), binary.LittleEndian.Uint16(h16[2*i:]); got != want {
			t.Errorf("Float32To16(%g = %08x) = %04x, ggml %04x", f, math.Float32bits(f), got, want)
		}
		if got, want := Float32ToBF16(f), binary.LittleEndian.Uint16(bf[2*i:]); got != want {
			t.Errorf("Float32ToBF16(%g = %08x) = %04x, ggml %04x", f, math.Float32bits(f), got, want)
		}
	}
}

// TestFloat16To32All checks every half value against the IEEE 754 formula evaluated in float64.
func TestFloat16To32All(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		sign, exp, man := h>>15, (h>>10)&0x1f, h&0x3ff
		var want float64
		switch {
		case exp == 0x1f && man == 0:
			want = math.Inf(1)
		case exp == 0x1f:
			want = math.NaN()
		case exp == 0:
			want = math.Ldexp(float64(man), -24)
		default:
			want = math.Ldexp(1+float64(man)/1024, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		got := Float16To32(uint16(h))
		if !sameBits(got, float32(want)) {
			t.Fatalf("Float16To32(%04x) = %g, want %g", h, got, want)
		}
		if exp != 0x1f {
			if back := Float32To16(got); back != uint16(h) {
				t.Fatalf("Float32To16(Float16To32(%04x)) = %04x", h, back)
			}
		}
	}
}

func TestQuantizeSizeErrors(t *testing.T) {
	if err := Quantize(TypeQ8_0, make([]float32, 33), make([]byte, 34)); err == nil {
		t.Error("33 values of Q8_0: no error")
	}
	if err := Quantize(TypeQ8_0, make([]float32, 32), make([]byte, 33)); err == nil {
		t.Error("32 values into 33 bytes: no error")
	}
	if err := Dequantize(TypeQ4_K, make([]byte, 144), make([]float32, 255)); err == nil {
		t.Error("255 values of Q4_K: no error")
	}
	if err := Dequantize(Type(99), nil, nil); err == nil {
		t.Error("unknown type: no error")
	}
}

// TestQuantizeRoundTrip checks every type's dequantize(quantize(x)) against x within a per-type bound on
// random data, including blocks that are constant or zero.
func TestQuantizeRoundTrip(t *testing.T) {
	x := readF32s(t, "input.f32")
	// Maximum error relative to the largest magnitude of the value's scale group (32 values, or the 256-value
	// super-block for K-quants): the half-step of each scheme, plus clamping at the positive end, plus (for
	// K-quants) the rounding of 6-/8-bit sub-block scales and mins; 2% slack for the f16 scale rounding.
	tol := map[Type]float64{TypeF32: 0, TypeF16: 1.0 / 2048, TypeBF16: 1.0 / 256, TypeQ8_0: 1.0 / 127, TypeQ8_K: 1.0 / 127,
		TypeQ4_0: 1.0 / 8, TypeQ4_1: 1.0 / 15, TypeQ5_0: 1.0 / 16, TypeQ5_1: 1.0 / 31,
		TypeQ4_K: 1.0/15 + 1.0/63 + 1.0/126, TypeQ5_K: 1.0/31 + 1.0/63 + 1.0/126, TypeQ6_K: 1.0/32 + 1.0/128}
	for typ, rel := range tol {
		n, _ := typ.RowBytes(len(x))
		q := make([]byte, n)
		if err := Quantize(typ, x, q); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		group := 32
		if typ.BlockSize() == qkK {
			group = qkK
		}
		for g := 0; g < len(x); g += group {
			_, amax := absMax(x[g : g+group])
			for i := g; i < g+group; i++ {
				if d := math.Abs(float64(x[i] - y[i])); d > 1.02*rel*float64(amax) {
					t.Errorf("%s: value %d = %g came back %g (error %.3g > %.3g of %g)", typ, i, x[i], y[i], d, rel, amax)
					break
				}
			}
		}
	}
}

func TestRoundAway(t *testing.T) {
	for _, v := range []float32{0, 0.49999997, 0.5, 1.5, 2.5, -0.5, -0.49999997, -2.5, 126.5, -127.4, 3.7} {
		if got, want := roundAway(v), int(math.Round(float64(v))); got != want {
			t.Errorf("roundAway(%v) = %d, want %d", v, got, want)
		}
	}
}

// TestDequantizeNoAllocs: the model dequantizes embedding rows per token, so Dequantize must not allocate.
func TestDequantizeNoAllocs(t *testing.T) {
	dst := make([]float32, 512)
	for _, typ := range append(goldenTypes, TypeF32) {
		n, _ := typ.RowBytes(len(dst))
		src := make([]byte, n)
		if a := testing.AllocsPerRun(10, func() { _ = Dequantize(typ, src, dst) }); a != 0 {
			t.Errorf("Dequantize(%s) allocates %v times", typ, a)
		}
		if a := testing.AllocsPerRun(10, func() { _ = Quantize(typ, dst, src) }); a != 0 {
			t.Errorf("Quantize(%s) allocates %v times", typ, a)
		}
	}
}

// BenchmarkDequantize reports float32 output throughput for a 4096-value row of each type.
func BenchmarkDequantize(b *testing.B) {
	dst := make([]float32, 4096)
	for _, typ := range append([]Type{TypeF32}, goldenTypes...) {
		n, _ := typ.RowBytes(len(dst))
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 7)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(dst)))
			for b.Loop() {
				_ = Dequantize(typ, src, dst)
			}
		})
	}
}

// BenchmarkQuantize reports float32 input throughput for a 4096-value row of each type.
func BenchmarkQuantize(b *testing.B) {
	x := readF32s(b, "input.f32")
	x = append(x, x...)
	for _, typ := range append([]Type{TypeF32}, goldenTypes...) {
		n, _ := typ.RowBytes(len(x))
		dst := make([]byte, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				_ = Quantize(typ, x, dst)
			}
		})
	}
}
