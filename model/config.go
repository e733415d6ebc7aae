package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/bestofn/bestofn/weights"
)

// Rope scaling types, as found in Config.RopeScaling (GGUF key llama.rope.scaling.type).
const (
	// RopeScalingNone applies rotary embeddings at the trained frequencies.
	RopeScalingNone = "none"
	// RopeScalingLinear divides every position by Config.RopeScaleFactor (position interpolation).
	RopeScalingLinear = "linear"
	// RopeScalingLlama3 divides each rotary frequency by its own factor, read from the checkpoint's
	// rope_freqs.weight tensor (llama.cpp's convention for LLaMA 3.1 checkpoints).
	RopeScalingLlama3 = "llama3"
)

// ErrUnsupported is wrapped by errors about checkpoints this package cannot run (unknown architecture, a
// hyperparameter combination it does not implement).
var ErrUnsupported = errors.New("model: unsupported checkpoint")

// Config holds the hyperparameters of a LLaMA-family decoder.
type Config struct {
	// Arch is the GGUF general.architecture; only "llama" is supported.
	Arch string
	// Dim is the width of the residual stream (llama.embedding_length).
	Dim int
	// HiddenDim is the inner width of the SwiGLU feed-forward block (llama.feed_forward_length).
	HiddenDim int
	// NLayers is the number of transformer blocks (llama.block_count).
	NLayers int
	// NHeads is the number of query heads (llama.attention.head_count).
	NHeads int
	// NKVHeads is the number of key/value heads (llama.attention.head_count_kv; NHeads when absent). Query head
	// h reads key/value head h / (NHeads/NKVHeads).
	NKVHeads int
	// HeadDim is the width of one head, Dim/NHeads.
	HeadDim int
	// VocabSize is the number of tokens (llama.vocab_size, else the length of tokenizer.ggml.tokens, else the
	// token embedding's row count, filled in by Load).
	VocabSize int
	// ContextLen is the number of positions the model was trained for (llama.context_length).
	ContextLen int
	// NormEps is the RMSNorm epsilon (llama.attention.layer_norm_rms_epsilon; 1e-5 when absent).
	NormEps float32
	// RopeTheta is the rotary base frequency (llama.rope.freq_base; 10000 when absent).
	RopeTheta float32
	// RopeScaling is RopeScalingNone, RopeScalingLinear or RopeScalingLlama3.
	RopeScaling string
	// RopeScaleFactor is the linear scaling factor (positions are divided by it); 1 when not linear.
	RopeScaleFactor float32
	// TiedOutput reports that the output projection reuses the token embedding (no output.weight); set by Load.
	TiedOutput bool
}

// KVDim is the width of one position's keys (or values) in the cache: NKVHeads*HeadDim.
func (c Config) KVDim() int { return c.NKVHeads * c.HeadDim }

// QDim is the width of one position's queries: NHeads*HeadDim.
func (c Config) QDim() int { return c.NHeads * c.HeadDim }

// maxDim bounds every size read from metadata, so a corrupt file cannot make Load allocate absurd buffers.
const maxDim = 1 << 24

