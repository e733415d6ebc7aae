package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/weights"
)

// quantCheckpoint builds a 2-layer LLaMA with random matrices of type typ whose widths are multiples of 256
// (dim 256, ffn 512), so that Load interleaves them, on stories260K's vocabulary of 512.
func quantCheckpoint(t *testing.T, typ weights.Type) *weights.Checkpoint {
	t.Helper()
	ck := storiesCheckpoint(t)
	const dim, ffn, layers, kv, vocab = 256, 512, 2, 128, 512
	for k, v := range map[string]uint32{"embedding_length": dim, "feed_forward_length": ffn, "block_count": layers,
		"attention.head_count": 4, "attention.head_count_kv": 2, "rope.dimension_count": dim / 4} {
		ck.Metadata.Set("llama."+k, v)
	}
	rng := rand.New(rand.NewPCG(41, 42))
	tensor := func(name string, typ weights.Type, scale float64, shape ...int) *weights.Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
			if scale == 0 {
				v[i] = 1
			}
		}
		rb, _ := typ.RowBytes(shape[0])
		data := make([]byte, rb*n/shape[0])
		if err := weights.Quantize(typ, v, data); err != nil {
			t.Fatal(err)
		}
		return &weights.Tensor{Name: name, Type: typ, Shape: shape, Data: data}
	}
	ck.Tensors = []*weights.Tensor{
		tensor("token_embd.weight", weights.TypeF32, 1, dim, vocab),
		tensor("output_norm.weight", weights.TypeF32, 0, dim),
		tensor("output.weight", typ, 0.1, dim, vocab),
	}
	for l := range layers {
		p := "blk." + itoa(l) + "."
		ck.Tensors = append(ck.Tensors,
			tensor(p+"attn_norm.weight", weights.TypeF32, 0, dim),
			tensor(p+"ffn_norm.weight", weights.TypeF32, 0, dim),
			tensor(p+"attn_q.weight", typ, 0.1, dim, dim),
			tensor(p+"attn_k.weight", typ, 0.1, dim, kv),
			tensor(p+"attn_v.weight", typ, 0.1, dim, kv),
			tensor(p+"attn_output.weight", typ, 0.1, dim, dim),
			tensor(p+"ffn_gate.weight", typ, 0.1, dim, ffn),
			tensor(p+"ffn_up.weight", typ, 0.1, dim, ffn),
			tensor(p+"ffn_down.weight", typ, 0.1, ffn, dim))
	}
	return ck
}

// TestInterleavedWeights checks that Load interleaves the Q8_0 and Q4_0 matrices (when the CPU's kernels use that
// layout) and that the logits of a 12-token prompt (tiles of 5, 5 and 2 rows) and of a step of 5 forked
// sequences equal those of the same model kept in the file layout (Options.FileLayout), up to float
// summation order: both read the same 8-bit activations.
//
// It runs once per ISA this CPU runs (Options.ISA), each interleaving in its own form (biased Q8_0 for the VNNI
// ISAs), against the file layout on the Go loops.
func TestInterleavedWeights(t *testing.T) {
	for _, typ := range []weights.Type{weights.TypeQ8_0, weights.TypeQ4_0} {
		for _, isa := range kernels.SupportedISAs() {
			t.Run(typ.String()+"/"+isa.String(), func(t *testing.T) { testInterleavedWeights(t, typ, isa) })
		}
	}
}

func testInterleavedWeights(t *testing.T, typ weights.Type, isa kernels.ISA) {
	ck := quantCheckpoint(t, typ)
	inter, err := Load(ck, Options{Threads: 2, ISA: isa})
	if err != nil {
		t.Fatal(err)
	}
	defer inter.Close()
	file, err := Load(ck, Options{Threads: 2, FileLayout: true, ISA: kernels.ISAGo})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	want := kernels.InterleaveWorthwhile(file.layers[0].wGate, isa)
	biased := want && typ == weights.TypeQ8_0 && (isa == kernels.ISAAVXVNNI || isa == kernels.ISAAVX512VNNI || isa == kernels.ISAAMX)
	for _, mat := range []kernels.Matrix{inter.layers[0].wq, inter.layers[1].wDown, inter.output} {
		if mat.Interleaved != want || mat.Biased != biased {
			t.Fatalf("interleaved %v biased %v, want %v and %v", mat.Interleaved, mat.Biased, want, biased)
		}
	}
	if file.layers[1].wUp.Interleaved {
		t.Fatal("FileLayout model has interleaved matrices")
	}
	if !want {
		t.Logf("%v: the interleaved layout is not used; comparing two file-layout models", isa)
	}

	v := inter.Config().VocabSize
	run := func(m *Model) []float32 {
		c := newCache(t, m, CacheOptions{MaxTokens: 256})
		id := newSeq(t, c)
		prompt := []int32{1, 17, 300, 45, 9, 210, 77, 5, 480, 33, 2, 100}
		b := Batch{Tokens: prompt, Seqs: fill(id, len(prompt)), Logits: make([]bool, len(prompt))}
		for i := range b.Logits {
			b.Logits[i] = true
		}
		out := make([]float32, (len(prompt)+5)*v)
		if err := m.Forward(c, b, out); err != nil {
			t.Fatal(err)
		}
		var step Batch
		for k := range 5 {
			f, err := c.Fork(id)
			if err != nil {
				t.Fatal(err)
			}
			step.Tokens = append(step.Tokens, int32(50+k))
			step.Seqs = append(step.Seqs, f)
			step.Logits = append(step.Logits, true)
		}
		if err := m.Forward(c, step, out[len(prompt)*v:]); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got, ref := run(inter), run(file)
	var scale float32
	for i, x := range ref {
		if math.IsNaN(float64(got[i])) || math.IsNaN(float64(x)) {
			t.Fatalf("logit %d: %g interleaved, %g in file layout", i, got[i], x)
		}
		scale = max(scale, x, -x)
	}
	if scale < 1 {
		t.Fatalf("degenerate logits (max |logit| %g)", scale)
	}
	// Summation order may put an activation on the other side of an 8-bit rounding boundary in a later layer,
	// which moves that token's logits by about one quantization step: allow that for at most 2 of the 17
	// rows, and require float agreement elsewhere.
	flipped := 0
	for r := 0; r < len(got)/v; r++ {
		d, i := maxDiff(got[r*v:(r+1)*v], ref[r*v:(r+1)*v])
		if d > 2e-2*scale {
			t.Fatalf("row %d logit %d: %g interleaved, %g in file layout", r, i, got[r*v+i], ref[r*v+i])
		}
		if d > 1e-5*scale {
			t.Logf("row %d: max |logit diff| %.3g (an activation rounding flip)", r, d)
			flipped++
		}
	}
	if flipped > 2 {
		t.Fatalf("%d of %d rows differ beyond float rounding", flipped, len(got)/v)
	}
}
