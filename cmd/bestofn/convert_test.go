package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/weights"
)

const sharedModels = "../../../shared/models/stories260K"

// TestConvertLlama2C converts stories260K.bin with its tok512.bin and checks the GGUF against the source
// checkpoint (tensors, metadata) and against the independently converted stories260K.gguf (vocabulary).
func TestConvertLlama2C(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s.gguf")
	var stdout, stderr bytes.Buffer
	args := []string{"--out", out, "--tokenizer", filepath.Join(sharedModels, "tok512.bin"), filepath.Join(sharedModels, "stories260K.bin")}
	if err := runConvert(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	src, err := weights.Open(filepath.Join(sharedModels, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Format != weights.FormatGGUF {
		t.Errorf("format %s", got.Format)
	}
	sameTensors(t, src.Tensors, got.Tensors)
	for _, k := range src.Metadata.Keys() {
		a, _ := src.Metadata.Value(k)
		b, _ := got.Metadata.Value(k)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("metadata %s: source %v, converted %v", k, a, b)
		}
	}
	ref, err := weights.Open(filepath.Join(sharedModels, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"} {
		a, ok1 := ref.Metadata.Value(k)
		b, ok2 := got.Metadata.Value(k)
		if !ok1 || !ok2 || !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs from stories260K.gguf's (present: %v %v)", k, ok1, ok2)
		}
	}
}

// TestConvertSafetensors converts the HF export of stories260K and checks its tensors equal stories260K.gguf's,
// and that --type Q8_0 quantizes the matrices.
func TestConvertSafetensors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hf.gguf")
	var stdout, stderr bytes.Buffer
	if err := runConvert(context.Background(), []string{"--out", out, "../../model/testdata/stories260K_hf"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	ref, err := weights.Open(filepath.Join(sharedModels, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	got, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	var want []*weights.Tensor
	for _, x := range ref.Tensors {
		if x.Name != "output.weight" { // tied in the HF export
			want = append(want, x)
		}
	}
	sameTensors(t, want, got.Tensors)

	q8 := filepath.Join(dir, "q8.gguf")
	if err := runConvert(context.Background(), []string{"--out", q8, "--type", "q8_0", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	qk, err := weights.Open(q8)
	if err != nil {
		t.Fatal(err)
	}
	defer qk.Close()
	for _, x := range qk.Tensors {
		wantType := weights.TypeQ8_0
		if len(x.Shape) == 1 || x.Shape[0]%32 != 0 { // norms, and ffn_down's rows of 172
			wantType = weights.TypeF32
		}
		if x.Type != wantType {
			t.Errorf("%s: %s, want %s", x.Name, x.Type, wantType)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--type", "Q9", filepath.Join(sharedModels, "stories260K.bin")},
		{filepath.Join(sharedModels, "stories260K.gguf")},
		{"--out", filepath.Join(t.TempDir(), "x.gguf"), filepath.Join(sharedModels, "tok512.bin")},
	} {
		if err := runConvert(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("convert %v: no error", args)
		}
	}
}

// sameTensors compares the sets of tensors by name: types, shapes and bytes.
func sameTensors(t *testing.T, want, got []*weights.Tensor) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	byName := map[string]*weights.Tensor{}
	for _, g := range got {
		byName[g.Name] = g
	}
	for _, w := range want {
		g := byName[w.Name]
		if g == nil {
			t.Errorf("tensor %s missing", w.Name)
			continue
		}
		if g.Type != w.Type || !reflect.DeepEqual(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("tensor %s: got %s %v, want %s %v (or data differs)", w.Name, g.Type, g.Shape, w.Type, w.Shape)
		}
	}
}

// TestSentencePieceMatchesLlamaCpp reads LLaMA-2's tokenizer.model and checks pieces, scores and types equal
// those of llama.cpp's ggml-vocab-llama-spm.gguf (the same 32K vocabulary, converted by llama.cpp).
func TestSentencePieceMatchesLlamaCpp(t *testing.T) {
	md := weights.NewMetadata()
	if err := addTokenizer(md, "../../../shared/tokenizers/llama2/tokenizer.model", 32000); err != nil {
		t.Fatal(err)
	}
	ref, err := weights.Open("../../../shared/tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, k := range []string{"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"} {
		a, _ := ref.Metadata.Value(k)
		b, _ := md.Value(k)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs from llama.cpp's", k)
		}
	}
	if _, err := export.VocabFromSentencePiece([]byte{0x0a, 0xff}); err == nil {
		t.Error("truncated protobuf: no error")
	}
}
