package model

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// storiesCheckpoint returns stories260K.gguf as an in-memory checkpoint whose metadata and tensor list the
// test may change freely (tensor data is shared with the mapped file: replace it, never write into it).
func storiesCheckpoint(t *testing.T) *weights.Checkpoint {
	t.Helper()
	ck, err := weights.OpenGGUF(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	// Format "test": the tensors may be replaced by Go-allocated data, so they are not one file mapping.
	cp := &weights.Checkpoint{Path: ck.Path, Format: "test", Version: ck.Version, Metadata: ck.Metadata.Clone()}
	for _, tn := range ck.Tensors {
		c := *tn
		c.Shape = append([]int(nil), tn.Shape...)
		cp.Tensors = append(cp.Tensors, &c)
	}
	return cp
}

func dropTensor(ck *weights.Checkpoint, name string) {
	for i, t := range ck.Tensors {
		if t.Name == name {
			ck.Tensors = append(ck.Tensors[:i], ck.Tensors[i+1:]...)
			return
		}
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	if err := weights.Quantize(weights.TypeF32, v, b); err != nil {
		panic(err)
	}
	return b
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(ck *weights.Checkpoint)
		opts   Options
		want   string
		target error
	}{
		{name: "missing tensor", edit: func(ck *weights.Checkpoint) { dropTensor(ck, "blk.3.ffn_up.weight") },
			want: "missing tensor blk.3.ffn_up.weight"},
		{name: "missing norm", edit: func(ck *weights.Checkpoint) { dropTensor(ck, "output_norm.weight") },
			want: "missing tensor output_norm.weight"},
		{name: "missing embedding", edit: func(ck *weights.Checkpoint) { dropTensor(ck, "token_embd.weight") },
			want: "missing tensor token_embd.weight"},
		{name: "shape mismatch", edit: func(ck *weights.Checkpoint) {
			k := ck.Tensor("blk.1.attn_k.weight")
			k.Shape = []int{32, 64}
		}, want: "blk.1.attn_k.weight has shape [32 64], want [64 32]"},
		{name: "short data", edit: func(ck *weights.Checkpoint) {
			w := ck.Tensor("blk.0.ffn_down.weight")
			w.Data = w.Data[:len(w.Data)-4]
		}, want: "blk.0.ffn_down.weight holds"},
		{name: "unknown type", edit: func(ck *weights.Checkpoint) { ck.Tensor("blk.2.attn_v.weight").Type = 99 },
			want: "unsupported type"},
		{name: "unknown architecture", edit: func(ck *weights.Checkpoint) {
			ck.Metadata.Set("general.architecture", "mamba")
		}, want: `architecture "mamba"`, target: ErrUnsupported},
		{name: "no architecture", edit: func(ck *weights.Checkpoint) { ck.Metadata.Delete("general.architecture") },
			want: "no general.architecture"},
		{name: "missing key", edit: func(ck *weights.Checkpoint) { ck.Metadata.Delete("llama.block_count") },
			want: "no llama.block_count"},
		{name: "heads", edit: func(ck *weights.Checkpoint) { ck.Metadata.Set("llama.attention.head_count_kv", uint32(3)) },
			want: "not a multiple of kv head count 3"},
		{name: "negative", edit: func(ck *weights.Checkpoint) { ck.Metadata.Set("llama.embedding_length", int32(-64)) },
			want: "out of range"},
		{name: "huge", edit: func(ck *weights.Checkpoint) { ck.Metadata.Set("llama.feed_forward_length", uint64(1)<<40) },
			want: "out of range"},
		{name: "wrong key type", edit: func(ck *weights.Checkpoint) { ck.Metadata.Set("llama.block_count", "five") },
			want: "not an integer"},
		{name: "context too long", opts: Options{ContextLen: 4096}, want: "context length 4096 is longer than the model's 2048"},
		{name: "rope scaling", edit: func(ck *weights.Checkpoint) { ck.Metadata.Set("llama.rope.scaling.type", "yarn") },
			want: `rope scaling type "yarn"`, target: ErrUnsupported},
		{name: "llama3 without freqs", edit: func(ck *weights.Checkpoint) {
			ck.Metadata.Set("llama.rope.scaling.type", "llama3")
		}, want: "needs tensor rope_freqs.weight"},
		{name: "bad rope freqs", edit: func(ck *weights.Checkpoint) {
			ck.Tensors = append(ck.Tensors, &weights.Tensor{Name: "rope_freqs.weight", Type: weights.TypeF32,
				Shape: []int{4}, Data: f32Bytes([]float32{1, 0, 1, 1})})
		}, want: "non-positive or infinite factor 0"},
		{name: "threads", opts: Options{Threads: 1 << 20}, want: "thread count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck := storiesCheckpoint(t)
			if tc.edit != nil {
				tc.edit(ck)
			}
			m, err := Load(ck, tc.opts)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "model: ") {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Fatalf("error %q does not wrap %v", err, tc.target)
			}
		})
	}
	if _, err := Load(nil, Options{}); err == nil {
		t.Fatal("nil checkpoint loaded")
	}
}

