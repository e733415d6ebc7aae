package gemm

import (
	"fmt"
	"math"

	"github.com/bestofn/bestofn/kernels"
)

// Softmax replaces the row x with softmax(x), x_i -> e^(x_i - max) / sum_j e^(x_j - max), and returns
// logsumexp(x) = max + log(sum_j e^(x_j - max)), so that log softmax(x)_i = x_i - logsumexp(x). e^x is
// kernels.Exp's (relative error below 2e-7; 0 below -87.3, so -Inf entries, as in a masked attention row, get
// probability 0). A NaN in x makes the result NaN, as does a row that is all -Inf; an empty row returns -Inf.
// The vector kernels run when the CPU has AVX-512 or AVX2.
func Softmax(x []float32) float32 { return softmax(fastest, x) }

// SoftmaxCrossEntropy replaces the logits row x with scale*(softmax(x) - onehot(target)), the gradient of
// scale*loss with respect to x, and returns loss = -log softmax(x)[target] = logsumexp(x) - x[target] (in
// float64, for summing over many rows). It panics when target is not an index of x.
func SoftmaxCrossEntropy(x []float32, target int, scale float32) float64 {
	return softmaxCrossEntropy(fastest, x, target, scale)
}

func softmaxCrossEntropy(s *isa, x []float32, target int, scale float32) float64 {
	if target < 0 || target >= len(x) {
		panic(fmt.Sprintf("gemm: target %d is not an index of a row of %d logits", target, len(x)))
	}
	xt := x[target]
	m, sum := expRow(s, x)
	loss := math.Log(float64(sum)) + float64(m) - float64(xt)
	scaleRow(s, x, scale/sum)
	x[target] -= scale
	return loss
}

func softmax(s *isa, x []float32) float32 {
	if len(x) == 0 {
		return float32(math.Inf(-1))
	}
	m, sum := expRow(s, x)
	scaleRow(s, x, 1/sum)
	return m + float32(math.Log(float64(sum)))
}

// expRow sets x_i = e^(x_i - max) and returns max and the sum of the new x_i.
func expRow(s *isa, x []float32) (m, sum float32) {
	n := 0
	m = float32(math.Inf(-1))
	if s != nil {
		n = len(x) / s.rowVec * s.rowVec
		if n > 0 {
			m = s.maxF32(&x[0], n)
		}
	}
	m = max(m, maxRef(x[n:]))
	if n > 0 {
		sum = s.expShiftSum(&x[0], n, m)
	}
	return m, sum + expShiftSumRef(x[n:], m)
}

func scaleRow(s *isa, x []float32, f float32) {
	n := 0
	if s != nil {
		n = len(x) / s.rowVec * s.rowVec
		if n > 0 {
			s.scaleF32(&x[0], n, f)
		}
	}
	scaleRef(x[n:], f)
}

// maxRef returns the largest x[i] (-Inf for none); NaNs are skipped.
func maxRef(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// expShiftSumRef sets x[i] = e^(x[i] - shift) and returns their sum.
func expShiftSumRef(x []float32, shift float32) float32 {
	var sum float32
	for i, v := range x {
		e := kernels.Exp(v - shift)
		if v-shift != v-shift { // NaN: Exp's result is not defined for it
			e = v - shift
		}
		x[i] = e
		sum += e
	}
	return sum
}

// scaleRef sets x[i] *= f.
func scaleRef(x []float32, f float32) {
	for i := range x {
		x[i] *= f
	}
}
