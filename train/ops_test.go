package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/kernels/gemm"
)

// The gradient checker: every operation's backward pass (float32, as the trainer runs it) against central
// finite differences of an independent float64 implementation of its forward pass, written here from the
// equations. Each check differentiates f = Σ c ⊙ op(inputs) for random weights c (or the loss itself), so
// that every output contributes.

// numericGrad returns df/dx[i] for every i by central differences in float64.
func numericGrad(f func() float64, x []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// compareGrad fails unless analytic (float32, minus its starting value base when non-nil: the backward
// functions accumulate) matches numeric within tol relative to numeric's largest magnitude.
func compareGrad(t *testing.T, name string, analytic []float32, base []float32, numeric []float64, tol float64) {
	t.Helper()
	scale, worst := 0.0, 0.0
	for _, v := range numeric {
		scale = math.Max(scale, math.Abs(v))
	}
	if scale == 0 {
		t.Fatalf("%s: the numeric gradient is all zero: the check would prove nothing", name)
	}
	for i, v := range numeric {
		a := float64(analytic[i])
		if base != nil {
			a -= float64(base[i])
		}
		worst = math.Max(worst, math.Abs(a-v))
	}
	t.Logf("%s: max |analytic - numeric| = %.2g (largest gradient %.2g)", name, worst, scale)
	if worst > tol*scale {
		t.Errorf("%s: gradient differs from finite differences by %g, more than %g x %g", name, worst, tol, scale)
	}
}

// gradTol bounds the relative error of a float32 backward pass against float64 finite differences.
const gradTol = 1e-4

type randSource struct{ r *rand.Rand }

func newRand(seed uint64) randSource { return randSource{rand.New(rand.NewPCG(seed, 99))} }

func (r randSource) f64(n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.r.NormFloat64() * std
	}
	return x
}

func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// weighted returns Σ c·y.
func weighted(c, y []float64) float64 {
	var s float64
	for i := range y {
		s += c[i] * y[i]
	}
	return s
}

