package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ParseSentencePiece reads a SentencePiece tokenizer.model (a serialized ModelProto) with a BPE model, as
// LLaMA-1/2 ship it: pieces (field 1: piece, score, type), trainer_spec (field 2: model_type, unk/bos/eos/pad
// ids) and normalizer_spec (field 3: add_dummy_prefix).
func ParseSentencePiece(data []byte) (*Tokenizer, error) {
	s := newSpec(kindSPM)
	modelType := int64(1) // UNIGRAM is SentencePiece's default
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
		}
		data = data[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return nil, fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return nil, fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
		}
		data = data[n:]
		var err error
		switch num {
		case 1:
			err = parsePiece(s, msg)
		case 2:
			err = walkFields(msg, func(num protowire.Number, v uint64, _ []byte) {
				switch num {
				case 3:
					modelType = int64(v)
				case 40:
					s.unk = int32(v)
				case 41:
					s.bos = int32(v)
				case 42:
					s.eos = int32(v)
				case 43:
					s.pad = int32(v)
				}
			})
		case 3:
			err = walkFields(msg, func(num protowire.Number, v uint64, _ []byte) {
				if num == 3 {
					s.addSpacePrefix = v != 0
				}
			})
		}
		if err != nil {
			return nil, err
		}
	}
	if modelType != 2 {
		return nil, fmt.Errorf("%w: sentencepiece model type %d is not BPE (2)", ErrFormat, modelType)
	}
	t, err := s.build()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: sentencepiece: %w", err)
	}
	return t, nil
}

// parsePiece reads one ModelProto.SentencePiece {piece = 1; score = 2; type = 3 (default NORMAL)}.
func parsePiece(s *vocabSpec, msg []byte) error {
	piece, score, typ := "", float32(0), typeNormal
	err := walkFields(msg, func(num protowire.Number, v uint64, b []byte) {
		switch num {
		case 1:
			piece = string(b)
		case 2:
			score = math.Float32frombits(uint32(v))
		case 3:
			typ = tokenType(v)
		}
	})
	if err != nil {
		return err
	}
	s.tokens = append(s.tokens, piece)
	s.scores = append(s.scores, score)
	s.types = append(s.types, typ)
	return nil
}

// walkFields calls fn for each field of a protobuf message: varint and fixed values in v, bytes in b.
func walkFields(msg []byte, fn func(num protowire.Number, v uint64, b []byte)) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
		}
		msg = msg[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(msg)
			if n < 0 {
				return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			fn(num, v, nil)
			msg = msg[n:]
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(msg)
			if n < 0 {
				return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			fn(num, uint64(v), nil)
			msg = msg[n:]
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(msg)
			if n < 0 {
				return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			fn(num, v, nil)
			msg = msg[n:]
		case protowire.BytesType:
			b, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			fn(num, 0, b)
			msg = msg[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return fmt.Errorf("%w: sentencepiece: %v", ErrFormat, protowire.ParseError(n))
			}
			msg = msg[n:]
		}
	}
	return nil
}

// ParseLlama2C reads a llama2.c tokenizer.bin: int32 max_token_length, then until the end of the data, per
// token: float32 score, int32 byte length, the bytes. llama2.c's exporter wrote spaces for U+2581 and
// "\n<s>\n" / "\n</s>\n" for BOS/EOS; these are turned back into SentencePiece form, so the result tokenizes
// like the tokenizer.model it came from (ids 0, 1, 2 are <unk>, <s>, </s>; <0xNN> pieces are byte tokens).
func ParseLlama2C(data []byte) (*Tokenizer, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: llama2.c tokenizer: %d bytes is too short", ErrFormat, len(data))
	}
	maxLen := int64(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("%w: llama2.c tokenizer: max token length %d", ErrFormat, maxLen)
	}
	s := newSpec(kindSPM)
	for off := 4; off < len(data); {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("%w: llama2.c tokenizer: truncated at byte %d", ErrFormat, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int64(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > maxLen || n > int64(len(data)-off) {
			return nil, fmt.Errorf("%w: llama2.c tokenizer: token %d has length %d", ErrFormat, len(s.tokens), n)
		}
		piece := string(data[off : off+int(n)])
		off += int(n)
		id := len(s.tokens)
		typ := typeNormal
		switch {
		case id == 0 && piece == "<unk>":
			typ = typeUnknown
		case id == 1 && strings.TrimSpace(piece) == "<s>":
			piece, typ = "<s>", typeControl
		case id == 2 && strings.TrimSpace(piece) == "</s>":
			piece, typ = "</s>", typeControl
		case len(piece) == 6 && strings.HasPrefix(piece, "<0x") && piece[5] == '>':
			typ = typeByte
		default:
			piece = strings.ReplaceAll(piece, " ", spaceMarker)
		}
		s.tokens = append(s.tokens, piece)
		s.scores = append(s.scores, score)
		s.types = append(s.types, typ)
	}
	t, err := s.build()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: llama2.c: %w", err)
	}
	return t, nil
}
