package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/weights"
)

// Options sizes a Model's buffers and picks its head.
type Options struct {
	// Head is HeadLM (the default) or HeadReward.
	Head Head
	// Threads caps the worker goroutines of matrix products and attention; 0 means one per CPU. Leave a
	// core free (e.g. Threads 1 on 2 cores) to keep a serving process on the same machine responsive.
	Threads int
	// MaxTokens is the most tokens one forward pass takes (a micro-batch: the lengths of its sequences
	// summed). Activations are allocated for it once. 0 means 4096.
	MaxTokens int
	// MaxSeqLen is the longest sequence; 0 means the smaller of MaxTokens and the model's context length.
	MaxSeqLen int
	// Pooling is how a reward model reads a sequence's hidden states: PoolLast (the default) or PoolMean.
	Pooling Pooling
}

// Model is a LLaMA-family model being trained: parameters and gradients (one allocation each, same
// layout), the activations of the last forward pass, and the worker pool. A Model is not safe for
// concurrent use.
type Model struct {
	cfg    model.Config
	opts   Options
	layout layout

	flat, gradFlat []float32 // the parameters and their gradients, layout.size values each
	normParts      []float64 // (chunks of optChunk values) squared gradient norm of each chunk
	p, g           params    // flat and gradFlat carved into tensors

	cos, sin []float32 // (max_seq_len, head_dim/2) rotary cosines and sines of each position

	pool    *kernels.Pool   // matrix products over the whole batch
	mm      gemmFunc        // m.sgemm, the whole-batch product
	workers []*kernels.Pool // (threads) one-thread pools for the matrix products inside a parallel task

	b     batchPlan   // the sequences of the last forward pass
	a     activations // what the backward pass needs, per layer
	s     scratch     // gradients flowing down, one layer at a time
	tasks tasks       // the parallel loops, built once
	ready bool        // the activations hold a forward pass that Backward may use
}

// defaultMaxTokens is Options.MaxTokens when zero.
const defaultMaxTokens = 4096

// New returns a model of the given shape with freshly initialized weights: GPT-2/llm.c's scheme, normal
// with standard deviation 0.02 for matrices and 0.02/sqrt(2*layers) for the projections into the residual
// stream (attn_output, ffn_down), ones for norms, zero for the reward head's bias. The same seed gives the
// same weights. cfg must be valid as model.ConfigFromMetadata returns it (VocabSize set); TiedOutput says
// whether a language model gets an output.weight of its own.
func New(cfg model.Config, opts Options, seed uint64) (*Model, error) {
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x696e6974)) // "init"
	normal := func(x []float32, std float64) {
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
	}
	ones := func(x []float32) {
		for i := range x {
			x[i] = 1
		}
	}
	resid := 0.02 / math.Sqrt(2*float64(cfg.NLayers))
	p := &m.p
	normal(p.tokEmbd, 0.02)
	ones(p.attnNorm)
	normal(p.wqkv, 0.02)
	normal(p.wo, resid)
	ones(p.ffnNorm)
	normal(p.wGateUp, 0.02)
	normal(p.wDown, resid)
	ones(p.outNorm)
	normal(p.output, 0.02)
	m.initRewardHead(seed)
	return m, nil
}

// initRewardHead draws the reward head's weight (normal, std 0.02, as Hugging Face initializes a sequence
// classifier's score layer) from its own seeded source, so a head on top of loaded weights is reproducible.
func (m *Model) initRewardHead(seed uint64) {
	if m.p.rmW == nil {
		return
	}
	rng := rand.New(rand.NewPCG(seed, 0x68656164)) // "head"
	for i := range m.p.rmW {
		m.p.rmW[i] = float32(rng.NormFloat64() * 0.02)
	}
	m.p.rmB[0] = 0
}

// Open reads a checkpoint (GGUF, safetensors or llama2.c, see weights.Open) and returns FromCheckpoint's
// model. The file is closed before Open returns: the model holds a float32 copy of every weight.
func Open(path string, opts Options, seed uint64) (*Model, error) {
	ck, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer ck.Close()
	return FromCheckpoint(ck, opts, seed)
}

