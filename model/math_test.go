package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpf compares expf with math.Exp over the range softmax and silu use, and at the edges.
func TestExpf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float32{0, -1e-8, 1e-8, 1, -1, 0.34657359, -0.34657359, -87, -87.3, 88, 88.7, -100, 100, -20, 20}
	for range 100000 {
		xs = append(xs, float32(rng.Float64()*176-88))
	}
	for _, x := range xs {
		got := float64(expf(x))
		want := math.Exp(float64(x))
		if want > math.MaxFloat32 {
			if !math.IsInf(got, 1) {
				t.Fatalf("expf(%g) = %g, want +Inf", x, got)
			}
			continue
		}
		if want < 1.2e-38 { // below the float32 normal range: only require smallness
			if got > 1.2e-38 {
				t.Fatalf("expf(%g) = %g, want ~%g", x, got, want)
			}
			continue
		}
		if rel := math.Abs(got-want) / want; rel > 3e-7 {
			t.Fatalf("expf(%g) = %.9g, want %.9g (relative error %.3g)", x, got, want, rel)
		}
	}
}

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
