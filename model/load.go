package model

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/weights"
)

// Options controls how Load prepares a model.
type Options struct {
	// Threads is the number of worker goroutines for matrix products and attention; 0 means one per CPU.
	Threads int
	// ContextLen caps the positions a sequence may reach; 0 means the model's trained context length. A value
	// above the trained length is an error.
	ContextLen int
	// FileLayout keeps Q8_0 and Q4_0 weight matrices in the checkpoint's memory in the file's layout. By
	// default Load copies them to the heap in the interleaved layout of kernels.Interleave when the CPU's
	// kernels gain from it (AVX2): decoding a batch of 5 (best-of-5) then costs about 1.2-1.3x a single
	// sequence instead of about 1.7x (Q8_0), for the memory of a second copy of those weights while the
	// checkpoint stays mapped.
	FileLayout bool
	// ISA forces the kernels (kernels.ISAAuto, the zero value: the widest this CPU runs), and with them the
	// layout the Q8_0 and Q4_0 matrices are interleaved into. Load fails when the CPU does not run it.
	ISA kernels.ISA
	// Layout forces the layout of the interleaved matrices on the AVX-512 ISAs (kernels.LayoutAuto, the zero
	// value: the one faster on this CPU; see kernels.Layout).
	Layout kernels.Layout
}

// maxThreads bounds Options.Threads (each thread gets its own attention scratch).
const maxThreads = 1024

// Model is a loaded LLaMA-family decoder: read-only weights (in their file format, pointing into the
// checkpoint's memory, except Q8_0 and Q4_0 matrices interleaved on the heap, see Options.FileLayout) plus
// the run state of one Forward call. Keep the checkpoint open while the model is in use. Forward is not safe
// for concurrent calls; Config and Stats are.
type Model struct {
	cfg  Config
	pool *kernels.Pool

	tokEmbd    *weights.Tensor // (vocab, dim) rows in any type, dequantized one row at a time
	embdRowLen int             // bytes of one tokEmbd row
	layers     []layer         // (n_layers)
	outNorm    []float32       // (dim)
	output     kernels.Matrix  // (vocab, dim); the token embedding when tied
	invFreq    []float64       // (head_dim/2) rotary angle per position for each pair, scaling included

	s runState

	tokens   atomic.Int64
	forwards atomic.Int64
}

// layer holds one transformer block's weights. Matrices have Rows outputs of Cols inputs.
type layer struct {
	attnNorm []float32      // (dim)
	wq       kernels.Matrix // (n_heads*head_dim, dim), GGUF interleaved-pair rotary order
	wk       kernels.Matrix // (n_kv_heads*head_dim, dim), same order
	wv       kernels.Matrix // (n_kv_heads*head_dim, dim)
	wo       kernels.Matrix // (dim, n_heads*head_dim)
	ffnNorm  []float32      // (dim)
	wGate    kernels.Matrix // (hidden_dim, dim)  w1
	wUp      kernels.Matrix // (hidden_dim, dim)  w3
	wDown    kernels.Matrix // (dim, hidden_dim)  w2

	// wqkv is wq, wk and wv as one matrix of n_heads*head_dim + 2*kv_dim rows when the file stores them
	// back to back with the same type (GGUF files from llama.cpp do): one MatMul, one pool dispatch and one
	// activation quantization instead of three. Rows is 0 otherwise.
	wqkv kernels.Matrix
}

// Stats counts the work a Model has done since Load.
type Stats struct {
	// Tokens is the number of tokens evaluated (batch entries over all Forward calls).
	Tokens int64
	// ForwardCalls is the number of successful Forward calls.
	ForwardCalls int64
}

