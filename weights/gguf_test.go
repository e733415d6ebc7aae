package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
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

// smallGGUF returns a valid GGUF file with two F32 tensors "a" [8] and "b" [4, 2] and a few keys.
func smallGGUF(t testing.TB) []byte {
	t.Helper()
	md := NewMetadata()
	md.Set("general.architecture", "llama")
	md.Set("tokens", []string{"x", "y"})
	tensors := []*Tensor{
		{Name: "a", Type: TypeF32, Shape: []int{8}, Data: make([]byte, 32)},
		{Name: "b", Type: TypeF32, Shape: []int{4, 2}, Data: make([]byte, 32)},
	}
	var buf bytes.Buffer
	if err := WriteGGUF(&buf, md, tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tensorInfoOffset returns the byte offset of tensor info field 'field' of the tensor named name in a file
// written by smallGGUF: it is found by searching for the name.
func fieldAfterName(t *testing.T, data []byte, name string) int {
	t.Helper()
	i := bytes.Index(data, append([]byte{byte(len(name)), 0, 0, 0, 0, 0, 0, 0}, name...))
	if i < 0 {
		t.Fatalf("tensor %q not found", name)
	}
	return i + 8 + len(name)
}

func TestParseGGUFErrors(t *testing.T) {
	good := smallGGUF(t)
	if _, err := ParseGGUF("good.gguf", good); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	aDims := fieldAfterName(t, good, "a") // n_dims u32, dims u64..., type u32, offset u64
	bDims := fieldAfterName(t, good, "b")
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "truncated", nil},
		{"magic", "wrong magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version1", "version 1", mutate(func(b []byte) []byte { le32(b[4:], 1); return b })},
		{"version9", "unsupported GGUF version 9", mutate(func(b []byte) []byte { le32(b[4:], 9); return b })},
		{"bigendian", "big-endian", mutate(func(b []byte) []byte { le32(b[4:], 3<<24); return b })},
		{"ntensors", "absurd tensor count", mutate(func(b []byte) []byte { le64(b[8:], 1<<60); return b })},
		{"nkv", "absurd metadata count", mutate(func(b []byte) []byte { le64(b[16:], 1<<62); return b })},
		{"keylen", "truncated: string", mutate(func(b []byte) []byte { le64(b[24:], 1<<40); return b })},
		{"valuetype", "unknown metadata value type", mutate(func(b []byte) []byte { le32(b[24+8+20:], 77); return b })},
		{"ndims", "dimensions", mutate(func(b []byte) []byte { le32(b[aDims:], 5); return b })},
		{"zerodim", "zero dimension", mutate(func(b []byte) []byte { le64(b[aDims+4:], 0); return b })},
		{"hugedim", "absurd dimension", mutate(func(b []byte) []byte { le64(b[aDims+4:], 1<<50); return b })},
		{"type", "unknown type 99", mutate(func(b []byte) []byte { le32(b[aDims+12:], 99); return b })},
		{"blocks", "whole number of Q8_0 blocks", mutate(func(b []byte) []byte { le32(b[aDims+12:], uint32(TypeQ8_0)); return b })},
		{"misaligned", "not a multiple of the alignment", mutate(func(b []byte) []byte { le64(b[bDims+4+16+4:], 4); return b })},
		{"overlap", "overlaps", mutate(func(b []byte) []byte { le64(b[bDims+4+16+4:], 0); return b })},
		{"bounds", "out of the file's bounds", mutate(func(b []byte) []byte { le64(b[bDims+4+16+4:], 1<<20); return b })},
		{"truncated", "out of the file's bounds", good[:len(good)-1]},
		{"dupname", "duplicate tensor name", mutate(func(b []byte) []byte { b[bDims-1] = 'a'; return b })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseGGUF("bad.gguf", c.data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FormatError", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.gguf") {
				t.Errorf("error %q does not name the file and %q", err, c.want)
			}
		})
	}
	// Every prefix of a good file is an error, never a panic.
	for n := 0; n < len(good); n++ {
		if _, err := ParseGGUF("prefix", good[:n]); err == nil {
			t.Errorf("prefix of %d bytes parsed", n)
		}
	}
}

// BenchmarkOpenGGUF opens (mmap + parse) stories260K.gguf, including its 512-token vocabulary.
func BenchmarkOpenGGUF(b *testing.B) {
	path := filepath.Join(sharedDir, "models/stories260K/stories260K.gguf")
	for b.Loop() {
		ck, err := OpenGGUF(path)
		if err != nil {
			b.Fatal(err)
		}
		ck.Close()
	}
}
