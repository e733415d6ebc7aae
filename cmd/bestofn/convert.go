package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

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
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var tokens []string
	var scores []float32
	var types []int32
	if strings.HasSuffix(path, ".model") {
		tokens, scores, types, err = parseSentencePiece(data)
	} else {
		tokens, scores, types, err = parseLlama2CTokenizer(data, vocabSize)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if vocabSize > 0 && len(tokens) != vocabSize {
		return fmt.Errorf("%s: %d tokens, the model has %d", path, len(tokens), vocabSize)
	}
	md.Set("tokenizer.ggml.model", "llama")
	md.Set("tokenizer.ggml.tokens", tokens)
	md.Set("tokenizer.ggml.scores", scores)
	md.Set("tokenizer.ggml.token_type", types)
	md.Set("tokenizer.ggml.unknown_token_id", uint32(0))
	md.Set("tokenizer.ggml.bos_token_id", uint32(1))
	md.Set("tokenizer.ggml.eos_token_id", uint32(2))
	return nil
}

// parseLlama2CTokenizer reads llama2.c's tokenizer.bin (int32 max_token_length, then per token float32 score,
// int32 length, bytes), undoing its export's changes: spaces back to "▁", "\n<s>\n" and "\n</s>\n" back to
// "<s>" and "</s>". Types follow SentencePiece: 0 unknown, 1 and 2 control, <0xNN> byte, the rest normal.
func parseLlama2CTokenizer(data []byte, vocabSize int) ([]string, []float32, []int32, error) {
	if vocabSize <= 0 {
		return nil, nil, nil, errors.New("a tokenizer.bin needs the model's vocabulary size")
	}
	if len(data) < 4 || vocabSize > len(data)/8 {
		return nil, nil, nil, fmt.Errorf("truncated tokenizer.bin for %d tokens", vocabSize)
	}
	pos := 4
	tokens := make([]string, vocabSize)
	scores := make([]float32, vocabSize)
	types := make([]int32, vocabSize)
	for i := range tokens {
		if len(data)-pos < 8 {
			return nil, nil, nil, fmt.Errorf("truncated at token %d", i)
		}
		scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[pos:]))
		n := int(int32(binary.LittleEndian.Uint32(data[pos+4:])))
		pos += 8
		if n < 0 || n > len(data)-pos {
			return nil, nil, nil, fmt.Errorf("token %d: bad length %d", i, n)
		}
		s := string(data[pos : pos+n])
		pos += n
		switch s {
		case "\n<s>\n":
			s = "<s>"
		case "\n</s>\n":
			s = "</s>"
		}
		tokens[i] = strings.ReplaceAll(s, " ", "▁")
		types[i] = tokenType(i, tokens[i])
	}
	if pos != len(data) {
		return nil, nil, nil, fmt.Errorf("%d bytes left after %d tokens: the vocabulary size does not match", len(data)-pos, vocabSize)
	}
	return tokens, scores, types, nil
}

// tokenType classifies token id with text s as SentencePiece LLaMA vocabularies do.
func tokenType(id int, s string) int32 {
	switch {
	case id == 0:
		return tokUnknown
	case id == 1 || id == 2:
		return tokControl
	case len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>':
		return tokByte
	}
	return tokNormal
}

// parseSentencePiece reads the pieces of a SentencePiece ModelProto (field 1: repeated SentencePiece {piece = 1,
// score = 2, type = 3}); its type enum (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, BYTE 6, UNUSED 5) is
// llama.cpp's token type numbering.
func parseSentencePiece(data []byte) ([]string, []float32, []int32, error) {
	var tokens []string
	var scores []float32
	var types []int32
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, nil, nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if num != 1 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return nil, nil, nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, nil, nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
		}
		data = data[n:]
		piece, score, ptype := "", float32(0), tokNormal
		for len(msg) > 0 {
			fnum, ftyp, m := protowire.ConsumeTag(msg)
			if m < 0 {
				return nil, nil, nil, fmt.Errorf("bad piece: %w", protowire.ParseError(m))
			}
			msg = msg[m:]
			switch {
			case fnum == 1 && ftyp == protowire.BytesType:
				var b []byte
				b, m = protowire.ConsumeBytes(msg)
				piece = string(b)
			case fnum == 2 && ftyp == protowire.Fixed32Type:
				var u uint32
				u, m = protowire.ConsumeFixed32(msg)
				score = math.Float32frombits(u)
			case fnum == 3 && ftyp == protowire.VarintType:
				var v uint64
				v, m = protowire.ConsumeVarint(msg)
				ptype = int32(v)
			default:
				m = protowire.ConsumeFieldValue(fnum, ftyp, msg)
			}
			if m < 0 {
				return nil, nil, nil, fmt.Errorf("bad piece: %w", protowire.ParseError(m))
			}
			msg = msg[m:]
		}
		tokens = append(tokens, piece)
		scores = append(scores, score)
		types = append(types, ptype)
	}
	if len(tokens) == 0 {
		return nil, nil, nil, errors.New("no pieces in tokenizer.model")
	}
	return tokens, scores, types, nil
}
