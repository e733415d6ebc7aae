package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSoftmax checks softmax against a float64 computation, including large offsets.
func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64()*10 + 50)
		}
		want := make([]float64, n)
		var sum float64
		for i, v := range x {
			want[i] = math.Exp(float64(v) - 50)
			sum += want[i]
		}
		softmax(x)
		for i := range x {
			if d := math.Abs(float64(x[i]) - want[i]/sum); d > 1e-6 {
				t.Fatalf("n=%d: p[%d] = %g, want %g", n, i, x[i], want[i]/sum)
			}
		}
	}
}
