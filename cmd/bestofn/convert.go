package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/weights"
)

// runConvert is `bestofn convert [--out OUT.gguf] [--type T] [--tokenizer PATH] IN`: it reads a llama2.c .bin,
// a safetensors checkpoint (file or directory with config.json) or a GGUF, and writes it as GGUF v3.
func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output GGUF path (default: IN with its extension replaced by .gguf)")
	typ := fs.String("type", "", "re-encode 2-D weight matrices as F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K (default: keep)")
	tok := fs.String("tokenizer", "", "embed a llama2.c tokenizer.bin or a SentencePiece tokenizer.model as tokenizer.ggml.* metadata")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("usage: bestofn convert [--out OUT.gguf] [--type T] [--tokenizer PATH] IN")
	}
	in := fs.Arg(0)
	outPath := *out
	if outPath == "" {
		outPath = strings.TrimSuffix(strings.TrimSuffix(in, "/"), filepath.Ext(in)) + ".gguf"
		if outPath == in {
			return fmt.Errorf("%s is already a .gguf: give --out", in)
		}
	}
	ck, err := weights.Open(in)
	if err != nil {
		return err
	}
	defer ck.Close()
	md := ck.Metadata.Clone()
	tensors := ck.Tensors
	if *typ != "" {
		t, err := parseType(*typ)
		if err != nil {
			return err
		}
		if tensors, err = convertMatrices(ctx, tensors, t); err != nil {
			return err
		}
	}
	if *tok != "" {
		vocab, _ := md.Int("llama.vocab_size")
		if err := addTokenizer(md, *tok, int(vocab)); err != nil {
			return err
		}
	}
	if err := writeGGUFFile(outPath, md, tensors); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %d metadata keys (from %s %s)\n", outPath, len(tensors), md.Len(), ck.Format, in)
	return nil
}

// parseType maps a GGML type name to its Type.
func parseType(name string) (weights.Type, error) {
	for _, t := range []weights.Type{weights.TypeF32, weights.TypeF16, weights.TypeBF16, weights.TypeQ8_0,
		weights.TypeQ4_0, weights.TypeQ4_1, weights.TypeQ5_0, weights.TypeQ5_1, weights.TypeQ4_K, weights.TypeQ5_K,
		weights.TypeQ6_K} {
		if strings.EqualFold(t.String(), name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q (want F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K)", name)
}

// convertMatrices re-encodes every 2-D tensor whose rows split into whole blocks of t; others are kept.
func convertMatrices(ctx context.Context, tensors []*weights.Tensor, t weights.Type) ([]*weights.Tensor, error) {
	out := make([]*weights.Tensor, len(tensors))
	for i, src := range tensors {
		out[i] = src
		if len(src.Shape) != 2 || src.Type == t || src.Shape[0]%t.BlockSize() != 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := make([]float32, src.NumElements())
		if err := weights.Dequantize(src.Type, src.Data, f); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Name, err)
		}
		n, err := weights.TensorBytes(t, src.Shape)
		if err != nil {
			return nil, err
		}
		data := make([]byte, n)
		if err := weights.Quantize(t, f, data); err != nil {
			return nil, fmt.Errorf("%s: %w", src.Name, err)
		}
		out[i] = &weights.Tensor{Name: src.Name, Type: t, Shape: src.Shape, Data: data}
	}
	return out, nil
}

// writeGGUFFile writes a GGUF through a temporary file renamed into place, so a failed run leaves no partial
// output.
func writeGGUFFile(path string, md *weights.Metadata, tensors []*weights.Tensor) error {
	return writeFileAtomic(path, func(w io.Writer) error { return weights.WriteGGUF(w, md, tensors) })
}

func writeFileAtomic(path string, write func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// SentencePiece / GGUF token types (llama.cpp's llama_token_type).
const (
	tokNormal  int32 = 1
	tokUnknown int32 = 2
	tokControl int32 = 3
	tokByte    int32 = 6
)

// addTokenizer reads a llama2.c tokenizer.bin or a SentencePiece tokenizer.model and stores it as llama
// (SentencePiece) tokenizer.ggml.* metadata. vocabSize, when positive, is the model's vocabulary size, which a
// tokenizer.bin does not record.
func addTokenizer(md *weights.Metadata, path string, vocabSize int) error {
	v, err := export.VocabFromFile(path, vocabSize)
	if err != nil {
		return err
	}
	v.SetMetadata(md)
	return nil
}
