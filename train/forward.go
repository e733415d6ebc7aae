package train

import (
	"fmt"
	"math"

	"github.com/bestofn/bestofn/model"
)

// batchPlan is the micro-batch of the last forward pass: sequences packed back to back, no padding.
type batchPlan struct {
	n      int     // tokens
	nseq   int     // sequences
	tokens []int32 // (max_tokens)
	pos    []int32 // (max_tokens) each token's position in its sequence
	starts []int   // (max_tokens+1) first token of each sequence; starts[nseq] = n
}

func (b *batchPlan) init(maxTokens int) {
	b.tokens = make([]int32, maxTokens)
	b.pos = make([]int32, maxTokens)
	b.starts = make([]int, maxTokens+1)
}

// reset empties the plan.
func (b *batchPlan) reset() { b.n, b.nseq = 0, 0 }

// add appends a sequence after checking it against the model.
func (b *batchPlan) add(m *Model, tokens []int32) error {
	t := len(tokens)
	switch {
	case t == 0:
		return fmt.Errorf("train: sequence %d is empty", b.nseq)
	case t > m.opts.MaxSeqLen:
		return fmt.Errorf("train: sequence %d has %d tokens, MaxSeqLen is %d", b.nseq, t, m.opts.MaxSeqLen)
	case b.n+t > m.opts.MaxTokens:
		return fmt.Errorf("train: batch holds more than MaxTokens = %d tokens", m.opts.MaxTokens)
	}
	for i, tok := range tokens {
		if tok < 0 || int(tok) >= m.cfg.VocabSize {
			return fmt.Errorf("train: sequence %d: token %d at %d is outside the vocabulary of %d", b.nseq, tok, i,
				m.cfg.VocabSize)
		}
		b.tokens[b.n+i] = tok
		b.pos[b.n+i] = int32(i)
	}
	b.starts[b.nseq] = b.n
	b.n += t
	b.nseq++
	b.starts[b.nseq] = b.n
	return nil
}

// seqLen returns the length of sequence s.
func (b *batchPlan) seqLen(s int) int { return b.starts[s+1] - b.starts[s] }

// activations holds what the backward pass reads, for every layer. Each buffer is stacked over layers with
// room for max_tokens rows per layer, so layer l of a batch of n tokens is its first n rows at l·max_tokens.
type activations struct {
	maxN     int
	resid    []float32 // (layers, max_tokens, dim) residual stream entering each layer
	attnIn   []float32 // (layers, max_tokens, dim) rmsnorm(resid)·attn_norm
	attnRstd []float32 // (layers, max_tokens) 1/rms of resid
	qkv      []float32 // (layers, max_tokens, q_dim+2·kv_dim) q and k after RoPE, then v
	att      []float32 // (layers, max_tokens, q_dim) attention output, heads side by side
	resid2   []float32 // (layers, max_tokens, dim) residual stream after attention
	ffnIn    []float32 // (layers, max_tokens, dim) rmsnorm(resid2)·ffn_norm
	ffnRstd  []float32 // (layers, max_tokens)
	gateUp   []float32 // (layers, max_tokens, 2·hidden) gate and up projections of each token
	act      []float32 // (layers, max_tokens, hidden) silu(gate)·up
	out      []float32 // (max_tokens, dim) residual stream after the last layer
	outNorm  []float32 // (max_tokens, dim) rmsnorm(out)·output_norm
	outRstd  []float32 // (max_tokens)
}

func (a *activations) init(cfg model.Config, opts Options, qkvRows int) {
	L, N, D := cfg.NLayers, opts.MaxTokens, cfg.Dim
	a.maxN = N
	a.resid = make([]float32, L*N*D)
	a.attnIn = make([]float32, L*N*D)
	a.attnRstd = make([]float32, L*N)
	a.qkv = make([]float32, L*N*qkvRows)
	a.att = make([]float32, L*N*cfg.QDim())
	a.resid2 = make([]float32, L*N*D)
	a.ffnIn = make([]float32, L*N*D)
	a.ffnRstd = make([]float32, L*N)
	a.gateUp = make([]float32, L*N*2*cfg.HiddenDim)
	a.act = make([]float32, L*N*cfg.HiddenDim)
	a.out = make([]float32, N*D)
	a.outNorm = make([]float32, N*D)
	a.outRstd = make([]float32, N)
}

// layer returns layer l's part of a buffer stacked over layers with width values per token.
func (a *activations) layer(buf []float32, l, width int) []float32 {
	return buf[l*a.maxN*width : (l+1)*a.maxN*width]
}

