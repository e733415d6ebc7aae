package export

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/bestofn/bestofn/weights"
)

// SentencePiece / GGUF token types (tokenizer.ggml.token_type).
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

// spaceMarker is SentencePiece's visible space, U+2581.
const spaceMarker = "\u2581"

// Vocab is a LLaMA SentencePiece vocabulary, as GGUF's tokenizer.ggml.* keys hold it.
type Vocab struct {
	Tokens []string
	Scores []float32
	Types  []int32 // tokenizer.ggml.token_type values; nil means normal, except <0xNN> bytes
	// BOS, EOS and UNK are token ids, -1 when absent.
	BOS, EOS, UNK int32
	// AddBOS prepends BOS to every encoded text (llama's default).
	AddBOS bool
	// AddEOS appends EOS to every encoded text (tokenizer.json only: a reward model that reads its score at EOS).
	AddEOS bool
	// AddSpacePrefix puts a space before the text (SentencePiece's add_dummy_prefix; llama's default).
	AddSpacePrefix bool
}

// VocabFromMetadata reads a "llama" (SentencePiece) vocabulary from GGUF tokenizer.ggml.* metadata, with the
// defaults llama.cpp applies: BOS 1, EOS 2, UNK 0, add_bos_token and add_space_prefix true.
func VocabFromMetadata(md *weights.Metadata) (*Vocab, error) {
	if md == nil {
		return nil, errors.New("export: no metadata")
	}
	if m, _ := md.String("tokenizer.ggml.model"); m != "llama" {
		return nil, fmt.Errorf("export: tokenizer model %q: only llama (SentencePiece) vocabularies are exported to tokenizer.json", m)
	}
	v := &Vocab{BOS: 1, EOS: 2, UNK: 0, AddBOS: true, AddSpacePrefix: true}
	var ok bool
	if v.Tokens, ok = md.Strings("tokenizer.ggml.tokens"); !ok || len(v.Tokens) == 0 {
		return nil, errors.New("export: metadata has no tokenizer.ggml.tokens")
	}
	if v.Scores, ok = md.Float32s("tokenizer.ggml.scores"); !ok || len(v.Scores) != len(v.Tokens) {
		return nil, errors.New("export: tokenizer.ggml.scores is missing or does not match the tokens")
	}
	if _, present := md.Value("tokenizer.ggml.token_type"); present {
		if v.Types, ok = md.Int32s("tokenizer.ggml.token_type"); !ok || len(v.Types) != len(v.Tokens) {
			return nil, errors.New("export: tokenizer.ggml.token_type does not match the tokens")
		}
	}
	n := int64(len(v.Tokens))
	for key, dst := range map[string]*int32{
		"tokenizer.ggml.bos_token_id":     &v.BOS,
		"tokenizer.ggml.eos_token_id":     &v.EOS,
		"tokenizer.ggml.unknown_token_id": &v.UNK,
	} {
		if id, ok := md.Int(key); ok {
			*dst = -1
			if id >= 0 && id < n {
				*dst = int32(id)
			}
		}
	}
	if b, ok := md.Bool("tokenizer.ggml.add_bos_token"); ok {
		v.AddBOS = b
	}
	if b, ok := md.Bool("tokenizer.ggml.add_space_prefix"); ok {
		v.AddSpacePrefix = b
	}
	return v, nil
}

func (v *Vocab) tokenType(id int) int32 {
	if v.Types != nil {
		return v.Types[id]
	}
	if t := v.Tokens[id]; len(t) == 6 && t[:3] == "<0x" && t[5] == '>' {
		return tokByte
	}
	return tokNormal
}

func (v *Vocab) name(id int32) (string, bool) {
	if id < 0 || int(id) >= len(v.Tokens) {
		return "", false
	}
	return v.Tokens[id], true
}

