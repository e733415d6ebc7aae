package export

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/weights"
)

// GGUFOptions configure WriteGGUF.
type GGUFOptions struct {
	// Type is the type of the 2-D weight matrices: weights.TypeF32 (the zero value), TypeF16, TypeBF16, TypeQ8_0 or
	// TypeQ4_0. A matrix whose rows are not a whole number of blocks of a quantized type is written as F16 (as
	// llama.cpp's quantizer falls back); norms and rope_freqs.weight stay F32.
	Type weights.Type
	// Name is general.name; "" means "bestofn".
	Name string
	// Tokenizer holds the vocabulary: its tokenizer.* keys (tokenizer.ggml.model, tokens, scores, token_type,
	// special token ids, add_bos_token, tokenizer.chat_template, ...) are copied as they are, typically from the
	// base model's GGUF. Nil or no tokenizer.ggml.model key is an error: a generator without a vocabulary cannot
	// be served.
	Tokenizer *weights.Metadata
	// Extra are more metadata keys (e.g. "general.description", "bestofn.training.*"), written last; they may not
	// replace the keys written from the config.
	Extra map[string]any
}

// ggufFileType maps a matrix type to general.file_type (llama.cpp's llama_ftype: ALL_F32 0, MOSTLY_F16 1,
// MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_BF16 32).
var ggufFileType = map[weights.Type]uint32{
	weights.TypeF32:  0,
	weights.TypeF16:  1,
	weights.TypeQ4_0: 2,
	weights.TypeQ8_0: 7,
	weights.TypeBF16: 32,
}

// GGUFMetadata returns the metadata WriteGGUF writes for m: general.* and llama.* keys as llama.cpp's converter
// writes them for a LLaMA model, the tokenizer.* keys of opts.Tokenizer, then opts.Extra.
func GGUFMetadata(m *Weights, opts GGUFOptions) (*weights.Metadata, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	fileType, ok := ggufFileType[opts.Type]
	if !ok {
		return nil, fmt.Errorf("export: gguf matrices of type %s are not supported (F32, F16, BF16, Q8_0, Q4_0)", opts.Type)
	}
	if opts.Tokenizer == nil {
		return nil, errors.New("export: gguf needs the tokenizer's metadata")
	}
	if _, ok := opts.Tokenizer.String("tokenizer.ggml.model"); !ok {
		return nil, errors.New("export: tokenizer metadata has no tokenizer.ggml.model")
	}
	c := m.Config
	if toks, ok := opts.Tokenizer.Strings("tokenizer.ggml.tokens"); !ok || len(toks) != c.VocabSize {
		return nil, fmt.Errorf("export: tokenizer has %d tokens, the model %d", len(toks), c.VocabSize)
	}
	name := opts.Name
	if name == "" {
		name = "bestofn"
	}
	md := weights.NewMetadata()
	md.Set("general.architecture", "llama")
	md.Set("general.type", "model")
	md.Set("general.name", name)
	md.Set("llama.block_count", uint32(c.NLayers))
	md.Set("llama.context_length", uint32(c.ContextLen))
	md.Set("llama.embedding_length", uint32(c.Dim))
	md.Set("llama.feed_forward_length", uint32(c.HiddenDim))
	md.Set("llama.attention.head_count", uint32(c.NHeads))
	md.Set("llama.attention.head_count_kv", uint32(c.NKVHeads))
	md.Set("llama.rope.freq_base", c.RopeTheta)
	md.Set("llama.attention.layer_norm_rms_epsilon", c.NormEps)
	switch c.RopeScaling {
	case model.RopeScalingLinear:
		md.Set("llama.rope.scaling.type", "linear")
		md.Set("llama.rope.scaling.factor", c.RopeScaleFactor)
	case model.RopeScalingLlama3:
		if !m.has("rope_freqs.weight") {
			return nil, errors.New("export: llama3 rope scaling needs tensor rope_freqs.weight")
		}
	}
	md.Set("general.file_type", fileType)
	md.Set("llama.vocab_size", uint32(c.VocabSize))
	md.Set("llama.rope.dimension_count", uint32(c.HeadDim))
	for _, k := range opts.Tokenizer.Keys() {
		if strings.HasPrefix(k, "tokenizer.") {
			v, _ := opts.Tokenizer.Value(k)
			md.Set(k, v)
		}
	}
	md.Set("general.quantization_version", uint32(2))
	for k, v := range opts.Extra {
		if _, taken := md.Value(k); taken {
			return nil, fmt.Errorf("export: extra metadata key %q is written by the exporter", k)
		}
		md.Set(k, v)
	}
	return md, nil
}