// FromCheckpoint builds a model from a checkpoint's weights, dequantized to float32 whatever their type. A
// reward model built from a language model drops its output.weight and gets a new scalar head drawn from
// seed (a checkpoint that already holds rm_head.weight and rm_head.bias keeps them); a language model keeps
// the checkpoint's tied or untied output. Llama-3 rope scaling (rope_freqs.weight) is not supported.
func FromCheckpoint(ck *weights.Checkpoint, opts Options, seed uint64) (*Model, error) {
	if ck == nil {
		return nil, errors.New("train: nil checkpoint")
	}
	cfg, err := model.ConfigFromMetadata(ck.Metadata)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if cfg.RopeScaling == model.RopeScalingLlama3 || ck.Tensor("rope_freqs.weight") != nil {
		return nil, fmt.Errorf("train: %w: llama3 rope scaling", model.ErrUnsupported)
	}
	emb := ck.Tensor("token_embd.weight")
	if emb == nil {
		return nil, errors.New("train: missing tensor token_embd.weight")
	}
	if cfg.VocabSize == 0 && len(emb.Shape) == 2 {
		cfg.VocabSize = emb.Shape[1]
	}
	cfg.TiedOutput = ck.Tensor("output.weight") == nil
	m, err := newModel(cfg, opts)
	if err != nil {
		return nil, err
	}
	hasHead := ck.Tensor(RewardHeadWeight) != nil && ck.Tensor(RewardHeadBias) != nil
	if m.p.rmW != nil && !hasHead {
		m.initRewardHead(seed)
	}
	for _, t := range m.Tensors() {
		if !hasHead && (t.Name == RewardHeadWeight || t.Name == RewardHeadBias) {
			continue
		}
		if err := readTensor(ck, t); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readTensor dequantizes the checkpoint's tensor named t.Name into t.Data after checking its shape (GGUF
// order, the reverse of t.Shape; a vector may be stored as [n, 1]).
func readTensor(ck *weights.Checkpoint, t Tensor) error {
	src := ck.Tensor(t.Name)
	if src == nil {
		return fmt.Errorf("train: missing tensor %s", t.Name)
	}
	want := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		want[len(t.Shape)-1-i] = d
	}
	shape := src.Shape
	if len(want) == 1 && len(shape) == 2 && shape[1] == 1 {
		shape = shape[:1]
	}
	if !equalInts(shape, want) {
		return fmt.Errorf("train: tensor %s has shape %v, want %v", t.Name, src.Shape, want)
	}
	if err := weights.Dequantize(src.Type, src.Data, t.Data); err != nil {
		return fmt.Errorf("train: tensor %s: %w", t.Name, err)
	}
	return nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newModel checks cfg and opts and allocates everything a model needs, parameters zeroed.
func newModel(cfg model.Config, opts Options) (*Model, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if opts.Head != HeadLM && opts.Head != HeadReward {
		return nil, fmt.Errorf("train: unknown head %v", opts.Head)
	}
	if opts.Pooling != PoolLast && (opts.Pooling != PoolMean || opts.Head != HeadReward) {
		return nil, fmt.Errorf("train: pooling %v needs a reward model", opts.Pooling)
	}
	if opts.Threads < 0 || opts.Threads > 1024 {
		return nil, fmt.Errorf("train: thread count %d out of range [0, 1024]", opts.Threads)
	}
	if opts.Threads == 0 {
		opts.Threads = runtime.NumCPU()
	}
	if opts.MaxTokens < 0 || opts.MaxSeqLen < 0 {
		return nil, fmt.Errorf("train: negative MaxTokens %d or MaxSeqLen %d", opts.MaxTokens, opts.MaxSeqLen)
	}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = defaultMaxTokens
	}
	if opts.MaxSeqLen == 0 {
		opts.MaxSeqLen = min(opts.MaxTokens, cfg.ContextLen)
	}
	if opts.MaxSeqLen > cfg.ContextLen || opts.MaxSeqLen > opts.MaxTokens {
		return nil, fmt.Errorf("train: MaxSeqLen %d is longer than the context length %d or MaxTokens %d",
			opts.MaxSeqLen, cfg.ContextLen, opts.MaxTokens)
	}
	if cfg.RopeScaling == model.RopeScalingLlama3 {
		return nil, fmt.Errorf("train: %w: llama3 rope scaling", model.ErrUnsupported)
	}
	m := &Model{cfg: cfg, opts: opts, layout: newLayout(cfg, opts.Head)}
	m.flat = make([]float32, m.layout.size)
	m.gradFlat = make([]float32, m.layout.size)
	m.normParts = make([]float64, (m.layout.size+optChunk-1)/optChunk)
	m.p = m.layout.carve(m.flat)
	m.g = m.layout.carve(m.gradFlat)
	m.cos, m.sin = ropeTables(cfg, opts.MaxSeqLen)
	m.pool = kernels.NewPool(opts.Threads)
	m.workers = make([]*kernels.Pool, opts.Threads)
	for i := range m.workers {
		m.workers[i] = kernels.NewPool(1)
	}
	m.b.init(opts.MaxTokens)
	m.a.init(cfg, opts, m.layout.qkvRows)
	m.s.init(cfg, opts, m.layout.qkvRows, opts.Threads)
	m.tasks.init(m)
	return m, nil
}

// checkConfig rejects shapes the passes cannot run.
func checkConfig(c model.Config) error {
	switch {
	case c.Dim <= 0 || c.HiddenDim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.VocabSize <= 0 ||
		c.ContextLen <= 0:
		return fmt.Errorf("train: config has a non-positive size: %+v", c)
	case c.Dim%c.NHeads != 0 || c.HeadDim != c.Dim/c.NHeads || c.HeadDim%2 != 0:
		return fmt.Errorf("train: head dimension %d does not fit dim %d and %d heads (it must be dim/heads, even)",
			c.HeadDim, c.Dim, c.NHeads)
	case c.NHeads%c.NKVHeads != 0:
		return fmt.Errorf("train: %d heads are not a multiple of %d kv heads", c.NHeads, c.NKVHeads)
	case !(c.NormEps > 0) || !(c.RopeTheta > 1):
		return fmt.Errorf("train: bad norm epsilon %g or rope theta %g", c.NormEps, c.RopeTheta)
	case c.RopeScaling == model.RopeScalingLinear && !(c.RopeScaleFactor > 0):
		return fmt.Errorf("train: bad rope scale factor %g", c.RopeScaleFactor)
	}
	return nil
}

// ropeTables returns the cosines and sines of every position's rotary angles, computed as package model
// does (angles in float64, rounded to float32).
func ropeTables(cfg model.Config, maxLen int) (cos, sin []float32) {
	half := cfg.HeadDim / 2
	cos, sin = make([]float32, maxLen*half), make([]float32, maxLen*half)
	for j := 0; j < half; j++ {
		f := math.Pow(float64(cfg.RopeTheta), -2*float64(j)/float64(cfg.HeadDim))
		if cfg.RopeScaling == model.RopeScalingLinear {
			f /= float64(cfg.RopeScaleFactor)
		}
		for p := 0; p < maxLen; p++ {
			s, c := math.Sincos(float64(p) * f)
			cos[p*half+j], sin[p*half+j] = float32(c), float32(s)
		}
	}
	return cos, sin
}

// Config returns the model's hyperparameters. TiedOutput is true when a language model's logits come from
// token_embd.weight (for a reward model it only says whether the checkpoint it came from was tied).
func (m *Model) Config() model.Config { return m.cfg }

// Head returns the model's head.
func (m *Model) Head() Head { return m.opts.Head }

// Options returns the options the model was built with, zeros replaced by their defaults.
func (m *Model) Options() Options { return m.opts }

// NumParams returns the number of trainable values.
func (m *Model) NumParams() int { return m.layout.size }

// Tensors returns every parameter as a GGUF-named view of the model's memory, in GGUF file order:
// token_embd.weight, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
// ffn_down}.weight, output_norm.weight, output.weight (untied language models only), rm_head.weight and
// rm_head.bias (reward models only). attn_q and attn_k rows are in GGUF's interleaved-pair rotary order.
func (m *Model) Tensors() []Tensor { return m.layout.tensors(m.p) }

// Grads returns the gradients accumulated since the last ZeroGrad, with Tensors' names and shapes.
func (m *Model) Grads() []Tensor { return m.layout.tensors(m.g) }

// ScoreHead returns a reward model's head: the score is dot(w, h) + b with h the final-normed hidden state of
// the last token (with PoolMean, their mean over the sequence). w aliases the model's memory. A language model
// returns nil, 0.
func (m *Model) ScoreHead() (w []float32, b float32) {
	if m.p.rmW == nil {
		return nil, 0
	}
	return m.p.rmW, m.p.rmB[0]
}

// Pooling returns how a reward model's head reads the hidden states (Options.Pooling).
func (m *Model) Pooling() Pooling { return m.opts.Pooling }

// ZeroGrad clears the gradients.
func (m *Model) ZeroGrad() { m.pool.Run(len(m.normParts), 1, m.tasks.zeroGrads) }

// zeroGradChunks clears the gradients of chunks [lo, hi) of optChunk values.
func (m *Model) zeroGradChunks(lo, hi, _ int) {
	clear(m.gradFlat[lo*optChunk : min(hi*optChunk, len(m.gradFlat))])
}

// Close stops the worker goroutines. The model must not be used afterwards.
func (m *Model) Close() {
	m.pool.Close()
	for _, w := range m.workers {
		w.Close()
	}
}
