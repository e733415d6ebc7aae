package export

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	ollamagguf "github.com/ollama/ollama/fs/gguf"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const stories260KBin = "../../shared/models/stories260K/stories260K.bin"

// gqaConfig is a small random model with odd head counts (9 query heads in 3 groups of 3) and a hidden size
// that is not a multiple of 32, with the stories260K vocabulary.
var gqaConfig = model.Config{Arch: "llama", Dim: 72, HiddenDim: 100, NLayers: 2, NHeads: 9, NKVHeads: 3, HeadDim: 8,
	VocabSize: 512, ContextLen: 256, NormEps: 1e-6, RopeTheta: 500000, RopeScaling: model.RopeScalingNone,
	RopeScaleFactor: 1, TiedOutput: true}

// randomWeights returns a model of shape cfg with seeded random weights: matrices N(0, 0.3/sqrt(in)), norms
// 1 + N(0, 0.1), so activations stay of order one through the layers.
func randomWeights(cfg model.Config, seed uint64) *Weights {
	r := rand.New(rand.NewPCG(seed, 1))
	w := &Weights{Config: cfg}
	mat := func(name string, out, in int) {
		d := make([]float32, out*in)
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.3 / math.Sqrt(float64(in)))
		}
		w.Tensors = append(w.Tensors, Tensor{Name: name, Shape: []int{out, in}, Data: d})
	}
	norm := func(name string) {
		d := make([]float32, cfg.Dim)
		for i := range d {
			d[i] = float32(1 + 0.1*r.NormFloat64())
		}
		w.Tensors = append(w.Tensors, Tensor{Name: name, Shape: []int{cfg.Dim}, Data: d})
	}
	mat("token_embd.weight", cfg.VocabSize, cfg.Dim)
	for _, t := range w.Tensors[:1] {
		for i := range t.Data {
			t.Data[i] *= float32(math.Sqrt(float64(cfg.Dim)) * 3) // embeddings of order one
		}
	}
	if !cfg.TiedOutput {
		mat("output.weight", cfg.VocabSize, cfg.Dim)
	}
	norm("output_norm.weight")
	for l := range cfg.NLayers {
		p := fmt.Sprintf("blk.%d.", l)
		norm(p + "attn_norm.weight")
		mat(p+"attn_q.weight", cfg.QDim(), cfg.Dim)
		mat(p+"attn_k.weight", cfg.KVDim(), cfg.Dim)
		mat(p+"attn_v.weight", cfg.KVDim(), cfg.Dim)
		mat(p+"attn_output.weight", cfg.Dim, cfg.QDim())
		norm(p + "ffn_norm.weight")
		mat(p+"ffn_gate.weight", cfg.HiddenDim, cfg.Dim)
		mat(p+"ffn_up.weight", cfg.HiddenDim, cfg.Dim)
		mat(p+"ffn_down.weight", cfg.Dim, cfg.HiddenDim)
	}
	return w
}

// storiesTokenizer returns the stories260K GGUF's metadata (for its tokenizer keys).
func storiesMetadata(t *testing.T) *weights.Metadata {
	t.Helper()
	ck, err := weights.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	return ck.Metadata.Clone()
}

// writeGGUFFile writes w with opts to a temporary file and returns its path.
func writeGGUFFile(t *testing.T, w *Weights, opts GGUFOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	if err := WriteGGUFFile(path, w, opts); err != nil {
		t.Fatal(err)
	}
	return path
}

