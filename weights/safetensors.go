package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// maxSafetensorsHeader bounds the JSON header of a safetensors file (the format's own limit is 100 MB).
const maxSafetensorsHeader = 100 << 20

// ParseSafetensors parses a safetensors file held in data (8-byte little-endian header length, JSON header,
// tensor bytes). It returns the tensors with their safetensors names and shapes in safetensors (row-major, outer
// first) order, sorted by data offset, with Data aliasing data, and the header's __metadata__ strings. Only
// F32, F16 and BF16 tensors are accepted; every offset is checked against len(data).
func ParseSafetensors(name string, data []byte) ([]*Tensor, map[string]string, error) {
	ferr := func(format string, args ...any) error {
		return &FormatError{Path: name, Offset: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) < 8 {
		return nil, nil, ferr("truncated: %d bytes is too short for a safetensors header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxSafetensorsHeader || n > uint64(len(data)-8) {
		return nil, nil, ferr("header length %d exceeds the file (%d bytes) or the 100 MB limit", n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimRight(header, " "), &raw); err != nil {
		return nil, nil, ferr("bad JSON header: %v", err)
	}
	var meta map[string]string
	type span struct {
		t          *Tensor
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	for key, msg := range raw {
		if key == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, ferr("bad __metadata__: %v", err)
			}
			continue
		}
		var info struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &info); err != nil {
			return nil, nil, ferr("tensor %q: bad header entry: %v", key, err)
		}
		var typ Type
		switch info.DType {
		case "F32":
			typ = TypeF32
		case "F16":
			typ = TypeF16
		case "BF16":
			typ = TypeBF16
		default:
			return nil, nil, ferr("tensor %q: unsupported dtype %q (want F32, F16 or BF16)", key, info.DType)
		}
		if len(info.Shape) > maxDims {
			return nil, nil, ferr("tensor %q has %d dimensions (at most %d)", key, len(info.Shape), maxDims)
		}
		if len(info.DataOffsets) != 2 || info.DataOffsets[0] > info.DataOffsets[1] || info.DataOffsets[1] > uint64(len(body)) {
			return nil, nil, ferr("tensor %q: data_offsets %v out of the %d data bytes", key, info.DataOffsets, len(body))
		}
		elems := uint64(1)
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			hi, lo := bits.Mul64(elems, uint64(d))
			if d < 0 || hi != 0 || lo > uint64(len(body)) {
				return nil, nil, ferr("tensor %q has absurd shape %v", key, info.Shape)
			}
			elems = lo
			shape[i] = int(d)
		}
		if want := elems * uint64(typ.BlockBytes()); info.DataOffsets[1]-info.DataOffsets[0] != want {
			return nil, nil, ferr("tensor %q: %d data bytes for %v %s values (want %d)", key, info.DataOffsets[1]-info.DataOffsets[0], info.Shape, info.DType, want)
		}
		b, e := info.DataOffsets[0], info.DataOffsets[1]
		spans = append(spans, span{&Tensor{Name: key, Type: typ, Shape: shape, Data: body[b:e:e]}, b, e})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].t.Name < spans[j].t.Name
	})
	tensors := make([]*Tensor, len(spans))
	for i, s := range spans {
		if i > 0 && s.begin < spans[i-1].end {
			return nil, nil, ferr("tensor %q overlaps tensor %q", s.t.Name, spans[i-1].t.Name)
		}
		tensors[i] = s.t
	}
	return tensors, meta, nil
}

