package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExp compares Exp with math.Exp over the range softmax and silu use, and at the edges.
func TestExp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float32{0, -1e-8, 1e-8, 1, -1, 0.34657359, -0.34657359, -87, -87.3, 88, 88.7, -100, 100, -20, 20}
	for range 100000 {
		xs = append(xs, float32(rng.Float64()*176-88))
	}
	for _, x := range xs {
		got := float64(Exp(x))
		want := math.Exp(float64(x))
		if want > math.MaxFloat32 {
			if !math.IsInf(got, 1) {
				t.Fatalf("Exp(%g) = %g, want +Inf", x, got)
			}
			continue
		}
		if want < 1.2e-38 { // below the float32 normal range: only require smallness
			if got > 1.2e-38 {
				t.Fatalf("Exp(%g) = %g, want ~%g", x, got, want)
			}
			continue
		}
		if rel := math.Abs(got-want) / want; rel > 3e-7 {
			t.Fatalf("Exp(%g) = %.9g, want %.9g (relative error %.3g)", x, got, want, rel)
		}
	}
}

// TestSwiGLU compares SwiGLU (AVX2 for groups of 8 when available, Go for the rest) and the Go path with a
// float64 computation, over lengths with and without a tail and gate values across exp's range, including
// the saturated ends.
func TestSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 64, 1000, 5632} {
		gate := make([]float32, n)
		up := make([]float32, n)
		for i := range gate {
			gate[i] = float32(rng.NormFloat64() * 4)
			if i%97 == 3 {
				gate[i] = float32(rng.Float64()*300 - 150) // e^-g past float32's range either way
			}
			up[i] = float32(rng.NormFloat64())
		}
		want := make([]float64, n)
		for i, g := range gate {
			want[i] = float64(g) / (1 + math.Exp(-float64(g))) * float64(up[i])
		}
		for _, path := range []struct {
			name string
			f    func(gate, up []float32)
		}{{"SwiGLU", SwiGLU}, {"go", swigluGo}} {
			got := append([]float32(nil), gate...)
			path.f(got, up)
			for i := range got {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-6*math.Abs(want[i])+1e-30 {
					t.Fatalf("%s n=%d: value %d (gate %g, up %g) = %.9g, want %.9g", path.name, n, i, gate[i], up[i],
						got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkSwiGLU times one decode step's worth of SwiGLU for a batch of 5 on the 1.1B shape (5 x 5632
// values) with SwiGLU (AVX2 when available) and with the Go loop.
func BenchmarkSwiGLU(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	gate, up := make([]float32, 5*5632), make([]float32, 5*5632)
	for i := range gate {
		gate[i], up[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	work := make([]float32, len(gate))
	for _, path := range []struct {
		name string
		f    func(gate, up []float32)
	}{{"SwiGLU", SwiGLU}, {"go", swigluGo}} {
		b.Run(path.name, func(b *testing.B) {
			for b.Loop() {
				copy(work, gate)
				path.f(work, up)
			}
		})
	}
}

// TestExpShifted compares ExpShifted (AVX2 for groups of 8 when available, Go for the tail) with float64
// e^(x-max) and 1/sum over lengths with and without a tail, the maximum in the tail or in the vector part, and
// scores far below the maximum (whose exponentials underflow).
func TestExpShifted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 3, 8, 9, 16, 31, 129, 500} {
		for _, maxAt := range []int{0, n - 1, n / 2} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 6)
				if i%13 == 5 {
					x[i] = float32(-100 - rng.Float64()*1e4) // e^(x-max) below float32's range
				}
			}
			x[maxAt] = 30
			want := make([]float64, n)
			var sum float64
			for i, v := range x {
				want[i] = math.Exp(float64(v - 30)) // the difference rounded to float32, as ExpShifted takes it
				sum += want[i]
			}
			got := append([]float32(nil), x...)
			inv := ExpShifted(got)
			if rel := math.Abs(float64(inv)*sum - 1); rel > 1e-6 {
				t.Fatalf("n %d, max at %d: 1/sum = %g, want %g", n, maxAt, inv, 1/sum)
			}
			for i := range got {
				d := math.Abs(float64(got[i]) - want[i])
				if want[i] < 1.2e-38 {
					if got[i] > 1.2e-38 || got[i] < 0 {
						t.Fatalf("n %d: x[%d] = %g: e^(x-max) = %g, want ~%g", n, i, x[i], got[i], want[i])
					}
					continue
				}
				if d > 3e-7*want[i] {
					t.Fatalf("n %d, max at %d: e^(%g-max) = %.9g, want %.9g", n, maxAt, x[i], got[i], want[i])
				}
			}
		}
	}
}
