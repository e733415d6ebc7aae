package kernels

import "math"

// SwiGLU sets gate[i] = silu(gate[i]) * up[i] for i < len(gate), silu(g) = g / (1 + e^-g): the element-wise
// step of a LLaMA feed-forward layer. It uses AVX2 for whole groups of 8 values when available; both paths
// agree with float64 within a few float32 ulps (see TestSwiGLU).
func SwiGLU(gate, up []float32) {
	up = up[:len(gate)]
	n := 0
	if haveASM() {
		n = len(gate) &^ 7
		if n > 0 {
			swigluASM(&gate[0], &up[0], n)
		}
	}
	swigluGo(gate[n:], up[n:])
}

// swigluGo is SwiGLU in Go.
func swigluGo(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = g / (1 + Exp(-g)) * up[i]
	}
}

// ExpShifted sets x[i] = e^(x[i] - max x) and returns 1/sum of the new x (a softmax left unnormalized: the
// attention's weighted sum divides by the total after). It uses AVX2 for whole groups of 8 values when
// available (where e^(x[i]-max) < 1.2e-38 it gives 1.2e-38 rather than Exp's 0); x must not be empty.
func ExpShifted(x []float32) float32 {
	n := 0
	mx := x[0]
	if haveASM() && len(x) >= 8 {
		n = len(x) &^ 7
		mx = maxF32ASM(&x[0], n)
	}
	for _, v := range x[n:] {
		mx = max(mx, v)
	}
	var sum float32
	if n > 0 {
		sum = expSumASM(&x[0], n, mx)
	}
	for i, v := range x[n:] {
		e := Exp(v - mx)
		x[n+i] = e
		sum += e
	}
	return 1 / sum
}

// Exp returns e^x in float32 with a relative error below 2e-7 (Cephes expf: x = n ln2 + r, |r| <= ln2/2,
// e^r by a degree-6 polynomial, 2^n put in the exponent bits). It is 0 below -87.3 and +Inf above 88.7.
func Exp(x float32) float32 {
	if x < -87.33654 {
		return 0
	}
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	// n = round(x / ln2), without a float64 round trip.
	t := x * 1.44269504088896341
	var ni int32
	if t < 0 {
		ni = int32(t - 0.5)
	} else {
		ni = int32(t + 0.5)
	}
	n := float32(ni)
	r := x - n*0.693359375 - n*-2.12194440e-4
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r +
		5.0000001201e-1
	p = p*z + r + 1
	// 2^n as float32 bits; n+127 is in [1, 254] for x in range except at the extremes, split there.
	if ni < -126 {
		return p * math.Float32frombits(uint32(ni+127+64)<<23) * 5.421010862427522e-20 // 2^-64
	}
	if ni > 127 {
		return p * math.Float32frombits(uint32(ni+127-1)<<23) * 2
	}
	return p * math.Float32frombits(uint32(ni+127)<<23)
}