// logitsOf evaluates tokens as one batch on a fresh cache and returns every position's logits.
func logitsOf(t *testing.T, ck *weights.Checkpoint, tokens []int32) ([]float32, Config) {
	t.Helper()
	m, err := Load(ck, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := newCache(t, m, CacheOptions{MaxTokens: 256})
	id := newSeq(t, c)
	b := Batch{Tokens: tokens, Seqs: fill(id, len(tokens)), Logits: make([]bool, len(tokens))}
	for i := range b.Logits {
		b.Logits[i] = true
	}
	out := make([]float32, len(tokens)*m.Config().VocabSize)
	if err := m.Forward(c, b, out); err != nil {
		t.Fatal(err)
	}
	return out, m.Config()
}

// TestRopeScalingAndOutput cross-checks the rope scaling paths and tied output: llama3 per-pair factors
// that are all 1 change nothing, all 2 equal linear scaling by 2 (which does change the logits), and dropping
// output.weight (stories260K's equals its embedding) ties the output to the embedding without changing the
// logits.
func TestRopeScalingAndOutput(t *testing.T) {
	ref := loadReference(t)
	tokens, _, want := ref.seq(t, "short")
	v := ref.VocabSize
	half := 4 // head_dim 8

	base, cfg := logitsOf(t, storiesCheckpoint(t), tokens)
	if cfg.TiedOutput || cfg.RopeScaling != RopeScalingNone {
		t.Fatalf("stories260K config: %+v", cfg)
	}
	for p := range tokens {
		checkRow(t, "base", base[p*v:(p+1)*v], want[p], logitsTol)
	}

	ones := storiesCheckpoint(t)
	ones.Tensors = append(ones.Tensors, &weights.Tensor{Name: "rope_freqs.weight", Type: weights.TypeF32,
		Shape: []int{half}, Data: f32Bytes([]float32{1, 1, 1, 1})})
	got, cfg := logitsOf(t, ones, tokens)
	if cfg.RopeScaling != RopeScalingLlama3 {
		t.Fatalf("rope_freqs present but scaling %q", cfg.RopeScaling)
	}
	checkRow(t, "llama3 factors 1", got, base, 1e-6)

	twos := storiesCheckpoint(t)
	twos.Tensors = append(twos.Tensors, &weights.Tensor{Name: "rope_freqs.weight", Type: weights.TypeF32,
		Shape: []int{half}, Data: f32Bytes([]float32{2, 2, 2, 2})})
	llama3, _ := logitsOf(t, twos, tokens)
	lin := storiesCheckpoint(t)
	lin.Metadata.Set("llama.rope.scaling.type", "linear")
	lin.Metadata.Set("llama.rope.scaling.factor", float32(2))
	linear, cfg := logitsOf(t, lin, tokens)
	if cfg.RopeScaling != RopeScalingLinear || cfg.RopeScaleFactor != 2 {
		t.Fatalf("linear config: %+v", cfg)
	}
	checkRow(t, "llama3 factors 2 vs linear 2", llama3, linear, 1e-5)
	checkRow(t, "position 0 unaffected by scaling", linear[:v], base[:v], 1e-6)
	if d, _ := maxDiff(linear[v:], base[v:]); d < 1e-3 {
		t.Fatalf("linear scaling changed later logits by only %g", d)
	}

	tied := storiesCheckpoint(t)
	dropTensor(tied, "output.weight")
	got, cfg = logitsOf(t, tied, tokens)
	if !cfg.TiedOutput {
		t.Fatal("no output.weight but TiedOutput not set")
	}
	checkRow(t, "tied output", got, base, 1e-6)
}

// TestQuantizedWeights converts stories260K's matrices to F16, Q8_0 and Q4_0 (those whose rows are whole
// blocks; ffn_down's 172 columns stay F32) and compares the logits with an F32 model holding the dequantized
// values of the same weights: the difference is then only the kernels' rounding of activations (none for F16,
// 8-bit blocks for Q8_0/Q4_0, compounded over 5 layers), within 1e-3 for F16 and 0.5 for the integer types
// (logits span about ±15; measured 0.33 and 0.27).
// It also reports the distance to the original F32 reference.
func TestQuantizedWeights(t *testing.T) {
	ref := loadReference(t)
	tokens, _, want := ref.seq(t, "greedy")
	v := ref.VocabSize
	for _, tc := range []struct {
		typ weights.Type
		tol float32
	}{{weights.TypeF16, 1e-3}, {weights.TypeQ8_0, 0.5}, {weights.TypeQ4_0, 0.5}} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			quant, deq := storiesCheckpoint(t), storiesCheckpoint(t)
			converted := 0
			for i, tn := range quant.Tensors {
				if len(tn.Shape) != 2 || tn.Shape[0]%tc.typ.BlockSize() != 0 {
					continue
				}
				src := make([]float32, tn.NumElements())
				if err := weights.Dequantize(tn.Type, tn.Data, src); err != nil {
					t.Fatal(err)
				}
				n, _ := tc.typ.RowBytes(tn.Shape[0])
				dst := make([]byte, n*tn.Shape[1])
				if err := weights.Quantize(tc.typ, src, dst); err != nil {
					t.Fatal(err)
				}
				tn.Type, tn.Data = tc.typ, dst
				if err := weights.Dequantize(tc.typ, dst, src); err != nil {
					t.Fatal(err)
				}
				deq.Tensors[i].Data = f32Bytes(src)
				converted++
			}
			if converted < 20 {
				t.Fatalf("only %d tensors converted", converted)
			}
			got, _ := logitsOf(t, quant, tokens)
			exact, _ := logitsOf(t, deq, tokens)
			var worst, fromRef float32
			for p := range tokens {
				d, _ := maxDiff(got[p*v:(p+1)*v], exact[p*v:(p+1)*v])
				worst = max(worst, d)
				d, _ = maxDiff(got[p*v:(p+1)*v], want[p])
				fromRef = max(fromRef, d)
			}
			t.Logf("%s: max |logit diff| %.4g from dequantized F32 weights, %.4g from the original model", tc.typ,
				worst, fromRef)
			if worst > tc.tol || math.IsNaN(float64(worst)) {
				t.Errorf("max |logit diff| %g > %g", worst, tc.tol)
			}
		})
	}
}

