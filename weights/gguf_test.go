package weights

import (
	"path/filepath"
	"testing"
)

const sharedDir = "../../shared"

func TestOpenGGUFStories(t *testing.T) {
	path := filepath.Join(sharedDir, "models/stories260K/stories260K.gguf")
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Format != FormatGGUF || ck.Version != 3 {
		t.Errorf("format %q version %d, want gguf 3", ck.Format, ck.Version)
	}
	if len(ck.Tensors) != 48 {
		t.Errorf("%d tensors, want 48", len(ck.Tensors))
	}
	if arch, _ := ck.Metadata.String("general.architecture"); arch != "llama" {
		t.Errorf("architecture %q", arch)
	}
	if n, _ := ck.Metadata.Int("llama.embedding_length"); n != 64 {
		t.Errorf("embedding_length %d, want 64", n)
	}
	toks, _ := ck.Metadata.Strings("tokenizer.ggml.tokens")
	if len(toks) != 512 {
		t.Errorf("%d tokens, want 512", len(toks))
	}
	emb := ck.Tensor("token_embd.weight")
	if emb == nil || emb.Type != TypeF32 || len(emb.Shape) != 2 || emb.Shape[0] != 64 || emb.Shape[1] != 512 || len(emb.Data) != 64*512*4 {
		t.Fatalf("token_embd.weight = %+v", emb)
	}
	q := ck.Tensor("blk.0.attn_q.weight")
	if q == nil || q.Shape[0] != 64 || q.Shape[1] != 64 {
		t.Fatalf("blk.0.attn_q.weight = %v", q)
	}
	k := ck.Tensor("blk.0.attn_k.weight")
	if k == nil || k.Shape[0] != 64 || k.Shape[1] != 32 {
		t.Fatalf("blk.0.attn_k.weight shape %v, want [64 32] (4 kv heads of 8)", k.Shape)
	}
	if ck.Tensor("nope") != nil {
		t.Error("Tensor(nope) != nil")
	}
	for _, key := range ck.Metadata.Keys() {
		v, _ := ck.Metadata.Value(key)
		if s, ok := v.([]string); ok {
			t.Logf("%s: [%d strings]", key, len(s))
		} else if s, ok := v.([]float32); ok {
			t.Logf("%s: [%d float32]", key, len(s))
		} else if s, ok := v.([]int32); ok {
			t.Logf("%s: [%d int32]", key, len(s))
		} else {
			t.Logf("%s: %T %v", key, v, v)
		}
	}
}

func TestOpenGGUFVocabs(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(sharedDir, "tokenizers/llamacpp-vocab/*.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no vocab GGUFs found")
	}
	for _, p := range paths {
		ck, err := OpenGGUF(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		toks, ok := ck.Metadata.Strings("tokenizer.ggml.tokens")
		model, _ := ck.Metadata.String("tokenizer.ggml.model")
		if !ok || len(toks) == 0 || model == "" {
			t.Errorf("%s: model %q, %d tokens", p, model, len(toks))
		}
		if err := ck.Close(); err != nil {
			t.Error(err)
		}
	}
}
