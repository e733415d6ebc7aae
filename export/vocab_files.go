package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bestofn/bestofn/weights"
)

// VocabFromFile reads a LLaMA SentencePiece vocabulary from a GGUF (its tokenizer.ggml.* metadata), a
// SentencePiece tokenizer.model, or a llama2.c tokenizer.bin, detected by content and name as package tokenizer
// does: "GGUF" magic, else a ".bin" name is llama2.c's, else SentencePiece's protobuf with llama2.c's format as
// the fallback. A tokenizer.bin does not record its size: vocabSize must be the model's. vocabSize, when
// positive, must match the vocabulary's size.
func VocabFromFile(path string, vocabSize int) (*Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var v *Vocab
	switch {
	case bytes.HasPrefix(data, []byte("GGUF")):
		ck, perr := weights.ParseGGUF(path, data)
		if perr != nil {
			return nil, fmt.Errorf("export: %w", perr)
		}
		v, err = VocabFromMetadata(ck.Metadata)
	case strings.HasSuffix(path, ".bin"):
		v, err = VocabFromLlama2C(data, vocabSize)
	default:
		v, err = VocabFromSentencePiece(data)
		if err != nil || (vocabSize > 0 && len(v.Tokens) != vocabSize) {
			if v2, err2 := VocabFromLlama2C(data, vocabSize); err2 == nil {
				v, err = v2, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("export: %s: %w", path, err)
	}
	if vocabSize > 0 && len(v.Tokens) != vocabSize {
		return nil, fmt.Errorf("export: %s: %d tokens, the model has %d", path, len(v.Tokens), vocabSize)
	}
	return v, nil
}

// SetMetadata stores the vocabulary as "llama" tokenizer.ggml.* metadata (model, tokens, scores, token_type,
// unknown/bos/eos ids where present, and add_bos_token / add_space_prefix when they differ from llama's
// defaults).
func (v *Vocab) SetMetadata(md *weights.Metadata) {
	types := v.Types
	if types == nil {
		types = make([]int32, len(v.Tokens))
		for i := range types {
			types[i] = v.tokenType(i)
		}
	}
	md.Set("tokenizer.ggml.model", "llama")
	md.Set("tokenizer.ggml.tokens", v.Tokens)
	md.Set("tokenizer.ggml.scores", v.Scores)
	md.Set("tokenizer.ggml.token_type", types)
	for key, id := range map[string]int32{"tokenizer.ggml.unknown_token_id": v.UNK, "tokenizer.ggml.bos_token_id": v.BOS,
		"tokenizer.ggml.eos_token_id": v.EOS} {
		if _, ok := v.name(id); ok {
			md.Set(key, uint32(id))
		}
	}
	if !v.AddBOS {
		md.Set("tokenizer.ggml.add_bos_token", false)
	}
	if !v.AddSpacePrefix {
		md.Set("tokenizer.ggml.add_space_prefix", false)
	}
}

// llamaVocab returns a vocabulary with LLaMA's special tokens (UNK 0, BOS 1, EOS 2, both prefixes on).
func llamaVocab(tokens []string, scores []float32, types []int32) *Vocab {
	return &Vocab{Tokens: tokens, Scores: scores, Types: types, UNK: 0, BOS: 1, EOS: 2, AddBOS: true, AddSpacePrefix: true}
}

// VocabFromLlama2C reads llama2.c's tokenizer.bin (int32 max_token_length, then per token float32 score, int32
// length, bytes) of vocabSize tokens, undoing its export's changes: spaces back to U+2581, "\n<s>\n" and
// "\n</s>\n" back to "<s>" and "</s>". Types follow SentencePiece LLaMA vocabularies: 0 unknown, 1 and 2 control,
// <0xNN> byte, the rest normal.
func VocabFromLlama2C(data []byte, vocabSize int) (*Vocab, error) {
	if vocabSize <= 0 {
		return nil, errors.New("a tokenizer.bin needs the model's vocabulary size")
	}
	if len(data) < 4 || vocabSize > len(data)/8 {
		return nil, fmt.Errorf("truncated tokenizer.bin for %d tokens", vocabSize)
	}
	pos := 4
	tokens := make([]string, vocabSize)
	scores := make([]float32, vocabSize)
	types := make([]int32, vocabSize)
	for i := range tokens {
		if len(data)-pos < 8 {
			return nil, fmt.Errorf("truncated at token %d", i)
		}
		scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[pos:]))
		n := int(int32(binary.LittleEndian.Uint32(data[pos+4:])))
		pos += 8
		if n < 0 || n > len(data)-pos {
			return nil, fmt.Errorf("token %d: bad length %d", i, n)
		}
		s := string(data[pos : pos+n])
		pos += n
		switch s {
		case "\n<s>\n":
			s = "<s>"
		case "\n</s>\n":
			s = "</s>"
		}
		tokens[i] = strings.ReplaceAll(s, " ", spaceMarker)
		switch {
		case i == 0:
			types[i] = tokUnknown
		case i == 1 || i == 2:
			types[i] = tokControl
		case len(tokens[i]) == 6 && strings.HasPrefix(tokens[i], "<0x") && tokens[i][5] == '>':
			types[i] = tokByte
		default:
			types[i] = tokNormal
		}
	}
	if pos != len(data) {
		return nil, fmt.Errorf("%d bytes left after %d tokens: the vocabulary size does not match", len(data)-pos, vocabSize)
	}
	return llamaVocab(tokens, scores, types), nil
}

// VocabFromSentencePiece reads the pieces of a SentencePiece ModelProto (field 1: repeated SentencePiece {piece =
// 1, score = 2, type = 3}); its type enum (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6) is
// llama.cpp's token type numbering. Special token ids are LLaMA's (UNK 0, BOS 1, EOS 2).
func VocabFromSentencePiece(data []byte) (*Vocab, error) {
	var tokens []string
	var scores []float32
	var types []int32
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
		}
		data = data[n:]
		if num != 1 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, fmt.Errorf("bad tokenizer.model: %w", protowire.ParseError(n))
		}
		data = data[n:]
		piece, score, ptype := "", float32(0), int32(tokNormal)
		for len(msg) > 0 {
			fnum, ftyp, m := protowire.ConsumeTag(msg)
			if m < 0 {
				return nil, fmt.Errorf("bad piece: %w", protowire.ParseError(m))
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
				var x uint64
				x, m = protowire.ConsumeVarint(msg)
				ptype = int32(x)
			default:
				m = protowire.ConsumeFieldValue(fnum, ftyp, msg)
			}
			if m < 0 {
				return nil, fmt.Errorf("bad piece: %w", protowire.ParseError(m))
			}
			msg = msg[m:]
		}
		tokens = append(tokens, piece)
		scores = append(scores, score)
		types = append(types, ptype)
	}
	if len(tokens) == 0 {
		return nil, errors.New("no pieces in tokenizer.model")
	}
	return llamaVocab(tokens, scores, types), nil
}