// scratch holds the gradients flowing down through one layer at a time, plus the heads' buffers.
type scratch struct {
	threads int
	dresid  []float32 // (max_tokens, dim) gradient of the residual stream
	dxb     []float32 // (max_tokens, dim) gradient of a norm's output (of the final norm, from the head)
	dqkv    []float32 // (max_tokens, q_dim+2·kv_dim)
	datt    []float32 // (max_tokens, q_dim)
	dgateUp []float32 // (max_tokens, 2·hidden)
	dact    []float32 // (max_tokens, hidden)
	probs   []float32 // (threads, attnBlock·max_seq_len) attention weights of one block, per worker
	dp      []float32 // (threads, attnBlock·max_seq_len) attention backward's dP, then dS, per worker
	tr      []float32 // (threads, head_dim·max_seq_len) attention backward's transposed dv, dk, per worker
	sil     []float32 // (threads, hidden) silu(gate) of one row, per worker
	ones    []float32 // (hidden) 1s
	pool    []float32 // (dim) a reward model's mean-pooled hidden state (PoolMean)

	headRows   int       // rows of the language-model head per chunk
	headX      []float32 // (headRows, dim) final-normed rows of the tokens that have a target
	headDX     []float32 // (headRows, dim) their gradient
	logits     []float32 // (headRows, vocab) logits, then their gradient
	headLoss   []float64 // (headRows) loss of each row
	headTarget []int32   // (headRows) target of each row
	rows       []int     // (max_tokens) tokens that have a target
	targets    []int32   // (max_tokens) their targets
	dscores    []float32 // (max_tokens) gradient of each sequence's score
}

// workerScratch returns worker's part of a per-worker buffer.
func (s *scratch) workerScratch(buf []float32, worker int) []float32 {
	n := len(buf) / s.threads
	return buf[worker*n : (worker+1)*n]
}

// headChunk bounds the logits of one chunk of the language-model head (values).
const headChunk = 16 << 20

func (s *scratch) init(cfg model.Config, opts Options, qkvRows, threads int) {
	N, D := opts.MaxTokens, cfg.Dim
	s.threads = threads
	s.dresid = make([]float32, N*D)
	s.dxb = make([]float32, N*D)
	s.dqkv = make([]float32, N*qkvRows)
	s.datt = make([]float32, N*cfg.QDim())
	s.dgateUp = make([]float32, N*2*cfg.HiddenDim)
	s.dact = make([]float32, N*cfg.HiddenDim)
	s.probs = make([]float32, threads*attnBlock*opts.MaxSeqLen)
	s.dp = make([]float32, threads*attnBlock*opts.MaxSeqLen)
	s.tr = make([]float32, threads*cfg.HeadDim*opts.MaxSeqLen)
	s.sil = make([]float32, threads*cfg.HiddenDim)
	s.ones = make([]float32, cfg.HiddenDim)
	s.pool = make([]float32, cfg.Dim)
	for i := range s.ones {
		s.ones[i] = 1
	}
	if opts.Head == HeadLM {
		s.headRows = min(N, max(64, headChunk/cfg.VocabSize))
		s.headX = make([]float32, s.headRows*D)
		s.headDX = make([]float32, s.headRows*D)
		s.logits = make([]float32, s.headRows*cfg.VocabSize)
		s.headLoss = make([]float64, s.headRows)
		s.headTarget = make([]int32, s.headRows)
		s.rows = make([]int, N)
		s.targets = make([]int32, N)
	}
	s.dscores = make([]float32, N)
}

