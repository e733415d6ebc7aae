package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestSafetensorsStoriesMatchesGGUF reads the HF export of stories260K made by scripts/reference_llama.py
// (torch; q/k permuted to HF order by transformers' own permute) and checks every tensor equals
// stories260K.gguf's after our inverse permutation.
func TestSafetensorsStoriesMatchesGGUF(t *testing.T) {
	st, err := Open("../model/testdata/stories260K_hf")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gg, err := OpenGGUF(filepath.Join(sharedDir, "models/stories260K/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer gg.Close()
	if st.Format != FormatSafetensors {
		t.Errorf("format %q", st.Format)
	}
	for _, key := range []string{"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
		"llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count"} {
		a, _ := st.Metadata.Int(key)
		b, _ := gg.Metadata.Int(key)
		if a != b {
			t.Errorf("%s: safetensors %d, gguf %d", key, a, b)
		}
	}
	n := 0
	for _, g := range gg.Tensors {
		s := st.Tensor(g.Name)
		if g.Name == "output.weight" {
			if s != nil {
				t.Error("tied embeddings but output.weight present")
			}
			continue
		}
		if s == nil {
			t.Errorf("%s missing", g.Name)
			continue
		}
		if !reflect.DeepEqual(s.Shape, g.Shape) || s.Type != g.Type || !bytes.Equal(s.Data, g.Data) {
			t.Errorf("%s: safetensors %s %v differs from gguf %s %v", g.Name, s.Type, s.Shape, g.Type, g.Shape)
		}
		n++
	}
	if n != len(st.Tensors) {
		t.Errorf("matched %d of %d safetensors tensors", n, len(st.Tensors))
	}
}

// writeSafetensors writes tensors (safetensors names, row-major shapes, raw data) as one file.
func writeSafetensors(t *testing.T, path string, tensors []*Tensor, dtypes map[Type]string) {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var body []byte
	for _, x := range tensors {
		header[x.Name] = map[string]any{"dtype": dtypes[x.Type], "shape": x.Shape, "data_offsets": []int{len(body), len(body) + len(x.Data)}}
		body = append(body, x.Data...)
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), body...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// ropeHalf applies HF's rotary embedding (pairs (i, i+d/2), "rotate_half") to one head in place.
func ropeHalf(x []float64, pos int) {
	d := len(x)
	for i := 0; i < d/2; i++ {
		th := float64(pos) / math.Pow(10000, float64(2*i)/float64(d))
		a, b := x[i], x[i+d/2]
		x[i], x[i+d/2] = a*math.Cos(th)-b*math.Sin(th), a*math.Sin(th)+b*math.Cos(th)
	}
}

// ropePairs applies GGUF/llama.cpp's normal rotary embedding (adjacent pairs (2i, 2i+1)) to one head in place.
func ropePairs(x []float64, pos int) {
	d := len(x)
	for i := 0; i < d/2; i++ {
		th := float64(pos) / math.Pow(10000, float64(2*i)/float64(d))
		a, b := x[2*i], x[2*i+1]
		x[2*i], x[2*i+1] = a*math.Cos(th)-b*math.Sin(th), a*math.Sin(th)+b*math.Cos(th)
	}
}

// matVec computes W x for W with rows of len(x) float32 values.
func matVec(w []float32, x []float64) []float64 {
	out := make([]float64, len(w)/len(x))
	for r := range out {
		for c, xv := range x {
			out[r] += float64(w[r*len(x)+c]) * xv
		}
	}
	return out
}

// TestSafetensorsPermutation writes a tiny random HF LlamaForCausalLM (GQA, sharded, F32/F16/BF16) and checks
// that attention scores computed the HF way (rotate-half rope on HF q/k) equal those computed the GGUF way
// (adjacent-pair rope on our converted q/k): the permutation is right whatever its implementation.
func TestSafetensorsPermutation(t *testing.T) {
	const dim, heads, kvHeads, hidden, vocab = 32, 4, 2, 48, 16
	headDim := dim / heads
	rng := rand.New(rand.NewPCG(7, 8))
	randv := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	wq, wk := randv(dim*dim), randv(kvHeads*headDim*dim)
	dir := t.TempDir()
	dtypes := map[Type]string{TypeF32: "F32", TypeF16: "F16", TypeBF16: "BF16"}
	shard1 := []*Tensor{
		{Name: "model.embed_tokens.weight", Type: TypeF32, Shape: []int{vocab, dim}, Data: f32Bytes(randv(vocab * dim))},
		{Name: "model.layers.0.self_attn.q_proj.weight", Type: TypeF32, Shape: []int{dim, dim}, Data: f32Bytes(wq)},
		{Name: "model.layers.0.self_attn.k_proj.weight", Type: TypeF32, Shape: []int{kvHeads * headDim, dim}, Data: f32Bytes(wk)},
		{Name: "model.layers.0.self_attn.v_proj.weight", Type: TypeF32, Shape: []int{kvHeads * headDim, dim}, Data: f32Bytes(randv(kvHeads * headDim * dim))},
		{Name: "model.layers.0.self_attn.o_proj.weight", Type: TypeF32, Shape: []int{dim, dim}, Data: f32Bytes(randv(dim * dim))},
		{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", Type: TypeF32, Shape: []int{headDim / 2}, Data: f32Bytes(randv(headDim / 2))},
	}
	f16 := make([]byte, 2*dim*hidden)
	for i := 0; i < dim*hidden; i++ {
		binary.LittleEndian.PutUint16(f16[2*i:], Float32To16(float32(i)/100))
	}
	shard2 := []*Tensor{
		{Name: "model.layers.0.mlp.gate_proj.weight", Type: TypeF16, Shape: []int{hidden, dim}, Data: f16},
		{Name: "model.layers.0.mlp.up_proj.weight", Type: TypeBF16, Shape: []int{hidden, dim}, Data: f16},
		{Name: "model.layers.0.mlp.down_proj.weight", Type: TypeF32, Shape: []int{dim, hidden}, Data: f32Bytes(randv(dim * hidden))},
		{Name: "model.layers.0.input_layernorm.weight", Type: TypeF32, Shape: []int{dim}, Data: f32Bytes(randv(dim))},
		{Name: "model.layers.0.post_attention_layernorm.weight", Type: TypeF32, Shape: []int{dim}, Data: f32Bytes(randv(dim))},
		{Name: "model.norm.weight", Type: TypeF32, Shape: []int{dim}, Data: f32Bytes(randv(dim))},
		{Name: "lm_head.weight", Type: TypeF32, Shape: []int{vocab, dim}, Data: f32Bytes(randv(vocab * dim))},
	}
	writeSafetensors(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), shard1, dtypes)
	writeSafetensors(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), shard2, dtypes)
	wm := map[string]string{}
	for _, x := range shard1 {
		wm[x.Name] = "model-00001-of-00002.safetensors"
	}
	for _, x := range shard2 {
		wm[x.Name] = "model-00002-of-00002.safetensors"
	}
	idx, _ := json.Marshal(map[string]any{"weight_map": wm})
	cfg := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"hidden_size":%d,"num_hidden_layers":1,"num_attention_heads":%d,
		"num_key_value_heads":%d,"intermediate_size":%d,"rms_norm_eps":1e-6,"rope_theta":500000,"vocab_size":%d,
		"max_position_embeddings":4096,"tie_word_embeddings":false,"rope_scaling":{"type":"linear","factor":2.0}}`, dim, heads, kvHeads, hidden, vocab)
	for name, body := range map[string][]byte{"model.safetensors.index.json": idx, "config.json": []byte(cfg)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ck, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var names []string
	for _, x := range ck.Tensors {
		names = append(names, x.Name)
	}
	want := []string{"token_embd.weight", "blk.0.attn_k.weight", "blk.0.attn_norm.weight", "blk.0.attn_output.weight",
		"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "blk.0.ffn_gate.weight",
		"blk.0.ffn_norm.weight", "blk.0.ffn_up.weight", "output.weight", "output_norm.weight"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("tensors %v, want %v", names, want)
	}
	for key, v := range map[string]any{"llama.embedding_length": uint32(dim), "llama.attention.head_count_kv": uint32(kvHeads),
		"llama.context_length": uint32(4096), "llama.rope.freq_base": float32(500000), "llama.attention.layer_norm_rms_epsilon": float32(1e-6),
		"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": float32(2), "llama.vocab_size": uint32(vocab),
		"llama.feed_forward_length": uint32(hidden), "llama.block_count": uint32(1)} {
		if got, _ := ck.Metadata.Value(key); got != v {
			t.Errorf("%s = %v (%T), want %v (%T)", key, got, got, v, v)
		}
	}
	if g := ck.Tensor("blk.0.ffn_gate.weight"); g.Type != TypeF16 || !reflect.DeepEqual(g.Shape, []int{dim, hidden}) || !bytes.Equal(g.Data, f16) {
		t.Errorf("ffn_gate: %s %v", g.Type, g.Shape)
	}
	if g := ck.Tensor("blk.0.ffn_up.weight"); g.Type != TypeBF16 {
		t.Errorf("ffn_up type %s", g.Type)
	}
	gq, gk := float32s(ck.Tensor("blk.0.attn_q.weight").Data), float32s(ck.Tensor("blk.0.attn_k.weight").Data)
	if s := ck.Tensor("blk.0.attn_q.weight").Shape; !reflect.DeepEqual(s, []int{dim, dim}) {
		t.Errorf("attn_q shape %v", s)
	}
	if s := ck.Tensor("blk.0.attn_k.weight").Shape; !reflect.DeepEqual(s, []int{dim, kvHeads * headDim}) {
		t.Errorf("attn_k shape %v", s)
	}
	x1, x2 := make([]float64, dim), make([]float64, dim)
	for i := range x1 {
		x1[i], x2[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	for _, pos := range [][2]int{{0, 0}, {3, 1}, {17, 5}} {
		hq, hk := matVec(wq, x1), matVec(wk, x2)
		oq, ok := matVec(gq, x1), matVec(gk, x2)
		for h := 0; h < heads; h++ {
			kv := h / (heads / kvHeads)
			q1, k1 := hq[h*headDim:(h+1)*headDim], hk[kv*headDim:(kv+1)*headDim]
			q2, k2 := oq[h*headDim:(h+1)*headDim], ok[kv*headDim:(kv+1)*headDim]
			ropeHalf(q1, pos[0])
			ropeHalf(k1, pos[1])
			ropePairs(q2, pos[0])
			ropePairs(k2, pos[1])
			s1, s2 := 0.0, 0.0
			for i := range q1 {
				s1 += q1[i] * k1[i]
				s2 += q2[i] * k2[i]
			}
			if math.Abs(s1-s2) > 1e-9*(1+math.Abs(s1)) {
				t.Errorf("positions %v head %d: HF score %g, GGUF score %g", pos, h, s1, s2)
			}
		}
	}
	// The unpermuted source must give different scores (the test can fail).
	if reflect.DeepEqual(gq, wq) {
		t.Error("q was not permuted")
	}
}

func TestLlama3RopeFactors(t *testing.T) {
	rs := map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192.0}
	f := float32s(llama3RopeFactors(500000, 128, rs).Data)
	if len(f) != 64 {
		t.Fatalf("%d factors", len(f))
	}
	// High frequencies (short wavelengths) unscaled, lowest frequencies scaled by factor, monotone in between.
	if f[0] != 1 || f[63] != 8 {
		t.Errorf("factors start %g end %g, want 1 and 8", f[0], f[63])
	}
	if !sort.SliceIsSorted(f, func(i, j int) bool { return f[i] < f[j] }) {
		t.Errorf("factors not monotone: %v", f)
	}
}

func TestParseSafetensorsErrors(t *testing.T) {
	mk := func(header string, body int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return append(append(b, header...), make([]byte, body)...)
	}
	cases := map[string][]byte{
		"short":    {1, 2},
		"hdrlen":   binary.LittleEndian.AppendUint64(nil, 1<<40),
		"json":     mk("{nope", 0),
		"dtype":    mk(`{"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, 4),
		"bounds":   mk(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8),
		"size":     mk(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}`, 16),
		"overlap":  mk(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, 16),
		"negative": mk(`{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}`, 16),
		"huge":     mk(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`, 16),
	}
	for name, data := range cases {
		_, _, err := ParseSafetensors("bad.safetensors", data)
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "bad.safetensors") {
			t.Errorf("%s: error %v, want a FormatError naming the file", name, err)
		}
	}
	ts, meta, err := ParseSafetensors("ok", mk(`{"__metadata__":{"k":"v"},"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}`, 8))
	if err != nil || len(ts) != 1 || meta["k"] != "v" || !reflect.DeepEqual(ts[0].Shape, []int{2, 2}) {
		t.Errorf("good file: %v %v %v", ts, meta, err)
	}
}
