package tokenizer

import (
	"fmt"

	"github.com/bestofn/bestofn/weights"
)

// FromMetadata builds a tokenizer from GGUF tokenizer.ggml.* metadata, as llama.cpp's llama_vocab::load does:
// model "llama" (SentencePiece BPE), "gpt2" (byte-level BPE with the pre-tokenizer named by tokenizer.ggml.pre)
// or "bert" (WordPiece).
func FromMetadata(md *weights.Metadata) (*Tokenizer, error) {
	if md == nil {
		return nil, fmt.Errorf("%w: nil metadata", ErrFormat)
	}
	model, ok := md.String("tokenizer.ggml.model")
	if !ok {
		return nil, fmt.Errorf("%w: no tokenizer.ggml.model", ErrFormat)
	}
	var s *vocabSpec
	switch model {
	case "llama":
		s = newSpec(kindSPM)
	case "gpt2":
		s = newSpec(kindBPE)
		merges, ok := md.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("%w: gpt2 tokenizer without tokenizer.ggml.merges", ErrFormat)
		}
		s.merges = merges
		s.pre, _ = md.String("tokenizer.ggml.pre")
		switch s.pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
			s.ignoreMerges, s.addBOS = true, true
		}
		s.bos, s.eos = 11, 11
	case "bert":
		s = newSpec(kindWPM)
	default:
		return nil, fmt.Errorf("%w: unsupported tokenizer model %q", ErrFormat, model)
	}
	tokens, ok := md.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil, fmt.Errorf("%w: no tokenizer.ggml.tokens", ErrFormat)
	}
	s.tokens = tokens
	if _, present := md.Value("tokenizer.ggml.scores"); present {
		if f, ok := md.Float32s("tokenizer.ggml.scores"); ok {
			s.scores = f
		} else if iv, ok := md.Int32s("tokenizer.ggml.scores"); ok {
			s.scores = make([]float32, len(iv))
			for i, v := range iv {
				s.scores[i] = float32(v)
			}
		} else {
			return nil, fmt.Errorf("%w: tokenizer.ggml.scores is not a float32 or int32 array", ErrFormat)
		}
	}
	if _, present := md.Value("tokenizer.ggml.token_type"); present {
		tt, ok := md.Int32s("tokenizer.ggml.token_type")
		if !ok {
			return nil, fmt.Errorf("%w: tokenizer.ggml.token_type is not an int32 array", ErrFormat)
		}
		s.types = make([]tokenType, len(tt))
		for i, v := range tt {
			s.types[i] = tokenType(v)
		}
	}
	if v, ok := md.Bool("tokenizer.ggml.add_space_prefix"); ok {
		s.addSpacePrefix = v
	}
	n := int64(len(tokens))
	for key, dst := range map[string]*int32{
		"tokenizer.ggml.bos_token_id":       &s.bos,
		"tokenizer.ggml.eos_token_id":       &s.eos,
		"tokenizer.ggml.eot_token_id":       &s.eot,
		"tokenizer.ggml.eom_token_id":       &s.eom,
		"tokenizer.ggml.unknown_token_id":   &s.unk,
		"tokenizer.ggml.seperator_token_id": &s.sep,
		"tokenizer.ggml.padding_token_id":   &s.pad,
	} {
		if *dst >= int32(n) {
			*dst = noToken
		}
		if v, ok := md.Int(key); ok && v >= 0 && v < n {
			*dst = int32(v)
		}
	}
	if v, ok := md.Bool("tokenizer.ggml.add_bos_token"); ok {
		s.addBOS = v
	}
	if v, ok := md.Bool("tokenizer.ggml.add_eos_token"); ok {
		s.addEOS = v
	}
	if v, ok := md.Bool("tokenizer.ggml.add_sep_token"); ok {
		s.addSep = v
	}
	if v, ok := md.Bool("tokenizer.ggml.normalizer.lowercase"); ok {
		s.lowercase, s.stripAccents = v, v
	}
	if v, ok := md.Bool("tokenizer.ggml.normalizer.strip_accents"); ok {
		s.stripAccents = v
	}
	s.modelName, _ = md.String("general.name")
	s.chatTemplate, _ = md.String("tokenizer.chat_template")
	t, err := s.build()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: gguf %s vocabulary: %w", model, err)
	}
	return t, nil
}
