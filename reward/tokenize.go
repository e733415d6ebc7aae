package reward

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/bestofn/bestofn/tokenizer"
)

// textEncoder turns text into token ids without special tokens around it.
type textEncoder interface {
	Encode(text string) []int32
}

// rmTokenizer is a reward model's tokenizer: the encoder plus the special tokens its post-processor puts around a
// single sequence (e.g. [CLS] ... [SEP]).
type rmTokenizer struct {
	enc    textEncoder
	prefix []int32
	suffix []int32
}

// tokenizerJSON is the part of tokenizer.json this file dispatches on.
type tokenizerJSON struct {
	Model struct {
		Type string `json:"type"`
	} `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
}

// postProcessorJSON covers TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel and Sequence.
type postProcessorJSON struct {
	Type       string            `json:"type"`
	Processors []json.RawMessage `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
	CLS []any `json:"cls"`
	SEP []any `json:"sep"`
}

// bpeEncoder adapts the tokenizer package's BPE (GPT-2 byte-level as in OPT reward models, LLaMA with byte
// fallback): no BOS, added tokens in the text recognized as Hugging Face tokenizers does.
type bpeEncoder struct{ t *tokenizer.Tokenizer }

func (b bpeEncoder) Encode(text string) []int32 { return b.t.Encode(text, false, true) }

// loadTokenizer reads tokenizer.json. SentencePiece-Unigram models (DeBERTa-v3 style) are tokenized by
// tokenizer.ParseUnigramJSON and BPE models (OPT's GPT-2 byte-level BPE, LLaMA's) by tokenizer.ParseHFJSON; both
// reproduce Hugging Face tokenizers for the features they accept and refuse the others with an error. hugot's own
// Go tokenizer is not used: it approximates (it splits byte-level BPE and Split pre-tokenizers on whitespace only,
// and does not fuse unknown characters into one [UNK] in Unigram models), and the issue asks for exact ids or a
// clear error.
func loadTokenizer(path string) (*rmTokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("reward: %s: %w", path, err)
	}
	t := &rmTokenizer{}
	switch tj.Model.Type {
	case "Unigram":
		u, err := tokenizer.ParseUnigramJSON(data)
		if err != nil {
			return nil, fmt.Errorf("reward: %s: %w", path, err)
		}
		t.enc = u
	case "BPE":
		b, err := tokenizer.ParseHFJSON(data)
		if err != nil {
			return nil, fmt.Errorf("reward: %s: %w", path, err)
		}
		t.enc = bpeEncoder{b}
	case "":
		return nil, fmt.Errorf("reward: %s: no model type", path)
	default:
		return nil, fmt.Errorf("reward: %s: tokenizer model type %q is not supported yet (supported: Unigram, BPE)", path, tj.Model.Type)
	}
	if err := t.parsePostProcessor(tj.PostProcessor); err != nil {
		return nil, fmt.Errorf("reward: %s: %w", path, err)
	}
	return t, nil
}

// parsePostProcessor sets the special tokens added around a single sequence.
func (t *rmTokenizer) parsePostProcessor(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var pp postProcessorJSON
	if err := json.Unmarshal(raw, &pp); err != nil {
		return fmt.Errorf("post_processor: %w", err)
	}
	switch pp.Type {
	case "TemplateProcessing":
		seen := false
		for _, item := range pp.Single {
			switch {
			case item.Sequence != nil:
				if seen || item.Sequence.ID != "A" {
					return fmt.Errorf("post_processor: single template must hold sequence A once")
				}
				seen = true
			case item.SpecialToken != nil:
				sp, ok := pp.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("post_processor: special token %q has no ids", item.SpecialToken.ID)
				}
				if seen {
					t.suffix = append(t.suffix, sp.IDs...)
				} else {
					t.prefix = append(t.prefix, sp.IDs...)
				}
			default:
				return fmt.Errorf("post_processor: unknown template item")
			}
		}
		if !seen {
			return fmt.Errorf("post_processor: single template has no sequence")
		}
	case "BertProcessing", "RobertaProcessing":
		cls, err := specialPair(pp.CLS)
		if err != nil {
			return fmt.Errorf("post_processor %s: cls: %w", pp.Type, err)
		}
		sep, err := specialPair(pp.SEP)
		if err != nil {
			return fmt.Errorf("post_processor %s: sep: %w", pp.Type, err)
		}
		t.prefix, t.suffix = []int32{cls}, []int32{sep}
	case "ByteLevel":
		// Offsets only: no tokens added.
	case "Sequence":
		for _, child := range pp.Processors {
			if err := t.parsePostProcessor(child); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("post_processor %q is not supported", pp.Type)
	}
	return nil
}

// specialPair reads a ["token", id] pair.
func specialPair(v []any) (int32, error) {
	if len(v) != 2 {
		return 0, fmt.Errorf("want [token, id]")
	}
	id, ok := v[1].(float64)
	if !ok || id < 0 || id != float64(int32(id)) {
		return 0, fmt.Errorf("want [token, id]")
	}
	return int32(id), nil
}
