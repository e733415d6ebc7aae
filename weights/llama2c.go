package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// llama2cMagic is "ak42" read as a little-endian uint32: the header of llama2.c's versioned export format.
const llama2cMagic = 0x616b3432

// OpenLlama2C reads a llama2.c checkpoint: the legacy format (7 int32 header: dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier is not shared with the
// embedding; fp32 weights; the precomputed freq_cis tables are skipped) or version 1 (magic "ak42", 256-byte
// header, fp32 weights). Weights stay memory-mapped. The result carries GGUF llama metadata with
// context_length = seq_len, rms epsilon 1e-5 and rope base 10000, as llama2.c's run.c uses.
func OpenLlama2C(path string) (*Checkpoint, error) {
	data, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	ck, err := ParseLlama2C(path, data)
	if err != nil {
		unmap(data)
		return nil, err
	}
	if data != nil {
		ck.maps = append(ck.maps, data)
	}
	return ck, nil
}

// llama2cHeader is the hyperparameter header of a llama2.c checkpoint.
type llama2cHeader struct {
	dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen int
	shared                                                bool
}

// ParseLlama2C parses a llama2.c checkpoint held in data; name is used in errors and as Checkpoint.Path.
// Tensor data aliases data.
func ParseLlama2C(name string, data []byte) (*Checkpoint, error) {
	ferr := func(format string, args ...any) error {
		return &FormatError{Path: name, Offset: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) < 28 {
		return nil, ferr("truncated: %d bytes is too short for a llama2.c header", len(data))
	}
	i32 := func(off int) int { return int(int32(binary.LittleEndian.Uint32(data[off:]))) }
	var h llama2cHeader
	version := uint32(0)
	headerSize := 28
	params := 0
	if binary.LittleEndian.Uint32(data) == llama2cMagic {
		if len(data) < 256 {
			return nil, ferr("truncated: %d bytes is too short for a llama2.c v1 header", len(data))
		}
		version = uint32(i32(4))
		if version != 1 {
			return nil, ferr("unsupported llama2.c version %d (only the legacy format and version 1 hold fp32 weights)", version)
		}
		params, headerSize = 8, 256
	}
	h.dim, h.hiddenDim, h.layers, h.heads = i32(params), i32(params+4), i32(params+8), i32(params+12)
	h.kvHeads, h.vocab, h.seqLen = i32(params+16), i32(params+20), i32(params+24)
	if version == 0 {
		h.shared = h.vocab > 0
		if h.vocab < 0 {
			h.vocab = -h.vocab
		}
	} else {
		h.shared = data[params+28] != 0
	}
	const limit = 1 << 20
	for _, v := range []int{h.dim, h.hiddenDim, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen} {
		if v <= 0 || v > limit {
			return nil, ferr("not a llama2.c checkpoint: header dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d",
				h.dim, h.hiddenDim, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen)
		}
	}
	if h.dim%h.heads != 0 || h.heads%h.kvHeads != 0 || (h.dim/h.heads)%2 != 0 {
		return nil, ferr("inconsistent header: dim %d, n_heads %d, n_kv_heads %d", h.dim, h.heads, h.kvHeads)
	}
	headSize := h.dim / h.heads
	kvDim := h.kvHeads * headSize

	// Tensors in file order: name, GGUF shape [in, out] (or [n]), per layer or not.
	type entry struct {
		name     string
		shape    []int
		perLayer bool
	}
	var order []entry
	embd := entry{"token_embd.weight", []int{h.dim, h.vocab}, false}
	attnNorm := entry{"attn_norm.weight", []int{h.dim}, true}
	ffnNorm := entry{"ffn_norm.weight", []int{h.dim}, true}
	outNorm := entry{"output_norm.weight", []int{h.dim}, false}
	mats := []entry{
		{"attn_q.weight", []int{h.dim, h.dim}, true},
		{"attn_k.weight", []int{h.dim, kvDim}, true},
		{"attn_v.weight", []int{h.dim, kvDim}, true},
		{"attn_output.weight", []int{h.dim, h.dim}, true},
	}
	ffnGate := entry{"ffn_gate.weight", []int{h.dim, h.hiddenDim}, true} // w1
	ffnDown := entry{"ffn_down.weight", []int{h.hiddenDim, h.dim}, true} // w2
	ffnUp := entry{"ffn_up.weight", []int{h.dim, h.hiddenDim}, true}     // w3
	freqCis := entry{"", []int{h.seqLen * headSize / 2}, false}
	if version == 0 {
		order = append(order, embd, attnNorm)
		order = append(order, mats...)
		order = append(order, ffnNorm, ffnGate, ffnDown, ffnUp, outNorm, freqCis, freqCis)
	} else {
		order = append(order, attnNorm, ffnNorm, outNorm, embd)
		order = append(order, mats...)
		order = append(order, ffnGate, ffnDown, ffnUp)
	}
	if !h.shared {
		order = append(order, entry{"output.weight", []int{h.dim, h.vocab}, false})
	}

	// Sizes are bounded (each field <= 2^20), so the total fits in int64 without overflow checks.
	total := int64(headerSize)
	for _, e := range order {
		n := int64(4)
		for _, d := range e.shape {
			n *= int64(d)
		}
		if e.perLayer {
			n *= int64(h.layers)
		}
		total += n
	}
	if total != int64(len(data)) {
		return nil, ferr("size %d bytes does not match the header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d, shared classifier %v: %d bytes)",
			len(data), h.dim, h.hiddenDim, h.layers, h.heads, h.kvHeads, h.vocab, h.seqLen, h.shared, total)
	}

	byName := map[string]*Tensor{}
	off := headerSize
	for _, e := range order {
		n := 4
		for _, d := range e.shape {
			n *= d
		}
		count := 1
		if e.perLayer {
			count = h.layers
		}
		for l := 0; l < count; l++ {
			if e.name != "" {
				name := e.name
				if e.perLayer {
					name = fmt.Sprintf("blk.%d.%s", l, e.name)
				}
				byName[name] = &Tensor{Name: name, Type: TypeF32, Shape: append([]int(nil), e.shape...), Data: data[off : off+n : off+n]}
			}
			off += n
		}
	}

	md := LlamaParams{Name: "llama2.c", VocabSize: h.vocab, ContextLen: h.seqLen, Dim: h.dim, Layers: h.layers,
		FFNDim: h.hiddenDim, Heads: h.heads, KVHeads: h.kvHeads, NormEps: 1e-5, RopeTheta: 10000}.Metadata()

	// Output in llama.cpp's GGUF order: token_embd, output_norm, output, then the layers.
	ck := &Checkpoint{Path: name, Format: FormatLlama2C, Version: version, Metadata: md}
	names := []string{"token_embd.weight", "output_norm.weight"}
	if !h.shared {
		names = append(names, "output.weight")
	}
	for l := 0; l < h.layers; l++ {
		for _, s := range []string{"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"} {
			names = append(names, fmt.Sprintf("blk.%d.%s.weight", l, s))
		}
	}
	for _, n := range names {
		ck.Tensors = append(ck.Tensors, byName[n])
	}
	return ck, nil
}

// float32s decodes little-endian float32 data (for tests and tools; allocates).
func float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