// TestFusedQKV checks that q, k and v stored back to back (as in stories260K.gguf) are fused into one
// matrix, and that other checkpoints are not. Both paths are checked against the reference by
// TestLogitsMatchReference (the GGUF fuses, the llama2.c and safetensors files do not).
func TestFusedQKV(t *testing.T) {
	for _, tc := range []struct {
		path  string
		fused bool
	}{{storiesGGUF, true}, {storiesBin, false}, {storiesHF, false}} {
		m := openModel(t, tc.path, Options{Threads: 1})
		for i, ly := range m.layers {
			if want := map[bool]int{true: 64 + 2*32}[tc.fused]; ly.wqkv.Rows != want {
				t.Fatalf("%s layer %d: fused rows %d, want %d", tc.path, i, ly.wqkv.Rows, want)
			}
		}
		if tc.fused {
			ly := m.layers[1]
			n := len(ly.wq.Data)
			if &ly.wqkv.Data[0] != &ly.wq.Data[0] || &ly.wqkv.Data[n] != &ly.wk.Data[0] {
				t.Fatal("fused matrix does not alias q and k")
			}
		}
	}
	// Not a GGUF mapping: no fusion even when the bytes happen to be adjacent.
	ck := storiesCheckpoint(t)
	m, err := Load(ck, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.layers[0].wqkv.Rows != 0 {
		t.Fatal("fused a non-GGUF checkpoint")
	}
}
