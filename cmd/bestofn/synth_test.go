package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// TestSynth writes a small synthetic model in several types and checks it loads with the asked shapes, the
// vocabulary, unit norms and weights distributed as N(0, 0.02); and that the bytes do not depend on the thread
// count but do depend on the seed.
func TestSynth(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"Q8_0", "Q4_0", "F16", "F32", "Q4_K", "Q6_K"} {
		out := filepath.Join(dir, typ+".gguf")
		var stdout, stderr bytes.Buffer
		args := []string{"--dim", "256", "--layers", "2", "--heads", "8", "--kv-heads", "2", "--ffn", "512", "--vocab", "300",
			"--ctx", "128", "--seed", "5", "--type", typ, out}
		if err := runSynth(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v\n%s", typ, err, stderr.String())
		}
		ck, err := weights.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		wantType, _ := parseType(typ)
		md := ck.Metadata
		for key, want := range map[string]int64{"llama.embedding_length": 256, "llama.block_count": 2, "llama.attention.head_count": 8,
			"llama.attention.head_count_kv": 2, "llama.feed_forward_length": 512, "llama.context_length": 128, "llama.vocab_size": 300,
			"llama.rope.dimension_count": 32, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2} {
			if got, ok := md.Int(key); !ok || got != want {
				t.Errorf("%s: %s = %d, want %d", typ, key, got, want)
			}
		}
		toks, _ := md.Strings("tokenizer.ggml.tokens")
		tt, _ := md.Int32s("tokenizer.ggml.token_type")
		if len(toks) != 300 || toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" || toks[3] != "<0x00>" || toks[258] != "<0xFF>" ||
			toks[299] != "tok299" || len(tt) != 300 || tt[0] != 2 || tt[1] != 3 || tt[3] != 6 || tt[299] != 1 {
			t.Errorf("%s: bad vocabulary", typ)
		}
		if len(ck.Tensors) != 3+2*9 {
			t.Errorf("%s: %d tensors", typ, len(ck.Tensors))
		}
		k := ck.Tensor("blk.1.attn_k.weight")
		if k == nil || k.Type != wantType || !reflect.DeepEqual(k.Shape, []int{256, 64}) {
			t.Fatalf("%s: attn_k = %v", typ, k)
		}
		norm := ck.Tensor("blk.0.ffn_norm.weight")
		nv := make([]float32, 256)
		if err := weights.Dequantize(norm.Type, norm.Data, nv); err != nil || nv[0] != 1 || nv[255] != 1 {
			t.Errorf("%s: ffn_norm %v %v", typ, nv[:2], err)
		}
		down := ck.Tensor("blk.1.ffn_down.weight")
		if !reflect.DeepEqual(down.Shape, []int{512, 256}) {
			t.Errorf("ffn_down shape %v", down.Shape)
		}
		v := make([]float32, down.NumElements())
		if err := weights.Dequantize(down.Type, down.Data, v); err != nil {
			t.Fatal(err)
		}
		mean, sq := 0.0, 0.0
		for _, x := range v {
			mean += float64(x)
			sq += float64(x) * float64(x)
		}
		mean /= float64(len(v))
		std := math.Sqrt(sq/float64(len(v)) - mean*mean)
		// 131072 samples: the mean's standard error is 5.5e-5; quantization moves the std by a few percent.
		if math.Abs(mean) > 3e-4 || math.Abs(std-0.02) > 0.002 {
			t.Errorf("%s: ffn_down mean %g std %g, want N(0, 0.02)", typ, mean, std)
		}
		ck.Close()
	}

	gen := func(threads int, seed uint64) []byte {
		var buf bytes.Buffer
		s := synthSpec{dim: 64, layers: 1, heads: 4, kvHeads: 4, ffn: 128, vocab: 259, ctx: 16, typ: weights.TypeQ8_0, seed: seed, threads: threads}
		if err := writeSynth(context.Background(), &buf, s); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if a, b := gen(1, 9), gen(3, 9); !bytes.Equal(a, b) {
		t.Error("output depends on the thread count")
	}
	if a, b := gen(2, 9), gen(2, 10); bytes.Equal(a, b) {
		t.Error("output does not depend on the seed")
	}
}

func TestSynthErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "x.gguf")
	for _, args := range [][]string{
		{"--dim", "64", "--layers", "1", "--heads", "4", "--kv-heads", "4", "--ffn", "128", "--vocab", "100", out},
		{"--dim", "64", "--layers", "1", "--heads", "4", "--kv-heads", "4", "--ffn", "128", "--vocab", "300", "--type", "Q4_K", out},
		{"--dim", "64", "--layers", "1", "--heads", "3", "--kv-heads", "1", "--ffn", "128", "--vocab", "300", out},
		{"--type", "Q3", out},
		{},
	} {
		if err := runSynth(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("synth %v: no error", args)
		}
	}
}

// BenchmarkSynth measures writing a 2-layer slice of the 1.1B shape (dim 2048, ffn 5632, vocab 32000) in Q8_0.
func BenchmarkSynth(b *testing.B) {
	s := synthSpec{dim: 2048, layers: 2, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, ctx: 2048, typ: weights.TypeQ8_0, seed: 1, threads: 2}
	for b.Loop() {
		if err := writeSynth(context.Background(), io.Discard, s); err != nil {
			b.Fatal(err)
		}
	}
}
