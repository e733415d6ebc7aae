package train

import (
	"fmt"

	"github.com/bestofn/bestofn/model"
)

// Tensor is a named view of a parameter (or of its gradient) in GGUF naming. Data aliases the model's
// memory: writing to it changes the model.
type Tensor struct {
	// Name is the GGUF tensor name ("token_embd.weight", "blk.3.attn_q.weight", ...) or, for a reward
	// model's scalar head, "rm_head.weight" / "rm_head.bias".
	Name string
	// Shape lists the dimensions in row-major order, outermost first: [vocab, dim] for token_embd.weight,
	// [out, in] for a weight matrix y = W x, [dim] for a norm weight. (GGUF's own shape order is the
	// reverse.)
	Shape []int
	// Data holds the values, row-major.
	Data []float32
}

// Head says what a model computes on top of its final norm.
type Head int

const (
	// HeadLM is a language model: next-token logits through output.weight, or through token_embd.weight
	// when the output is tied (Config.TiedOutput).
	HeadLM Head = iota
	// HeadReward is a reward model: the score of a sequence is rm_head.weight · h + rm_head.bias, with h the
	// final-normed hidden state of its last token (Options.Pooling). It has no output.weight.
	HeadReward
)

// Pooling says which hidden states a reward model's head reads.
type Pooling int

const (
	// PoolLast reads the final-normed hidden state of the sequence's last token (HF's
	// LlamaForSequenceClassification, TRL, OpenRLHF).
	PoolLast Pooling = iota
	// PoolMean reads the mean of the final-normed hidden states of all the sequence's tokens. By causality the
	// score is then the mean of PoolLast's scores of the sequence's prefixes.
	PoolMean
)

func (p Pooling) String() string {
	switch p {
	case PoolLast:
		return "last"
	case PoolMean:
		return "mean"
	}
	return fmt.Sprintf("Pooling(%d)", int(p))
}

func (h Head) String() string {
	switch h {
	case HeadLM:
		return "lm"
	case HeadReward:
		return "reward"
	}
	return fmt.Sprintf("head(%d)", int(h))
}

// Names of the reward head's tensors.
const (
	RewardHeadWeight = "rm_head.weight"
	RewardHeadBias   = "rm_head.bias"
)

// params is every trainable tensor, stacked over layers, carved from one []float32 by layout.carve. The
// same layout holds the gradients and AdamW's two moments. q, k and v of a layer are one matrix (rows of q,
// then k, then v), as are gate and up, so each takes one matrix product; Tensors shows them as GGUF's
// separate tensors, which are contiguous row ranges of them.
type params struct {
	tokEmbd  []float32 // (vocab, dim)
	attnNorm []float32 // (layers, dim)
	wqkv     []float32 // (layers, q_dim+2*kv_dim, dim) attn_q rows (GGUF rotary order), attn_k rows, attn_v rows
	wo       []float32 // (layers, dim, q_dim)
	ffnNorm  []float32 // (layers, dim)
	wGateUp  []float32 // (layers, 2*hidden_dim, dim) ffn_gate rows, then ffn_up rows
	wDown    []float32 // (layers, dim, hidden_dim)
	outNorm  []float32 // (dim)
	output   []float32 // (vocab, dim); nil when tied or for a reward model
	rmW      []float32 // (dim) reward head weight; nil for a language model
	rmB      []float32 // (1) reward head bias; nil for a language model
}

// segment is one tensor of the flat parameter array: its offset and size, and whether AdamW decays it.
type segment struct {
	name  string
	off   int
	size  int
	decay bool
}

// layout is where each tensor of params lives in the flat array.
type layout struct {
	cfg      model.Config
	head     Head
	untied   bool // an output.weight of its own (language model with TiedOutput false)
	segments []segment
	size     int
	qkvRows  int // q_dim + 2*kv_dim
}