// WriteGGUF writes m as a GGUF v3 file that package model serves and llama.cpp reads: the tensors of a LLaMA
// model under their GGUF names (q/k rows in GGUF's rotary order, as m holds them), in llama.cpp's order
// (token_embd, output_norm, output when untied, rope_freqs, then each block), with GGUFMetadata's keys.
func WriteGGUF(w io.Writer, m *Weights, opts GGUFOptions) error {
	md, err := GGUFMetadata(m, opts)
	if err != nil {
		return err
	}
	c := m.Config
	type spec struct {
		name string
		rows int // 0 for a vector
		cols int
	}
	specs := []spec{{"token_embd.weight", c.VocabSize, c.Dim}, {"output_norm.weight", 0, c.Dim}}
	if m.has("output.weight") {
		specs = append(specs, spec{"output.weight", c.VocabSize, c.Dim})
	}
	if m.has("rope_freqs.weight") {
		specs = append(specs, spec{"rope_freqs.weight", 0, c.HeadDim / 2})
	}
	for l := range c.NLayers {
		p := fmt.Sprintf("blk.%d.", l)
		specs = append(specs,
			spec{p + "attn_norm.weight", 0, c.Dim},
			spec{p + "attn_q.weight", c.QDim(), c.Dim},
			spec{p + "attn_k.weight", c.KVDim(), c.Dim},
			spec{p + "attn_v.weight", c.KVDim(), c.Dim},
			spec{p + "attn_output.weight", c.Dim, c.QDim()},
			spec{p + "ffn_norm.weight", 0, c.Dim},
			spec{p + "ffn_gate.weight", c.HiddenDim, c.Dim},
			spec{p + "ffn_up.weight", c.HiddenDim, c.Dim},
			spec{p + "ffn_down.weight", c.Dim, c.HiddenDim},
		)
	}
	l := &loader{w: m}
	data := make([][]float32, len(specs))
	tensors := make([]*weights.Tensor, len(specs))
	for i, s := range specs {
		t := &weights.Tensor{Name: s.name, Type: weights.TypeF32, Shape: []int{s.cols}}
		if s.rows == 0 {
			data[i] = l.get(s.name, s.cols)
		} else {
			data[i] = l.get(s.name, s.rows, s.cols)
			t.Shape = []int{s.cols, s.rows} // GGML order: contiguous dimension first
			t.Type = opts.Type
			if s.cols%opts.Type.BlockSize() != 0 {
				t.Type = weights.TypeF16
			}
		}
		tensors[i] = t
	}
	if l.err != nil {
		return l.err
	}
	for _, t := range m.Tensors {
		if !hasSpec(tensors, t.Name) {
			return fmt.Errorf("export: tensor %s is not part of a LLaMA model", t.Name)
		}
	}
	return weights.WriteGGUFFunc(w, md, tensors, func(i int, w io.Writer) error {
		t := tensors[i]
		n, err := weights.TensorBytes(t.Type, t.Shape)
		if err != nil {
			return err
		}
		buf := make([]byte, n)
		if err := weights.Quantize(t.Type, data[i], buf); err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	})
}

func hasSpec(ts []*weights.Tensor, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// WriteGGUFFile writes WriteGGUF's output to path atomically (see WriteFileAtomic).
func WriteGGUFFile(path string, m *Weights, opts GGUFOptions) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return WriteGGUF(w, m, opts) })
}