// ConfigFromMetadata reads a Config from GGUF llama.* keys (as every weights.Checkpoint provides them). It
// checks that the values are positive and consistent; VocabSize may be 0 when the metadata does not say
// (Load then takes it from the token embedding).
func ConfigFromMetadata(md *weights.Metadata) (Config, error) {
	var c Config
	if md == nil {
		return c, errors.New("model: no metadata")
	}
	arch, ok := md.String("general.architecture")
	if !ok {
		return c, errors.New("model: metadata has no general.architecture")
	}
	c.Arch = arch
	if arch != "llama" {
		return c, fmt.Errorf("%w: architecture %q (only \"llama\" is supported)", ErrUnsupported, arch)
	}
	p := arch + "."
	var err error
	intKey := func(key string, def int, required bool) int {
		if err != nil {
			return 0
		}
		v, ok := md.Int(p + key)
		if !ok {
			if _, present := md.Value(p + key); present {
				err = fmt.Errorf("model: metadata %s%s is not an integer", p, key)
			} else if required {
				err = fmt.Errorf("model: metadata has no %s%s", p, key)
			}
			return def
		}
		if v <= 0 || v > maxDim {
			err = fmt.Errorf("model: metadata %s%s = %d is out of range", p, key, v)
			return 0
		}
		return int(v)
	}
	c.Dim = intKey("embedding_length", 0, true)
	c.HiddenDim = intKey("feed_forward_length", 0, true)
	c.NLayers = intKey("block_count", 0, true)
	c.NHeads = intKey("attention.head_count", 0, true)
	c.NKVHeads = intKey("attention.head_count_kv", c.NHeads, false)
	c.ContextLen = intKey("context_length", 0, true)
	if err != nil {
		return c, err
	}
	if v, ok := md.Int(p + "vocab_size"); ok {
		if v <= 0 || v > maxDim {
			return c, fmt.Errorf("model: metadata %svocab_size = %d is out of range", p, v)
		}
		c.VocabSize = int(v)
	} else if toks, ok := md.Strings("tokenizer.ggml.tokens"); ok {
		c.VocabSize = len(toks)
	}
	if c.Dim%c.NHeads != 0 {
		return c, fmt.Errorf("model: embedding length %d is not a multiple of head count %d", c.Dim, c.NHeads)
	}
	c.HeadDim = c.Dim / c.NHeads
	if c.HeadDim%2 != 0 {
		return c, fmt.Errorf("%w: odd head dimension %d", ErrUnsupported, c.HeadDim)
	}
	if c.NHeads%c.NKVHeads != 0 {
		return c, fmt.Errorf("model: head count %d is not a multiple of kv head count %d", c.NHeads, c.NKVHeads)
	}
	if c.NHeads/c.NKVHeads > maxGroup {
		return c, fmt.Errorf("%w: %d query heads per kv head (at most %d)", ErrUnsupported, c.NHeads/c.NKVHeads, maxGroup)
	}
	if v, ok := md.Int(p + "rope.dimension_count"); ok && int(v) != c.HeadDim {
		return c, fmt.Errorf("%w: rope dimension count %d differs from head dimension %d (partial rotary)",
			ErrUnsupported, v, c.HeadDim)
	}
	if v, ok := md.Int(p + "expert_count"); ok && v > 0 {
		return c, fmt.Errorf("%w: mixture of experts (%d experts)", ErrUnsupported, v)
	}

	c.NormEps = 1e-5
	if v, ok := md.Float(p + "attention.layer_norm_rms_epsilon"); ok {
		if !(v > 0 && v < 1) {
			return c, fmt.Errorf("model: metadata rms epsilon %g is out of range", v)
		}
		c.NormEps = float32(v)
	}
	c.RopeTheta = 10000
	if v, ok := md.Float(p + "rope.freq_base"); ok {
		if !(v > 1 && v < 1e12) {
			return c, fmt.Errorf("model: metadata rope.freq_base %g is out of range", v)
		}
		c.RopeTheta = float32(v)
	}
	c.RopeScaling = RopeScalingNone
	c.RopeScaleFactor = 1
	scaling, _ := md.String(p + "rope.scaling.type")
	factor, hasFactor := md.Float(p + "rope.scaling.factor")
	switch scaling {
	case "", "none":
	case "linear":
		if !hasFactor || !(factor > 0 && factor < 1e6) || math.IsNaN(factor) {
			return c, fmt.Errorf("model: linear rope scaling needs a positive %srope.scaling.factor", p)
		}
		if factor != 1 {
			c.RopeScaling = RopeScalingLinear
			c.RopeScaleFactor = float32(factor)
		}
	case "llama3":
		c.RopeScaling = RopeScalingLlama3
	default:
		return c, fmt.Errorf("%w: rope scaling type %q", ErrUnsupported, scaling)
	}
	return c, nil
}