// promptIDs is a fixed prompt in the stories260K vocabulary.
func promptIDs(t *testing.T) []int32 {
	t.Helper()
	tok, err := tokenizer.Load(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Encode("Once upon a time, Lily found a big red ball in the garden.", true, false)
}

// TestGGUFMatchesLlamaCppFile exports stories260K (read from llama.cpp's own GGUF conversion of it) and checks
// the result against that file through ollama's independent GGUF reader: every key llama.cpp wrote has the same
// value, every tensor the same name, type, shape and bytes; and the exported file's logits equal the source's.
func TestGGUFMatchesLlamaCppFile(t *testing.T) {
	ck, src := openModel(t, stories260K)
	w, err := FromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	path := writeGGUFFile(t, w, GGUFOptions{Name: "llama", Tokenizer: ck.Metadata})

	ref, err := ollamagguf.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	got, err := ollamagguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	exported := map[string]ollamagguf.Value{}
	for _, kv := range got.KeyValues() {
		exported[kv.Key] = kv.Value
	}
	for _, kv := range ref.KeyValues() {
		if g, ok := exported[kv.Key]; !ok || !reflect.DeepEqual(g, kv.Value) {
			t.Errorf("key %s: exported %#v, llama.cpp's file %#v", kv.Key, g, kv.Value)
		}
	}
	for _, key := range []string{"general.file_type", "llama.vocab_size", "llama.rope.freq_base"} {
		if _, ok := exported[key]; !ok {
			t.Errorf("exported file lacks %s", key)
		}
	}
	if got.NumTensors() != ref.NumTensors() {
		t.Errorf("%d tensors, llama.cpp's file has %d", got.NumTensors(), ref.NumTensors())
	}
	for _, ti := range ref.TensorInfos() {
		gi, gr, err := got.TensorReader(ti.Name)
		if err != nil {
			t.Errorf("tensor %s: %v", ti.Name, err)
			continue
		}
		_, rr, err := ref.TensorReader(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := io.ReadAll(gr)
		b, _ := io.ReadAll(rr)
		if gi.Type != ti.Type || !slices.Equal(gi.Shape, ti.Shape) || !bytes.Equal(a, b) {
			t.Errorf("tensor %s: exported %v %v (%d bytes), llama.cpp's %v %v (%d bytes), same bytes %v",
				ti.Name, gi.Type, gi.Shape, len(a), ti.Type, ti.Shape, len(b), bytes.Equal(a, b))
		}
	}

	_, m := openModel(t, path)
	ids := promptIDs(t)
	if a, b := lastLogits(t, m, ids), lastLogits(t, src, ids); !slices.Equal(a, b) {
		t.Errorf("exported model's logits differ from the source's: %v vs %v", a[:4], b[:4])
	}
}

// TestGGUFRoundTrip exports checkpoints of other formats and shapes (llama2.c stories260K; a random GQA model
// with 9 heads in groups of 3 and tied embeddings) as F32, F16 and Q8_0, loads each export with package model,
// and compares logits with the source: equal for F32, within a bound for the rounded types, whose stored values
// must equal weights.Quantize's rounding of the source's.
func TestGGUFRoundTrip(t *testing.T) {
	md := storiesMetadata(t)
	ids := promptIDs(t)

	bin, err := weights.Open(stories260KBin)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	fromBin, err := FromCheckpoint(bin)
	if err != nil {
		t.Fatal(err)
	}
	binModel, err := model.Load(bin, model.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer binModel.Close()
	binLogits := lastLogits(t, binModel, ids)

	gqa := randomWeights(gqaConfig, 7)
	gqaPath := writeGGUFFile(t, gqa, GGUFOptions{Tokenizer: md})
	_, gqaModel := openModel(t, gqaPath)
	gqaLogits := lastLogits(t, gqaModel, ids)

	for _, c := range []struct {
		name   string
		w      *Weights
		logits []float32
	}{{"llama2c", fromBin, binLogits}, {"gqa", gqa, gqaLogits}} {
		for _, typ := range []weights.Type{weights.TypeF32, weights.TypeF16, weights.TypeQ8_0} {
			t.Run(c.name+"/"+typ.String(), func(t *testing.T) {
				path := writeGGUFFile(t, c.w, GGUFOptions{Type: typ, Tokenizer: md})
				ck, m := openModel(t, path)
				if typ == weights.TypeF32 && c.name == "gqa" {
					return // the source itself
				}
				for _, src := range c.w.Tensors {
					dst := ck.Tensor(src.Name)
					if dst == nil {
						t.Fatalf("tensor %s missing", src.Name)
					}
					want := src.Data
					if len(src.Shape) == 2 {
						want = rounded(t, dst.Type, src.Data)
					} else if dst.Type != weights.TypeF32 {
						t.Errorf("vector %s stored as %s", src.Name, dst.Type)
					}
					got := make([]float32, len(src.Data))
					if err := weights.Dequantize(dst.Type, dst.Data, got); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, want) {
						t.Errorf("tensor %s (%s): stored values differ from the source's %s rounding", src.Name, dst.Type, dst.Type)
					}
				}
				got := lastLogits(t, m, ids)
				bound := map[weights.Type]float64{weights.TypeF32: 0, weights.TypeF16: 2e-2, weights.TypeQ8_0: 0.5}[typ]
				if d := maxAbsDiff(got, c.logits); d > bound {
					t.Errorf("logits off by %.3g from the source's (bound %.3g)", d, bound)
				}
			})
		}
	}
}

// rounded returns data as type t stores it.
func rounded(t *testing.T, typ weights.Type, data []float32) []float32 {
	t.Helper()
	n, err := weights.TensorBytes(typ, []int{len(data)})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if err := weights.Quantize(typ, data, buf); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data))
	if err := weights.Dequantize(typ, buf, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestGGUFErrors(t *testing.T) {
	md := storiesMetadata(t)
	w := randomWeights(gqaConfig, 1)
	for _, c := range []struct {
		name string
		w    *Weights
		opts GGUFOptions
	}{
		{"no tokenizer", w, GGUFOptions{}},
		{"unsupported type", w, GGUFOptions{Tokenizer: md, Type: weights.TypeQ6_K}},
		{"vocabulary size", randomWeights(model.Config{Arch: "llama", Dim: 16, HiddenDim: 32, NLayers: 1, NHeads: 2,
			NKVHeads: 1, HeadDim: 8, VocabSize: 300, ContextLen: 32, NormEps: 1e-5, RopeTheta: 10000, TiedOutput: true}, 1),
			GGUFOptions{Tokenizer: md}},
		{"missing tensor", &Weights{Config: gqaConfig, Tensors: w.Tensors[1:]}, GGUFOptions{Tokenizer: md}},
		{"unknown tensor", &Weights{Config: gqaConfig, Tensors: append(slices.Clone(w.Tensors), Tensor{Name: "score.weight", Shape: []int{72}, Data: make([]float32, 72)})},
			GGUFOptions{Tokenizer: md}},
		{"extra key clash", w, GGUFOptions{Tokenizer: md, Extra: map[string]any{"llama.block_count": uint32(3)}}},
	} {
		if err := WriteGGUF(io.Discard, c.w, c.opts); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}