// Load builds a Model from a checkpoint. It checks every tensor's presence, type and shape against the
// config and returns an error naming the first problem; once it succeeds, Forward cannot fail because of the
// weights. The checkpoint must stay open until the model is closed.
func Load(ck *weights.Checkpoint, opts Options) (*Model, error) {
	if ck == nil {
		return nil, errors.New("model: nil checkpoint")
	}
	cfg, err := ConfigFromMetadata(ck.Metadata)
	if err != nil {
		return nil, err
	}
	if opts.Threads < 0 || opts.Threads > maxThreads {
		return nil, fmt.Errorf("model: thread count %d out of range [0, %d]", opts.Threads, maxThreads)
	}
	if opts.ContextLen < 0 {
		return nil, fmt.Errorf("model: negative context length %d", opts.ContextLen)
	}
	if opts.ContextLen > cfg.ContextLen {
		return nil, fmt.Errorf("model: context length %d is longer than the model's %d", opts.ContextLen, cfg.ContextLen)
	}
	if opts.ContextLen > 0 {
		cfg.ContextLen = opts.ContextLen
	}

	m := &Model{cfg: cfg}
	l := loader{ck: ck}

	// The token embedding fixes the vocabulary size when the metadata did not.
	emb := ck.Tensor("token_embd.weight")
	if emb == nil {
		return nil, errors.New("model: missing tensor token_embd.weight")
	}
	if len(emb.Shape) == 2 && m.cfg.VocabSize == 0 {
		if emb.Shape[1] <= 0 || emb.Shape[1] > maxDim {
			return nil, fmt.Errorf("model: token_embd.weight has %d rows", emb.Shape[1])
		}
		m.cfg.VocabSize = emb.Shape[1]
	}
	cfg = m.cfg
	m.tokEmbd = l.tensor("token_embd.weight", cfg.Dim, cfg.VocabSize)
	if m.tokEmbd != nil {
		m.embdRowLen, _ = m.tokEmbd.Type.RowBytes(cfg.Dim)
	}

	m.layers = make([]layer, cfg.NLayers)
	for i := range m.layers {
		p := fmt.Sprintf("blk.%d.", i)
		ly := &m.layers[i]
		ly.attnNorm = l.vector(p+"attn_norm.weight", cfg.Dim)
		ly.wq = l.matrix(p+"attn_q.weight", cfg.Dim, cfg.QDim())
		ly.wk = l.matrix(p+"attn_k.weight", cfg.Dim, cfg.KVDim())
		ly.wv = l.matrix(p+"attn_v.weight", cfg.Dim, cfg.KVDim())
		ly.wo = l.matrix(p+"attn_output.weight", cfg.QDim(), cfg.Dim)
		ly.ffnNorm = l.vector(p+"ffn_norm.weight", cfg.Dim)
		ly.wGate = l.matrix(p+"ffn_gate.weight", cfg.Dim, cfg.HiddenDim)
		ly.wUp = l.matrix(p+"ffn_up.weight", cfg.Dim, cfg.HiddenDim)
		ly.wDown = l.matrix(p+"ffn_down.weight", cfg.HiddenDim, cfg.Dim)
		if ck.Format == weights.FormatGGUF {
			ly.wqkv = fuseRows(ly.wq, ly.wk, ly.wv)
		}
	}
	m.outNorm = l.vector("output_norm.weight", cfg.Dim)
	if ck.Tensor("output.weight") != nil {
		m.output = l.matrix("output.weight", cfg.Dim, cfg.VocabSize)
	} else {
		m.cfg.TiedOutput = true
		m.output = l.matrix("token_embd.weight", cfg.Dim, cfg.VocabSize)
	}
	var ropeFreqs []float32
	if ck.Tensor("rope_freqs.weight") != nil {
		ropeFreqs = l.vector("rope_freqs.weight", cfg.HeadDim/2)
		m.cfg.RopeScaling = RopeScalingLlama3
	} else if cfg.RopeScaling == RopeScalingLlama3 {
		l.fail(errors.New("model: llama3 rope scaling needs tensor rope_freqs.weight"))
	}
	if l.err != nil {
		return nil, l.err
	}
	for _, f := range ropeFreqs {
		if !(f > 0) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("model: rope_freqs.weight holds a non-positive or infinite factor %g", f)
		}
	}
	m.invFreq = ropeFrequencies(m.cfg, ropeFreqs)
	if !opts.ISA.Supported() {
		return nil, fmt.Errorf("model: this CPU does not run the %v kernels (it runs %v)", opts.ISA, kernels.SupportedISAs())
	}
	if !opts.FileLayout {
		if err := m.interleave(opts.ISA, opts.Layout); err != nil {
			return nil, err
		}
	}

	if m.pool, err = kernels.NewPoolISA(opts.Threads, opts.ISA); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m.s.init(m)
	return m, nil
}

// interleave replaces the Q8_0 and Q4_0 matrices the forward pass uses by interleaved heap copies (in the
// form the kernels of isa read, in layout) where kernels.InterleaveWorthwhile says so (the fused q/k/v matrix rather
// than its parts when there is one).
func (m *Model) interleave(isa kernels.ISA, layout kernels.Layout) error {
	var ms []*kernels.Matrix
	for i := range m.layers {
		ly := &m.layers[i]
		if ly.wqkv.Rows > 0 {
			ms = append(ms, &ly.wqkv)
		} else {
			ms = append(ms, &ly.wq, &ly.wk, &ly.wv)
		}
		ms = append(ms, &ly.wo, &ly.wGate, &ly.wUp, &ly.wDown)
	}
	ms = append(ms, &m.output)
	for _, mat := range ms {
		if !kernels.InterleaveWorthwhile(*mat, isa) {
			continue
		}
		im, err := kernels.InterleaveLayout(*mat, isa, layout)
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		*mat = im
	}
	return nil
}