// hfConfig holds the config.json fields of a LlamaForCausalLM model.
type hfConfig struct {
	Architectures         []string       `json:"architectures"`
	ModelType             string         `json:"model_type"`
	HiddenSize            int            `json:"hidden_size"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumKeyValueHeads      int            `json:"num_key_value_heads"`
	IntermediateSize      int            `json:"intermediate_size"`
	HeadDim               int            `json:"head_dim"`
	RMSNormEps            float64        `json:"rms_norm_eps"`
	RopeTheta             float64        `json:"rope_theta"`
	RopeScaling           map[string]any `json:"rope_scaling"`
	TieWordEmbeddings     bool           `json:"tie_word_embeddings"`
	VocabSize             int            `json:"vocab_size"`
	MaxPositionEmbeddings int            `json:"max_position_embeddings"`
}

// OpenSafetensors reads a Hugging Face LlamaForCausalLM checkpoint: path is its directory (holding config.json
// and model.safetensors or model.safetensors.index.json with its shards) or one .safetensors file with
// config.json beside it. Tensors come out with GGUF names and shapes, and q/k rows permuted from HF's
// rotate-half order to GGUF's interleaved pairs (those two are copied; all other data is memory-mapped).
func OpenSafetensors(path string) (*Checkpoint, error) {
	dir, files := path, []string(nil)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.IsDir() {
		dir, files = filepath.Dir(path), []string{path}
	}
	cfgBytes, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("weights: safetensors checkpoint needs config.json: %w", err)
	}
	var cfg hfConfig
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return nil, &FormatError{Path: filepath.Join(dir, "config.json"), Offset: -1, Msg: "bad JSON: " + err.Error()}
	}
	if files == nil {
		files, err = safetensorsFiles(dir)
		if err != nil {
			return nil, err
		}
	}
	ck := &Checkpoint{Path: path, Format: FormatSafetensors}
	var hf []*Tensor
	for _, f := range files {
		data, err := mapFile(f)
		if err != nil {
			ck.Close()
			return nil, err
		}
		if data != nil {
			ck.maps = append(ck.maps, data)
		}
		ts, _, err := ParseSafetensors(f, data)
		if err != nil {
			ck.Close()
			return nil, err
		}
		hf = append(hf, ts...)
	}
	md, tensors, err := normalizeHF(dir, cfg, hf)
	if err != nil {
		ck.Close()
		return nil, err
	}
	ck.Metadata, ck.Tensors = md, tensors
	return ck, nil
}

// safetensorsFiles lists the safetensors files of a model directory: the shards named by
// model.safetensors.index.json, or model.safetensors.
func safetensorsFiles(dir string) ([]string, error) {
	index := filepath.Join(dir, "model.safetensors.index.json")
	b, err := os.ReadFile(index)
	if errors.Is(err, os.ErrNotExist) {
		single := filepath.Join(dir, "model.safetensors")
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("weights: %s has neither model.safetensors nor model.safetensors.index.json", dir)
		}
		return []string{single}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, &FormatError{Path: index, Offset: -1, Msg: "bad JSON: " + err.Error()}
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range idx.WeightMap {
		if f != filepath.Base(f) || !strings.HasSuffix(f, ".safetensors") {
			return nil, &FormatError{Path: index, Offset: -1, Msg: fmt.Sprintf("bad shard file name %q", f)}
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(dir, f))
		}
	}
	if len(files) == 0 {
		return nil, &FormatError{Path: index, Offset: -1, Msg: "empty weight_map"}
	}
	sort.Strings(files)
	return files, nil
}

// hfLayerTensor maps an HF per-layer tensor name (after "model.layers.N.") to its GGUF one, or "".
func hfLayerTensor(name string) string {
	switch name {
	case "self_attn.q_proj.weight":
		return "attn_q.weight"
	case "self_attn.k_proj.weight":
		return "attn_k.weight"
	case "self_attn.v_proj.weight":
		return "attn_v.weight"
	case "self_attn.o_proj.weight":
		return "attn_output.weight"
	case "mlp.gate_proj.weight":
		return "ffn_gate.weight"
	case "mlp.up_proj.weight":
		return "ffn_up.weight"
	case "mlp.down_proj.weight":
		return "ffn_down.weight"
	case "input_layernorm.weight":
		return "attn_norm.weight"
	case "post_attention_layernorm.weight":
		return "ffn_norm.weight"
	}
	return ""
}

// normalizeHF turns HF config and tensors into GGUF metadata and tensors.
func normalizeHF(dir string, cfg hfConfig, hf []*Tensor) (*Metadata, []*Tensor, error) {
	cfgErr := func(format string, args ...any) error {
		return &FormatError{Path: filepath.Join(dir, "config.json"), Offset: -1, Msg: fmt.Sprintf(format, args...)}
	}
	if len(cfg.Architectures) > 0 && cfg.Architectures[0] != "LlamaForCausalLM" && cfg.Architectures[0] != "MistralForCausalLM" {
		return nil, nil, cfgErr("unsupported architecture %q (want LlamaForCausalLM)", cfg.Architectures[0])
	}
	if cfg.NumKeyValueHeads == 0 {
		cfg.NumKeyValueHeads = cfg.NumAttentionHeads
	}
	if cfg.HiddenSize <= 0 || cfg.NumHiddenLayers <= 0 || cfg.NumAttentionHeads <= 0 || cfg.IntermediateSize <= 0 ||
		cfg.NumKeyValueHeads <= 0 || cfg.NumAttentionHeads%cfg.NumKeyValueHeads != 0 || cfg.VocabSize <= 0 {
		return nil, nil, cfgErr("bad sizes: hidden_size %d, num_hidden_layers %d, num_attention_heads %d, num_key_value_heads %d, intermediate_size %d, vocab_size %d",
			cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.IntermediateSize, cfg.VocabSize)
	}
	headDim := cfg.HeadDim
	if headDim == 0 {
		if cfg.HiddenSize%cfg.NumAttentionHeads != 0 {
			return nil, nil, cfgErr("hidden_size %d is not a multiple of num_attention_heads %d", cfg.HiddenSize, cfg.NumAttentionHeads)
		}
		headDim = cfg.HiddenSize / cfg.NumAttentionHeads
	}
	if headDim%2 != 0 {
		return nil, nil, cfgErr("odd head dimension %d", headDim)
	}
	if cfg.RMSNormEps == 0 {
		cfg.RMSNormEps = 1e-6 // transformers' LlamaConfig default
	}
	if cfg.RopeTheta == 0 {
		cfg.RopeTheta = 10000
	}
	if cfg.MaxPositionEmbeddings == 0 {
		cfg.MaxPositionEmbeddings = 2048
	}
	md := LlamaParams{Name: filepath.Base(dir), VocabSize: cfg.VocabSize, ContextLen: cfg.MaxPositionEmbeddings,
		Dim: cfg.HiddenSize, Layers: cfg.NumHiddenLayers, FFNDim: cfg.IntermediateSize, Heads: cfg.NumAttentionHeads,
		KVHeads: cfg.NumKeyValueHeads, HeadDim: headDim, NormEps: float32(cfg.RMSNormEps), RopeTheta: float32(cfg.RopeTheta)}.Metadata()
	var ropeFreqs *Tensor
	if rs := cfg.RopeScaling; rs != nil {
		kind, _ := rs["rope_type"].(string)
		if kind == "" {
			kind, _ = rs["type"].(string)
		}
		factor, _ := rs["factor"].(float64)
		switch kind {
		case "linear":
			if factor <= 0 {
				return nil, nil, cfgErr("linear rope_scaling needs a positive factor")
			}
			md.Set("llama.rope.scaling.type", "linear")
			md.Set("llama.rope.scaling.factor", float32(factor))
		case "llama3":
			ropeFreqs = llama3RopeFactors(cfg.RopeTheta, headDim, rs)
		case "", "default":
		default:
			return nil, nil, cfgErr("unsupported rope_scaling type %q (want linear or llama3)", kind)
		}
	}

	var out []*Tensor
	for _, t := range hf {
		name, err := ggufNameHF(t.Name, cfg.NumHiddenLayers)
		if err != nil {
			return nil, nil, err
		}
		if name == "" || (name == "output.weight" && cfg.TieWordEmbeddings) {
			continue
		}
		g := &Tensor{Name: name, Type: t.Type, Shape: reversed(t.Shape), Data: t.Data}
		switch {
		case strings.HasSuffix(name, ".attn_q.weight"):
			if err := permuteHF(g, cfg.NumAttentionHeads); err != nil {
				return nil, nil, err
			}
		case strings.HasSuffix(name, ".attn_k.weight"):
			if err := permuteHF(g, cfg.NumKeyValueHeads); err != nil {
				return nil, nil, err
			}
		}
		out = append(out, g)
	}
	if ropeFreqs != nil {
		out = append(out, ropeFreqs)
	}
	sort.SliceStable(out, func(i, j int) bool { return tensorOrder(out[i].Name) < tensorOrder(out[j].Name) })
	return md, out, nil
}

// ggufNameHF maps an HF tensor name to its GGUF name; "" means the tensor is dropped (rotary inv_freq).
func ggufNameHF(name string, layers int) (string, error) {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil
	case "model.norm.weight":
		return "output_norm.weight", nil
	case "lm_head.weight":
		return "output.weight", nil
	}
	if rest, ok := strings.CutPrefix(name, "model.layers."); ok {
		num, tail, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err == nil && n >= 0 && n < layers && strconv.Itoa(n) == num {
			if strings.HasSuffix(tail, "rotary_emb.inv_freq") {
				return "", nil
			}
			if g := hfLayerTensor(tail); g != "" {
				return "blk." + num + "." + g, nil
			}
		}
	}
	return "", fmt.Errorf("weights: unexpected tensor %q in a LlamaForCausalLM checkpoint", name)
}

// tensorOrder sorts tensors as llama.cpp's converter writes them: token_embd, layers in order, then the rest.
func tensorOrder(name string) string {
	if name == "token_embd.weight" {
		return "0"
	}
	if rest, ok := strings.CutPrefix(name, "blk."); ok {
		n, tail, _ := strings.Cut(rest, ".")
		return fmt.Sprintf("1%08s.%s", n, tail)
	}
	return "2" + name
}

func reversed(s []int) []int {
	r := make([]int, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	if len(r) == 0 {
		r = []int{1}
	}
	return r
}

// permuteHF reorders the rows of a q or k projection (GGUF shape [in, heads*headDim]) from HF's layout, where
// each head's rows are [first halves of the rotary pairs..., second halves...], to GGUF's interleaved pairs:
// GGUF row h*headDim + 2i + j = HF row h*headDim + j*headDim/2 + i (llama.cpp convert_hf_to_gguf's permute).
// The result is a new copy; the source data is left untouched.
func permuteHF(t *Tensor, heads int) error {
	if len(t.Shape) != 2 || t.Shape[1]%(2*heads) != 0 {
		return fmt.Errorf("weights: %s: shape %v does not split into %d heads of rotary pairs", t.Name, t.Shape, heads)
	}
	rowBytes, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return fmt.Errorf("weights: %s: %w", t.Name, err)
	}
	headDim := t.Shape[1] / heads
	half := headDim / 2
	dst := make([]byte, len(t.Data))
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				to := h*headDim + 2*i + j
				from := h*headDim + j*half + i
				copy(dst[to*rowBytes:(to+1)*rowBytes], t.Data[from*rowBytes:(from+1)*rowBytes])
			}
		}
	}
	t.Data = dst
	return nil
}

// llama3RopeFactors builds rope_freqs.weight for llama3 rope scaling as llama.cpp's converter does: one factor
// per rotary pair by which the pair's frequency is divided.
func llama3RopeFactors(theta float64, headDim int, rs map[string]any) *Tensor {
	get := func(key string, def float64) float64 {
		if v, ok := rs[key].(float64); ok {
			return v
		}
		return def
	}
	factor := get("factor", 8)
	lowFreqFactor := get("low_freq_factor", 1)
	highFreqFactor := get("high_freq_factor", 4)
	oldContext := get("original_max_position_embeddings", 8192)
	lowFreqWavelen := oldContext / lowFreqFactor
	highFreqWavelen := oldContext / highFreqFactor
	data := make([]byte, 4*headDim/2)
	for i := 0; i < headDim/2; i++ {
		freq := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		f := 1.0
		switch {
		case wavelen < highFreqWavelen:
		case wavelen > lowFreqWavelen:
			f = factor
		default:
			smooth := (oldContext/wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
			f = 1 / ((1-smooth)/factor + smooth)
		}
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(f)))
	}
	return &Tensor{Name: "rope_freqs.weight", Type: TypeF32, Shape: []int{headDim / 2}, Data: data}
}