// TokenizerJSON writes the vocabulary as a Hugging Face tokenizer.json, the way transformers converts a LLaMA
// SentencePiece model (LlamaConverter, legacy mode): a BPE model with byte fallback whose merges are every split
// of a token into two tokens, ranked by the merged token's score (highest first), so that rank order is
// SentencePiece's score order; spaces become U+2581 with a prefix one (normalizer Prepend + Replace); BOS is
// added by a TemplateProcessing post-processor when AddBOS is set (and EOS after the text when AddEOS is);
// control, unknown and user-defined tokens are added tokens.
func (v *Vocab) TokenizerJSON() ([]byte, error) {
	if len(v.Tokens) == 0 || len(v.Scores) != len(v.Tokens) || (v.Types != nil && len(v.Types) != len(v.Tokens)) {
		return nil, errors.New("export: vocabulary tokens, scores and types differ in length")
	}
	ids := make(map[string]int, len(v.Tokens))
	for i, t := range v.Tokens {
		if !utf8.ValidString(t) {
			return nil, fmt.Errorf("export: token %d (%q) is not valid UTF-8", i, t)
		}
		if _, dup := ids[t]; dup {
			return nil, fmt.Errorf("export: token %q appears twice", t)
		}
		ids[t] = i
	}

	type addedToken struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var added []addedToken
	for i := range v.Tokens {
		switch typ := v.tokenType(i); typ {
		case tokControl, tokUnknown, tokUserDefined:
			added = append(added, addedToken{ID: i, Content: v.Tokens[i], Special: typ != tokUserDefined})
		}
	}

	// Merges: every split of a token into two tokens, by the merged token's score (highest first), then its id,
	// then the split position.
	type merge struct {
		left, right string
		id, split   int
	}
	var merges []merge
	for id, t := range v.Tokens {
		switch v.tokenType(id) {
		case tokNormal, tokUserDefined, tokUnused:
		default:
			continue
		}
		for k := 1; k < len(t); k++ {
			if !utf8.RuneStart(t[k]) {
				continue
			}
			_, okL := ids[t[:k]]
			_, okR := ids[t[k:]]
			if okL && okR {
				merges = append(merges, merge{left: t[:k], right: t[k:], id: id, split: k})
			}
		}
	}
	slices.SortStableFunc(merges, func(a, b merge) int {
		if c := cmp.Compare(v.Scores[b.id], v.Scores[a.id]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(a.split, b.split)
	})

	var normalizer any = map[string]any{"type": "Replace", "pattern": map[string]string{"String": " "}, "content": spaceMarker}
	if v.AddSpacePrefix {
		normalizer = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": spaceMarker},
			normalizer,
		}}
	}
	var postProcessor any
	single := []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}
	pair := append(slices.Clone(single), map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}})
	special := map[string]any{}
	if bos, ok := v.name(v.BOS); ok && v.AddBOS {
		tok := map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}
		single = append([]any{tok}, single...)
		pair = []any{tok, pair[0], map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 1}}, pair[1]}
		special[bos] = map[string]any{"id": bos, "ids": []int32{v.BOS}, "tokens": []string{bos}}
	}
	if eos, ok := v.name(v.EOS); ok && v.AddEOS {
		single = append(single, map[string]any{"SpecialToken": map[string]any{"id": eos, "type_id": 0}})
		pair = append(pair, map[string]any{"SpecialToken": map[string]any{"id": eos, "type_id": 1}})
		special[eos] = map[string]any{"id": eos, "ids": []int32{v.EOS}, "tokens": []string{eos}}
	}
	postProcessor = map[string]any{"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": special}
	var unk any
	if name, ok := v.name(v.UNK); ok {
		unk = name
	}

	// The vocabulary and merges are written in id and rank order (json.Marshal would sort a map's keys).
	var vocab, mergeList bytes.Buffer
	vocab.WriteByte('{')
	for i, t := range v.Tokens {
		if i > 0 {
			vocab.WriteByte(',')
		}
		vocab.Write(jsonString(t))
		fmt.Fprintf(&vocab, ":%d", i)
	}
	vocab.WriteByte('}')
	mergeList.WriteByte('[')
	for i, m := range merges {
		if i > 0 {
			mergeList.WriteByte(',')
		}
		mergeList.WriteByte('[')
		mergeList.Write(jsonString(m.left))
		mergeList.WriteByte(',')
		mergeList.Write(jsonString(m.right))
		mergeList.WriteByte(']')
	}
	mergeList.WriteByte(']')

	doc := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     normalizer,
		"pre_tokenizer":  nil,
		"post_processor": postProcessor,
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]string{"String": spaceMarker}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{
			"type":                      "BPE",
			"dropout":                   nil,
			"unk_token":                 unk,
			"continuing_subword_prefix": nil,
			"end_of_word_suffix":        nil,
			"fuse_unk":                  true,
			"byte_fallback":             true,
			"ignore_merges":             false,
			"vocab":                     json.RawMessage(vocab.Bytes()),
			"merges":                    json.RawMessage(mergeList.Bytes()),
		},
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("export: tokenizer.json: %w", err)
	}
	return out.Bytes(), nil
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimRight(b.Bytes(), "\n")
}