// fuseRows returns the matrices as one when their data lie back to back in memory with the same type and
// width, else a Matrix with Rows 0. Nothing is copied: the result aliases the (read-only) checkpoint memory.
// Load calls it only for GGUF checkpoints, whose tensors are slices of one file mapping (the weights
// contract), so the fused slice never spans separate Go allocations.
func fuseRows(ms ...kernels.Matrix) kernels.Matrix {
	first := ms[0]
	if len(first.Data) == 0 {
		return kernels.Matrix{}
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(first.Data)))
	size, rows := 0, 0
	for _, m := range ms {
		if m.Type != first.Type || m.Cols != first.Cols || len(m.Data) == 0 ||
			uintptr(unsafe.Pointer(unsafe.SliceData(m.Data))) != start+uintptr(size) {
			return kernels.Matrix{}
		}
		size += len(m.Data)
		rows += m.Rows
	}
	return kernels.Matrix{Type: first.Type, Rows: rows, Cols: first.Cols, Data: unsafe.Slice(unsafe.SliceData(first.Data), size)}
}

// ropeFrequencies returns, for each rotary pair i of a head, the angle per position:
// theta^(-2i/head_dim), divided by the linear scale factor or by the llama3 per-pair factor.
func ropeFrequencies(cfg Config, factors []float32) []float64 {
	n := cfg.HeadDim / 2
	f := make([]float64, n)
	for i := range f {
		f[i] = math.Pow(float64(cfg.RopeTheta), -2*float64(i)/float64(cfg.HeadDim))
		if cfg.RopeScaling == RopeScalingLinear {
			f[i] /= float64(cfg.RopeScaleFactor)
		}
		if factors != nil {
			f[i] /= float64(factors[i])
		}
	}
	return f
}

// Config returns the model's hyperparameters (ContextLen as capped by Options).
func (m *Model) Config() Config { return m.cfg }

// Stats returns the model's work counters. It is safe to call concurrently with Forward.
func (m *Model) Stats() Stats {
	return Stats{Tokens: m.tokens.Load(), ForwardCalls: m.forwards.Load()}
}

// Close stops the model's worker goroutines. The model must not be used afterwards; the checkpoint is the
// caller's to close.
func (m *Model) Close() {
	if m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
}

// loader checks tensors and keeps the first error, so Load reads as a list of the tensors it needs.
type loader struct {
	ck  *weights.Checkpoint
	err error
}

func (l *loader) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// tensor returns the named tensor after checking it is a known type with GGML shape [cols, rows] (rows
// omitted for vectors: rows < 0) and holds exactly the bytes that shape needs.
func (l *loader) tensor(name string, cols, rows int) *weights.Tensor {
	if l.err != nil {
		return nil
	}
	t := l.ck.Tensor(name)
	if t == nil {
		l.fail(fmt.Errorf("model: missing tensor %s", name))
		return nil
	}
	want := []int{cols}
	if rows >= 0 {
		want = append(want, rows)
	}
	shape := t.Shape
	// A vector may be stored as [n, 1].
	if rows < 0 && len(shape) == 2 && shape[1] == 1 {
		shape = shape[:1]
	}
	if len(shape) != len(want) || shape[0] != want[0] || (len(want) == 2 && shape[1] != want[1]) {
		l.fail(fmt.Errorf("model: tensor %s has shape %v, want %v", name, t.Shape, want))
		return nil
	}
	if !t.Type.Known() {
		l.fail(fmt.Errorf("model: tensor %s has unsupported type %s", name, t.Type))
		return nil
	}
	rowBytes, err := t.Type.RowBytes(cols)
	if err != nil {
		l.fail(fmt.Errorf("model: tensor %s: %w", name, err))
		return nil
	}
	n := 1
	if rows >= 0 {
		n = rows
	}
	if len(t.Data) != rowBytes*n {
		l.fail(fmt.Errorf("model: tensor %s holds %d bytes, want %d for %s %v", name, len(t.Data), rowBytes*n,
			t.Type, t.Shape))
		return nil
	}
	return t
}

// matrix returns a weight matrix of rows outputs by cols inputs, left in its file type.
func (l *loader) matrix(name string, cols, rows int) kernels.Matrix {
	t := l.tensor(name, cols, rows)
	if t == nil {
		return kernels.Matrix{}
	}
	if !kernels.Supported(t.Type) {
		l.fail(fmt.Errorf("model: tensor %s: no matrix kernel for type %s", name, t.Type))
		return kernels.Matrix{}
	}
	mat := kernels.Matrix{Type: t.Type, Rows: rows, Cols: cols, Data: t.Data}
	if err := mat.Validate(); err != nil { // so that MatMul, which trusts a valid Matrix, cannot panic
		l.fail(fmt.Errorf("model: tensor %s: %w", name, err))
		return kernels.Matrix{}
	}
	return mat
}

// vector returns a small tensor (a norm weight) dequantized to float32.
func (l *loader) vector(name string, n int) []float32 {
	t := l.tensor(name, n, -1)
	if t == nil {
		return nil
	}
	v := make([]float32, n)
	if err := weights.Dequantize(t.Type, t.Data, v); err != nil {
		l.fail(fmt.Errorf("model: tensor %s: %w", name, err))
		return nil
	}
	return v
}
