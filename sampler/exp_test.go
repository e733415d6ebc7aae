package sampler

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpNegMatchesMathExp(t *testing.T) {
	check := func(x float64) {
		t.Helper()
		want, got := math.Exp(x), expNeg(x)
		if x < -708 {
			if got != 0 {
				t.Fatalf("expNeg(%v) = %v, want 0 below -708", x, got)
			}
			return
		}
		if r := math.Abs(got-want) / want; !(r < 1e-9) {
			t.Fatalf("expNeg(%v) = %v, math.Exp = %v (relative error %.3g)", x, got, want, r)
		}
	}
	for _, x := range []float64{0, -0.5 * math.Ln2, -math.Ln2, -1, -1e-300, -87.3, -700, -708, -708.0001, -745, -1e308} {
		check(x)
	}
	r := rand.New(rand.NewPCG(31, 32))
	for range 200000 {
		check(-r.Float64() * 720)
		check(-r.ExpFloat64())
	}
	if got := expNeg(math.Inf(-1)); got != 0 {
		t.Errorf("expNeg(-Inf) = %v", got)
	}
}

func BenchmarkExp(b *testing.B) {
	xs := make([]float64, 32000)
	r := rand.New(rand.NewPCG(33, 34))
	for i := range xs {
		xs[i] = -r.Float64() * 30
	}
	var sink float64
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			for _, x := range xs {
				sink += math.Exp(x)
			}
		}
	})
	b.Run("expNeg", func(b *testing.B) {
		for b.Loop() {
			for _, x := range xs {
				sink += expNeg(x)
			}
		}
	})
	_ = sink
}