func newLayout(cfg model.Config, head Head) layout {
	l := layout{cfg: cfg, head: head, untied: head == HeadLM && !cfg.TiedOutput}
	l.qkvRows = cfg.QDim() + 2*cfg.KVDim()
	L, D, H, V := cfg.NLayers, cfg.Dim, cfg.HiddenDim, cfg.VocabSize
	// Weight decay goes to matrices (embeddings included) and not to norms or biases, as in llm.c and in
	// Hugging Face's trainers; the reward head's weight is a [1, dim] matrix there and is decayed too.
	add := func(name string, size int, decay bool) {
		l.segments = append(l.segments, segment{name: name, off: l.size, size: size, decay: decay})
		l.size += size
	}
	add("tokEmbd", V*D, true)
	add("attnNorm", L*D, false)
	add("wqkv", L*l.qkvRows*D, true)
	add("wo", L*D*cfg.QDim(), true)
	add("ffnNorm", L*D, false)
	add("wGateUp", L*2*H*D, true)
	add("wDown", L*D*H, true)
	add("outNorm", D, false)
	if l.untied {
		add("output", V*D, true)
	}
	if head == HeadReward {
		add("rmW", D, true)
		add("rmB", 1, false)
	}
	return l
}

// carve cuts buf (of l.size values) into tensors.
func (l *layout) carve(buf []float32) params {
	var p params
	ptrs := map[string]*[]float32{
		"tokEmbd": &p.tokEmbd, "attnNorm": &p.attnNorm, "wqkv": &p.wqkv, "wo": &p.wo, "ffnNorm": &p.ffnNorm,
		"wGateUp": &p.wGateUp, "wDown": &p.wDown, "outNorm": &p.outNorm, "output": &p.output, "rmW": &p.rmW,
		"rmB": &p.rmB,
	}
	for _, s := range l.segments {
		*ptrs[s.name] = buf[s.off : s.off+s.size : s.off+s.size]
	}
	return p
}

// tensors lists p's tensors as GGUF-named views, in the order of a GGUF file written by llama.cpp's
// converters: token_embd, then each block's tensors, then output_norm, output (untied only), and the reward
// head.
func (l *layout) tensors(p params) []Tensor {
	cfg := l.cfg
	L, D, H, V, Q, KV := cfg.NLayers, cfg.Dim, cfg.HiddenDim, cfg.VocabSize, cfg.QDim(), cfg.KVDim()
	ts := []Tensor{{Name: "token_embd.weight", Shape: []int{V, D}, Data: p.tokEmbd}}
	for i := 0; i < L; i++ {
		pre := fmt.Sprintf("blk.%d.", i)
		qkv := p.wqkv[i*l.qkvRows*D : (i+1)*l.qkvRows*D]
		gu := p.wGateUp[i*2*H*D : (i+1)*2*H*D]
		ts = append(ts,
			Tensor{Name: pre + "attn_norm.weight", Shape: []int{D}, Data: p.attnNorm[i*D : (i+1)*D]},
			Tensor{Name: pre + "attn_q.weight", Shape: []int{Q, D}, Data: qkv[:Q*D]},
			Tensor{Name: pre + "attn_k.weight", Shape: []int{KV, D}, Data: qkv[Q*D : (Q+KV)*D]},
			Tensor{Name: pre + "attn_v.weight", Shape: []int{KV, D}, Data: qkv[(Q+KV)*D:]},
			Tensor{Name: pre + "attn_output.weight", Shape: []int{D, Q}, Data: p.wo[i*D*Q : (i+1)*D*Q]},
			Tensor{Name: pre + "ffn_norm.weight", Shape: []int{D}, Data: p.ffnNorm[i*D : (i+1)*D]},
			Tensor{Name: pre + "ffn_gate.weight", Shape: []int{H, D}, Data: gu[:H*D]},
			Tensor{Name: pre + "ffn_up.weight", Shape: []int{H, D}, Data: gu[H*D:]},
			Tensor{Name: pre + "ffn_down.weight", Shape: []int{D, H}, Data: p.wDown[i*D*H : (i+1)*D*H]},
		)
	}
	ts = append(ts, Tensor{Name: "output_norm.weight", Shape: []int{D}, Data: p.outNorm})
	if l.untied {
		ts = append(ts, Tensor{Name: "output.weight", Shape: []int{V, D}, Data: p.output})
	}
	if l.head == HeadReward {
		ts = append(ts,
			Tensor{Name: RewardHeadWeight, Shape: []int{D}, Data: p.rmW},
			Tensor{Name: RewardHeadBias, Shape: []int{1}, Data: p.rmB})
	}
	return ts
}

// NumParams returns the number of trainable values.
func (l *layout) numParams() int { return l.size }