// serialGemm is gemm.Sgemm on the calling goroutine.
func serialGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int,
	beta float32, c []float32, ldc int) {
	gemm.Sgemm(nil, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func TestGradMatmul(t *testing.T) {
	r := newRand(1)
	n, in, out := 5, 37, 6
	x, w, c := r.f64(n*in, 1), r.f64(out*in, 1), r.f64(n*out, 1)
	ref := func() float64 {
		y := make([]float64, n*out)
		for i := 0; i < n; i++ {
			for o := 0; o < out; o++ {
				for k := 0; k < in; k++ {
					y[i*out+o] += x[i*in+k] * w[o*in+k]
				}
			}
		}
		return weighted(c, y)
	}
	// Forward agrees with the reference, and the backward accumulates onto what was there.
	y := make([]float32, n*out)
	matmulForward(serialGemm, y, f32(x), f32(w), n, in, out, false)
	var got float64
	for i := range y {
		got += c[i] * float64(y[i])
	}
	if math.Abs(got-ref()) > 1e-4*math.Abs(ref()) {
		t.Fatalf("matmul forward: %g, reference %g", got, ref())
	}
	base := r.f64(n*in, 1)
	dx, dw := f32(base), make([]float32, out*in)
	matmulBackward(serialGemm, dx, dw, f32(c), f32(x), f32(w), n, in, out)
	compareGrad(t, "dx", dx, f32(base), numericGrad(ref, x), gradTol)
	compareGrad(t, "dw", dw, nil, numericGrad(ref, w), gradTol)
}

func TestGradRMSNorm(t *testing.T) {
	r := newRand(2)
	n, dim, eps := 3, 16, 1e-5
	x, w, c := r.f64(n*dim, 1), r.f64(dim, 1), r.f64(n*dim, 1)
	ref := func() float64 {
		var s float64
		for i := 0; i < n; i++ {
			var ss float64
			for j := 0; j < dim; j++ {
				ss += x[i*dim+j] * x[i*dim+j]
			}
			rr := 1 / math.Sqrt(ss/float64(dim)+eps)
			for j := 0; j < dim; j++ {
				s += c[i*dim+j] * x[i*dim+j] * rr * w[j]
			}
		}
		return s
	}
	out, rstd := make([]float32, n*dim), make([]float32, n)
	rmsnormForward(out, rstd, f32(x), f32(w), n, dim, float32(eps))
	dx, dw := make([]float32, n*dim), make([]float32, dim)
	rmsnormBackward(dx, dw, f32(c), f32(x), f32(w), rstd, n, dim)
	compareGrad(t, "dx", dx, nil, numericGrad(ref, x), gradTol)
	compareGrad(t, "dw", dw, nil, numericGrad(ref, w), gradTol)
}

func TestGradRoPE(t *testing.T) {
	r := newRand(3)
	heads, hd, pos, theta := 3, 8, 13, 10000.0
	x, c := r.f64(heads*hd, 1), r.f64(heads*hd, 1)
	ref := func() float64 {
		var s float64
		for h := 0; h < heads; h++ {
			for j := 0; j < hd/2; j++ {
				ang := float64(pos) * math.Pow(theta, -2*float64(j)/float64(hd))
				a, b := x[h*hd+2*j], x[h*hd+2*j+1]
				s += c[h*hd+2*j]*(a*math.Cos(ang)-b*math.Sin(ang)) + c[h*hd+2*j+1]*(a*math.Sin(ang)+b*math.Cos(ang))
			}
		}
		return s
	}
	cos, sin := make([]float32, hd/2), make([]float32, hd/2)
	for j := range cos {
		ang := float64(pos) * math.Pow(theta, -2*float64(j)/float64(hd))
		cos[j], sin[j] = float32(math.Cos(ang)), float32(math.Sin(ang))
	}
	y := f32(x)
	ropeForward(y, cos, sin)
	var got float64
	for i := range y {
		got += c[i] * float64(y[i])
	}
	if math.Abs(got-ref()) > 1e-5 {
		t.Fatalf("rope forward: %g, reference %g", got, ref())
	}
	dx := f32(c) // the gradient of the output, turned in place into the input's
	ropeBackward(dx, cos, sin)
	compareGrad(t, "dx", dx, nil, numericGrad(ref, x), gradTol)
}

// TestGradAttention covers a sequence longer than attnBlock (so blocks see earlier blocks' keys), with q,
// k, v and the output rows strided as in the packed qkv buffer.
func TestGradAttention(t *testing.T) {
	r := newRand(4)
	tl, hd := attnBlock+9, 4
	ld := 3 * hd // q, k, v of a token side by side, as in qkv
	qkv, c := r.f64(tl*ld, 1), r.f64(tl*hd, 1)
	scale := 1 / math.Sqrt(float64(hd))
	ref := func() float64 {
		var s float64
		p := make([]float64, tl)
		for i := 0; i < tl; i++ {
			mx := math.Inf(-1)
			for j := 0; j <= i; j++ {
				var d float64
				for e := 0; e < hd; e++ {
					d += qkv[i*ld+e] * qkv[j*ld+hd+e]
				}
				p[j] = d * scale
				mx = math.Max(mx, p[j])
			}
			var sum float64
			for j := 0; j <= i; j++ {
				p[j] = math.Exp(p[j] - mx)
				sum += p[j]
			}
			for e := 0; e < hd; e++ {
				var o float64
				for j := 0; j <= i; j++ {
					o += p[j] / sum * qkv[j*ld+2*hd+e]
				}
				s += c[i*hd+e] * o
			}
		}
		return s
	}
	x := f32(qkv)
	probs, out := make([]float32, attnBlock*tl), make([]float32, tl*hd)
	attentionForward(nil, out, x, x[hd:], x[2*hd:], probs, tl, hd, ld, ld, ld, hd, float32(scale))
	var got float64
	for i := range out {
		got += c[i] * float64(out[i])
	}
	if math.Abs(got-ref()) > 1e-4*math.Abs(ref()) {
		t.Fatalf("attention forward: %g, reference %g", got, ref())
	}
	dx := make([]float32, tl*ld)
	dp := make([]float32, attnBlock*tl)
	attentionBackward(nil, dx, dx[hd:], dx[2*hd:], f32(c), x, x[hd:], x[2*hd:], probs, dp, make([]float32, hd*tl), tl,
		hd, ld, ld, ld, hd, float32(scale))
	compareGrad(t, "dq dk dv", dx, nil, numericGrad(ref, qkv), gradTol)
}

func TestGradSwiGLU(t *testing.T) {
	r := newRand(5)
	h := 19 // not a multiple of 8: kernels.SwiGLU's vector and scalar paths both run
	gu, c := r.f64(2*h, 2), r.f64(h, 1)
	gu[3], gu[5] = 0, 4e-4 // the small-gate branch
	ref := func() float64 {
		var s float64
		for j := 0; j < h; j++ {
			g := gu[j]
			s += c[j] * g / (1 + math.Exp(-g)) * gu[h+j]
		}
		return s
	}
	act := make([]float32, h)
	swigluForward(act, f32(gu))
	var got float64
	for j := range act {
		got += c[j] * float64(act[j])
	}
	if math.Abs(got-ref()) > 1e-5*math.Max(1, math.Abs(ref())) {
		t.Fatalf("swiglu forward: %g, reference %g", got, ref())
	}
	d := make([]float32, 2*h)
	ones := make([]float32, h)
	for i := range ones {
		ones[i] = 1
	}
	swigluBackward(d, f32(c), f32(gu), make([]float32, h), ones)
	compareGrad(t, "dgate dup", d, nil, numericGrad(ref, gu), gradTol)
}

func TestGradEmbedding(t *testing.T) {
	r := newRand(6)
	vocab, dim := 7, 5
	tokens := []int32{3, 0, 3, 6}
	table, c := r.f64(vocab*dim, 1), r.f64(len(tokens)*dim, 1)
	ref := func() float64 {
		var s float64
		for i, tok := range tokens {
			for j := 0; j < dim; j++ {
				s += c[i*dim+j] * table[int(tok)*dim+j]
			}
		}
		return s
	}
	out := make([]float32, len(tokens)*dim)
	embeddingForward(out, f32(table), tokens, dim)
	dt := make([]float32, vocab*dim)
	embeddingBackward(dt, f32(c), tokens, dim)
	compareGrad(t, "dtable", dt, nil, numericGrad(ref, table), gradTol)
}

func TestGradCrossEntropy(t *testing.T) {
	r := newRand(7)
	logits := r.f64(37, 3)
	const target = 11
	ref := func() float64 {
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, v)
		}
		var sum float64
		for _, v := range logits {
			sum += math.Exp(v - mx)
		}
		return math.Log(sum) + mx - logits[target]
	}
	g := f32(logits)
	const scale = 0.5
	loss := crossEntropy(g, target, scale)
	if math.Abs(loss-ref()) > 1e-5 {
		t.Fatalf("cross-entropy: %g, reference %g", loss, ref())
	}
	num := numericGrad(ref, logits)
	for i := range num {
		num[i] *= scale
	}
	compareGrad(t, "dlogits", g, nil, num, gradTol)
}