// forward runs the layers over the plan's tokens, keeping every activation, up to the final norm (of
// every row). The head comes after, in head.go.
func (m *Model) forward() {
	cfg, a, p, b := &m.cfg, &m.a, &m.p, &m.b
	n := b.n
	D, Q, W, H, L := cfg.Dim, cfg.QDim(), m.layout.qkvRows, cfg.HiddenDim, cfg.NLayers
	half := cfg.HeadDim / 2

	// Token embeddings into the residual stream of layer 0.
	embeddingForward(a.resid, p.tokEmbd, b.tokens[:n], D)

	for l := 0; l < L; l++ {
		x := a.layer(a.resid, l, D)[:n*D]
		attnIn, attnRstd := a.layer(a.attnIn, l, D), a.layer(a.attnRstd, l, 1)
		qkv := a.layer(a.qkv, l, W)
		resid2 := a.layer(a.resid2, l, D)
		ffnIn, ffnRstd := a.layer(a.ffnIn, l, D), a.layer(a.ffnRstd, l, 1)
		gateUp, act := a.layer(a.gateUp, l, 2*H), a.layer(a.act, l, H)
		next := a.out // the residual stream leaving the layer
		if l+1 < L {
			next = a.layer(a.resid, l+1, D)
		}

		// Attention RMSNorm.
		rmsnormForward(attnIn, attnRstd, x, p.attnNorm[l*D:(l+1)*D], n, D, cfg.NormEps)

		// q, k and v of every token: one matrix product with the stacked attn_q, attn_k, attn_v rows.
		matmulForward(m.mm, qkv, attnIn, p.wqkv[l*W*D:(l+1)*W*D], n, D, W, false)

		// RoPE on q and k at each token's position in its sequence.
		for i := 0; i < n; i++ {
			pos := int(b.pos[i])
			cos, sin := m.cos[pos*half:(pos+1)*half], m.sin[pos*half:(pos+1)*half]
			ropeForward(qkv[i*W:i*W+Q+cfg.KVDim()], cos, sin)
		}

		// Causal attention of each sequence and head (query heads sharing a kv head in one task).
		m.tasks.layer = l
		m.pool.Run(b.nseq*cfg.NKVHeads, 1, m.tasks.attnForward)

		// Output projection and residual: resid2 = x + att·woᵀ.
		copy(resid2, x)
		matmulForward(m.mm, resid2, a.layer(a.att, l, Q), p.wo[l*D*Q:(l+1)*D*Q], n, Q, D, true)

		// FFN RMSNorm.
		rmsnormForward(ffnIn, ffnRstd, resid2, p.ffnNorm[l*D:(l+1)*D], n, D, cfg.NormEps)

		// SwiGLU: act = silu(x·gateᵀ) ⊙ x·upᵀ, then next = resid2 + act·downᵀ.
		matmulForward(m.mm, gateUp, ffnIn, p.wGateUp[l*2*H*D:(l+1)*2*H*D], n, D, 2*H, false)
		m.pool.Run(n, max(1, 8192/H), m.tasks.swigluForward)
		copy(next, resid2[:n*D])
		matmulForward(m.mm, next, act, p.wDown[l*D*H:(l+1)*D*H], n, H, D, true)
	}

	// Final RMSNorm.
	rmsnormForward(a.outNorm, a.outRstd, a.out, p.outNorm, n, D, cfg.NormEps)
	m.ready = true
}

// attnForwardItems computes the attention of items [lo, hi), item = sequence·n_kv_heads + kv head, of
// layer tasks.layer. Query head h reads kv head h / (n_heads/n_kv_heads), as package model.
func (m *Model) attnForwardItems(lo, hi, worker int) {
	cfg, a, b := &m.cfg, &m.a, &m.b
	l := m.tasks.layer
	hd, Q, KV, W := cfg.HeadDim, cfg.QDim(), cfg.KVDim(), m.layout.qkvRows
	group := cfg.NHeads / cfg.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	qkv, att := a.layer(a.qkv, l, W), a.layer(a.att, l, Q)
	probs := m.s.workerScratch(m.s.probs, worker)
	for item := lo; item < hi; item++ {
		s, kh := item/cfg.NKVHeads, item%cfg.NKVHeads
		start, t := b.starts[s], b.seqLen(s)
		rows := qkv[start*W:]
		k, v := rows[Q+kh*hd:], rows[Q+KV+kh*hd:]
		for g := 0; g < group; g++ {
			h := kh*group + g
			attentionForward(m.workers[worker], att[start*Q+h*hd:], rows[h*hd:], k, v, probs, t, hd, W, W, W, Q, scale)
		}
	}
}

// swigluForwardRows applies SwiGLU to token rows [lo, hi) of layer tasks.layer.
func (m *Model) swigluForwardRows(lo, hi, _ int) {
	a, H := &m.a, m.cfg.HiddenDim
	gateUp, act := a.layer(a.gateUp, m.tasks.layer, 2*H), a.layer(a.act, m.tasks.layer, H)
	for i := lo; i < hi; i++ {
		swigluForward(act[i*H:(i+1)*H], gateUp[i*2*H:(i+1)*2*H])
	}
}

// tasks are the model's parallel loops as kernels.Task values, built once so that running them allocates
// nothing; layer is the layer they work on.
type tasks struct {
	layer          int
	attnForward    taskFunc
	attnBackward   taskFunc
	swigluForward  taskFunc
	swigluBackward taskFunc
	crossEntropy   taskFunc
	gradNorm       taskFunc
	scaleGrads     taskFunc
	zeroGrads      taskFunc
	headScale      float32
	gradScale      float32
}

func (t *tasks) init(m *Model) {
	t.attnForward = m.attnForwardItems
	t.attnBackward = m.attnBackwardItems
	t.swigluForward = m.swigluForwardRows
	t.swigluBackward = m.swigluBackwardRows
	t.crossEntropy = m.crossEntropyRows
	t.gradNorm = m.gradNormChunks
	t.scaleGrads = m.scaleGradChunks
	t.zeroGrads = m.zeroGradChunks
	m.mm = m.sgemm
}

// taskFunc adapts a function to kernels.Task.
type taskFunc func(lo, hi, worker int)

func (f taskFunc) Run(lo, hi, worker int) { f(lo, hi, worker) }
