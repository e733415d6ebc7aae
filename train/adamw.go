package train

import (
	"fmt"
	"math"
)

// AdamWConfig holds AdamW's hyperparameters (Loshchilov & Hutter's decoupled weight decay, as
// torch.optim.AdamW). Zero values are not defaults: use DefaultAdamW and change what differs.
type AdamWConfig struct {
	// Beta1 and Beta2 are the decay rates of the first and second moment estimates.
	Beta1, Beta2 float64
	// Eps is added to the square root of the second moment.
	Eps float64
	// WeightDecay multiplies each decayed parameter by (1 - lr*WeightDecay) every step. It applies to
	// matrices and embeddings, not to norm weights or the reward head's bias.
	WeightDecay float64
}

// DefaultAdamW is llm.c's and most LLaMA recipes' setting: betas (0.9, 0.95), eps 1e-8, weight decay 0.1.
var DefaultAdamW = AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}

func (c AdamWConfig) check() error {
	if !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1) || !(c.Eps > 0) || !(c.WeightDecay >= 0) {
		return fmt.Errorf("train: bad AdamW settings %+v (betas in [0, 1), eps > 0, weight decay >= 0)", c)
	}
	return nil
}

// Optimizer is AdamW's state for one model: the two moment estimates (the parameters' layout) and the
// number of steps taken.
type Optimizer struct {
	cfg   AdamWConfig
	m, v  []float32
	steps int

	// The step being run, read by the pool's workers.
	model *Model
	lr    float64
	bc1   float64 // 1 - beta1^t
	bc2   float64 // sqrt(1 - beta2^t)
	task  taskFunc
}

// NewAdamW returns an optimizer for m with zero moments.
func NewAdamW(m *Model, cfg AdamWConfig) (*Optimizer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	o := &Optimizer{cfg: cfg, m: make([]float32, m.layout.size), v: make([]float32, m.layout.size), model: m}
	o.task = o.updateRange
	return o, nil
}

// Steps returns the number of updates made.
func (o *Optimizer) Steps() int { return o.steps }

// optChunk is how many values one pool item of the optimizer (and of the gradient norm) covers; fixed, so
// results do not depend on the thread count.
const optChunk = 1 << 16

// Step updates the model's parameters from its gradients with learning rate lr, as torch.optim.AdamW does
// (in float32, with the bias corrections in float64):
//
//	p *= 1 - lr·wd (decayed tensors); m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
//	p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
func (o *Optimizer) Step(lr float64) {
	o.steps++
	o.lr = lr
	o.bc1 = 1 - math.Pow(o.cfg.Beta1, float64(o.steps))
	o.bc2 = math.Sqrt(1 - math.Pow(o.cfg.Beta2, float64(o.steps)))
	m := o.model
	m.pool.Run((m.layout.size+optChunk-1)/optChunk, 1, o.task)
}

// updateRange updates the values of chunks [lo, hi).
func (o *Optimizer) updateRange(lo, hi, _ int) {
	m := o.model
	b1, b2 := float32(o.cfg.Beta1), float32(o.cfg.Beta2)
	stepSize := float32(o.lr / o.bc1)
	bc2, eps := float32(o.bc2), float32(o.cfg.Eps)
	for _, sg := range m.layout.segments {
		start, end := max(sg.off, lo*optChunk), min(sg.off+sg.size, hi*optChunk)
		if start >= end {
			continue
		}
		decay := float32(1)
		if sg.decay {
			decay = float32(1 - o.lr*o.cfg.WeightDecay)
		}
		p, g := m.flat[start:end], m.gradFlat[start:end]
		mm, vv := o.m[start:end], o.v[start:end]
		for i, gi := range g {
			mi := b1*mm[i] + (1-b1)*gi
			vi := b2*vv[i] + (1-b2)*gi*gi
			mm[i], vv[i] = mi, vi
			p[i] = p[i]*decay - stepSize*mi/(float32(math.Sqrt(float64(vi)))/bc2+eps)
		}
	}
}

// GradNorm returns the L2 norm of all gradients, summed in float64: per chunk of optChunk values (in
// parallel), then over the chunks in order.
func (m *Model) GradNorm() float64 {
	m.pool.Run(len(m.normParts), 1, m.tasks.gradNorm)
	var total float64
	for _, s := range m.normParts {
		total += s
	}
	return math.Sqrt(total)
}

// gradNormChunks sums the squares of the gradients of chunks [lo, hi) into normParts.
func (m *Model) gradNormChunks(lo, hi, _ int) {
	for c := lo; c < hi; c++ {
		var s float64
		for _, g := range m.gradFlat[c*optChunk : min((c+1)*optChunk, len(m.gradFlat))] {
			s += float64(g) * float64(g)
		}
		m.normParts[c] = s
	}
}

// ClipGradNorm scales the gradients so that their global L2 norm is at most maxNorm, as
// torch.nn.utils.clip_grad_norm_ does (factor maxNorm/(norm+1e-6) when below 1), and returns the norm
// before clipping. maxNorm <= 0 only measures.
func (m *Model) ClipGradNorm(maxNorm float64) float64 {
	norm := m.GradNorm()
	if maxNorm <= 0 {
		return norm
	}
	if c := maxNorm / (norm + 1e-6); c < 1 {
		m.tasks.gradScale = float32(c)
		m.pool.Run(len(m.normParts), 1, m.tasks.scaleGrads)
	}
	return norm
}

// scaleGradChunks multiplies the gradients of chunks [lo, hi) by tasks.gradScale.
func (m *Model) scaleGradChunks(lo, hi, _ int) {
	f := m.tasks.gradScale
	for i := lo * optChunk; i < min(hi*optChunk, len(m.gradFlat)); i++ {
		m.gradFlat[i] *= f
	}
}

// Schedule is a learning rate schedule: linear warmup, then cosine decay, as llm.c's.
type Schedule struct {
	// LR is the peak learning rate.
	LR float64
	// Warmup is the number of warmup steps: step s < Warmup uses LR·(s+1)/Warmup.
	Warmup int
	// Steps is the total number of optimizer steps; after warmup the rate follows a half cosine from LR at
	// step Warmup towards LR·MinLRRatio at step Steps.
	Steps int
	// MinLRRatio is the final rate as a fraction of LR (0.1 in llm.c).
	MinLRRatio float64
}

// At returns the learning rate of step (counted from 0).
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup)
	}
	lo := s.LR * s.MinLRRatio
	if s.Steps <= s.Warmup {
		return s.LR
	}
	ratio := min(1, float64(step-s.Warmup)/float64(s.Steps-s.Warmup))
	return lo + 0.5*(1+math.Cos(math.Pi*ratio))*(s.LR-lo)
}
