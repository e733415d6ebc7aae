package gemm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// softmaxPaths lists the Go loops (nil) and each vector kernel set this CPU runs.
func softmaxPaths() []*isa { return append([]*isa{nil}, supportedISAs()...) }

func isaName(s *isa) string {
	if s == nil {
		return "go"
	}
	return s.name
}

// softmax64 returns softmax(x) and logsumexp(x) in float64.
func softmax64(x []float32) ([]float64, float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - m)
	}
	p := make([]float64, len(x))
	for i, v := range x {
		p[i] = math.Exp(float64(v)-m) / sum
	}
	return p, m + math.Log(sum)
}

// TestSoftmax checks Softmax and SoftmaxCrossEntropy on every path against float64, on row lengths around
// the vector widths and at the LM head's 32000, with logits spread like a trained model's (and -Inf entries).
func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range softmaxPaths() {
		for _, n := range []int{1, 5, 16, 31, 32, 33, 64, 100, 256, 32000} {
			for _, spread := range []float64{1, 10, 40} {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(spread * rng.NormFloat64())
					if n > 1 && i%17 == 3 {
						x[i] = float32(math.Inf(-1)) // masked
					}
				}
				want, lse := softmax64(x)
				target := rng.IntN(n)
				if math.IsInf(float64(x[target]), -1) {
					target = 0
				}
				y := append([]float32(nil), x...)
				gotLSE := softmax(s, y)
				if d := math.Abs(float64(gotLSE) - lse); d > 1e-6*(1+math.Abs(lse)) {
					t.Fatalf("%s n=%d spread=%g: logsumexp %g, want %g", isaName(s), n, spread, gotLSE, lse)
				}
				m := float64(maxRef(x))
				// relative error: a few ulps, plus the rounding of x_i - max in float32 (|x_i - max| * 2^-24)
				rel := func(i int) float64 { return 2e-6 + math.Abs(float64(x[i])-m)*6e-8 }
				for i := range y {
					if d := math.Abs(float64(y[i]) - want[i]); d > rel(i)*want[i]+1e-37 {
						t.Fatalf("%s n=%d spread=%g: p[%d] = %g, want %g", isaName(s), n, spread, i, y[i], want[i])
					}
				}
				g := append([]float32(nil), x...)
				const scale = 0.25
				loss := softmaxCrossEntropy(s, g, target, scale)
				if wantLoss := lse - float64(x[target]); math.Abs(loss-wantLoss) > 1e-5*(1+math.Abs(wantLoss)) {
					t.Fatalf("%s n=%d: loss %g, want %g", isaName(s), n, loss, wantLoss)
				}
				for i := range g {
					w := scale * want[i]
					if i == target {
						w -= scale
					}
					if d := math.Abs(float64(g[i]) - w); d > rel(i)*scale*want[i]+2e-7*scale {
						t.Fatalf("%s n=%d: grad[%d] = %g, want %g", isaName(s), n, i, g[i], w)
					}
				}
			}
		}
	}
}

// TestSoftmaxNaN checks that a NaN logit makes the loss NaN on every path, wherever it sits.
func TestSoftmaxNaN(t *testing.T) {
	for _, s := range softmaxPaths() {
		for _, at := range []int{0, 7, 40, 99} {
			x := make([]float32, 100)
			for i := range x {
				x[i] = float32(i % 7)
			}
			x[at] = float32(math.NaN())
			if loss := softmaxCrossEntropy(s, x, 50, 1); !math.IsNaN(loss) {
				t.Fatalf("%s NaN at %d: loss %g, want NaN", isaName(s), at, loss)
			}
		}
	}
}

// BenchmarkSoftmaxCrossEntropy times one LM head row of 32000 logits per path.
func BenchmarkSoftmaxCrossEntropy(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	x := make([]float32, 32000)
	for i := range x {
		x[i] = float32(3 * rng.NormFloat64())
	}
	y := make([]float32, len(x))
	for _, s := range softmaxPaths() {
		b.Run(isaName(s), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				copy(y, x)
				softmaxCrossEntropy(s, y, 123, 1.0/1024)
			}
		})
	}
}
