package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// hfTokenizer is the part of an HF tokenizer.json that BPE tokenizers use.
type hfTokenizer struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
		LStrip  bool   `json:"lstrip"`
		RStrip  bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer    *hfComponent `json:"normalizer"`
	PreTokenizer  *hfComponent `json:"pre_tokenizer"`
	PostProcessor *hfComponent `json:"post_processor"`
	Decoder       *hfComponent `json:"decoder"`
	Model         struct {
		Type         string            `json:"type"`
		Vocab        map[string]int64  `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
		UnkToken     *string           `json:"unk_token"`
		IgnoreMerges bool              `json:"ignore_merges"`
	} `json:"model"`
}

// hfComponent is a normalizer, pre-tokenizer, post-processor or decoder, possibly a Sequence of them.
type hfComponent struct {
	Type          string         `json:"type"`
	Normalizers   []*hfComponent `json:"normalizers"`
	Pretokenizers []*hfComponent `json:"pretokenizers"`
	Processors    []*hfComponent `json:"processors"`
	Decoders      []*hfComponent `json:"decoders"`
	Pattern       *struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior         string `json:"behavior"`
	Invert           bool   `json:"invert"`
	IndividualDigits bool   `json:"individual_digits"`
	Content          string `json:"content"`
	Prepend          string `json:"prepend"`
	UseRegex         *bool  `json:"use_regex"`
	AddPrefixSpace   *bool  `json:"add_prefix_space"`
	PrependScheme    string `json:"prepend_scheme"`
	Single           []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
}

// walk calls fn on c and every component nested in it, in order.
func (c *hfComponent) walk(fn func(*hfComponent)) {
	if c == nil {
		return
	}
	fn(c)
	for _, list := range [][]*hfComponent{c.Normalizers, c.Pretokenizers, c.Processors, c.Decoders} {
		for _, x := range list {
			x.walk(fn)
		}
	}
}

// hfConfig is the part of an HF tokenizer_config.json that Load uses when it sits beside tokenizer.json.
type hfConfig struct {
	BOSToken     json.RawMessage `json:"bos_token"`
	EOSToken     json.RawMessage `json:"eos_token"`
	AddBOSToken  *bool           `json:"add_bos_token"`
	AddEOSToken  *bool           `json:"add_eos_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
}

// tokenName reads a tokenizer_config.json token: a string or {"content": string}.
func tokenName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}

// ParseHFJSON reads an HF tokenizer.json with a BPE model: byte-level BPE (GPT-2, LLaMA-3, Qwen2: the
// pre-tokenizer's Split regexes and ByteLevel) or SentencePiece-style BPE with byte_fallback (HF LLaMA-1/2:
// spaces replaced by U+2581, a U+2581 prefix). Added tokens become control tokens (special) or user-defined ones.
// BOS comes from the post-processor's template, else a "<s>" or "<|begin_of_text|>" token; EOS from "</s>",
// "<|end_of_text|>", "<|endoftext|>" or "<|im_end|>".
func ParseHFJSON(data []byte) (*Tokenizer, error) {
	return parseHFJSON(data, nil)
}

func parseHFJSON(data, config []byte) (*Tokenizer, error) {
	var hf hfTokenizer
	if err := json.Unmarshal(data, &hf); err != nil {
		return nil, fmt.Errorf("%w: tokenizer.json: %v", ErrFormat, err)
	}
	if hf.Model.Type != "BPE" && !(hf.Model.Type == "" && len(hf.Model.Merges) > 0) {
		return nil, fmt.Errorf("%w: tokenizer.json model type %q is not supported (only BPE)", ErrFormat, hf.Model.Type)
	}
	s := newSpec(kindBPE)
	s.ignoreMerges = hf.Model.IgnoreMerges

	// Vocabulary: ids must be dense enough that the table they index is bounded by the data's own size.
	maxID := int64(-1)
	for _, id := range hf.Model.Vocab {
		maxID = max(maxID, id)
	}
	for _, a := range hf.AddedTokens {
		maxID = max(maxID, a.ID)
	}
	total := int64(len(hf.Model.Vocab) + len(hf.AddedTokens))
	if maxID < 0 || maxID >= 2*total+1024 {
		return nil, fmt.Errorf("%w: tokenizer.json: token id %d for %d tokens", ErrFormat, maxID, total)
	}
	s.tokens = make([]string, maxID+1)
	s.types = make([]tokenType, maxID+1)
	for tok, id := range hf.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("%w: tokenizer.json: negative id %d for %q", ErrFormat, id, tok)
		}
		s.tokens[id] = tok
		s.types[id] = typeNormal
		if hf.Model.ByteFallback && len(tok) == 6 && strings.HasPrefix(tok, "<0x") && tok[5] == '>' {
			s.types[id] = typeByte
		}
	}
	for i, tok := range s.tokens {
		if tok == "" {
			s.types[i] = typeUnused
		}
	}
	var lstrip, rstrip []int32
	for _, a := range hf.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("%w: tokenizer.json: negative id %d for %q", ErrFormat, a.ID, a.Content)
		}
		if prev := s.tokens[a.ID]; prev != "" && prev != a.Content {
			return nil, fmt.Errorf("%w: tokenizer.json: id %d is both %q and %q", ErrFormat, a.ID, prev, a.Content)
		}
		s.tokens[a.ID] = a.Content
		s.types[a.ID] = typeUserDefined
		if a.Special {
			s.types[a.ID] = typeControl
		}
		if a.LStrip {
			lstrip = append(lstrip, int32(a.ID))
		}
		if a.RStrip {
			rstrip = append(rstrip, int32(a.ID))
		}
	}
	idOf := func(text string) int32 {
		for i, tok := range s.tokens {
			if tok == text {
				return int32(i)
			}
		}
		return noToken
	}
	if hf.Model.UnkToken != nil {
		if id := idOf(*hf.Model.UnkToken); id != noToken {
			s.unk = id
			s.types[id] = typeUnknown
		}
	}

	// Merges: "left right" strings (split at the first space after the first byte, as llama.cpp does) or
	// ["left", "right"] pairs, whose halves may themselves hold spaces.
	for i, raw := range hf.Model.Merges {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			var p [2]string
			if j := strings.IndexByte(str[min(1, len(str)):], ' '); j >= 0 {
				j += min(1, len(str))
				p = [2]string{str[:j], str[j+1:]}
			}
			s.mergePairs = append(s.mergePairs, p)
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("%w: tokenizer.json: merge %d is neither \"a b\" nor [\"a\", \"b\"]", ErrFormat, i)
		}
		s.mergePairs = append(s.mergePairs, [2]string{pair[0], pair[1]})
	}
	if len(hf.Model.Merges) == 0 && !s.ignoreMerges {
		return nil, fmt.Errorf("%w: tokenizer.json: BPE model without merges", ErrFormat)
	}

	// Pre-tokenization: byte-level (Split regexes + ByteLevel) or SentencePiece-style. Components that would
	// change the ids and are not implemented are refused rather than ignored.
	byteLevel := false
	var unsupported []string
	s.preRegexes = []string{}
	hf.PreTokenizer.walk(func(c *hfComponent) {
		switch c.Type {
		case "Sequence":
		case "Split":
			if c.Pattern == nil || c.Pattern.Regex == nil || c.Invert || (c.Behavior != "" && c.Behavior != "Isolated") {
				unsupported = append(unsupported, "pre_tokenizer Split other than an isolated regex")
				return
			}
			s.preRegexes = append(s.preRegexes, *c.Pattern.Regex)
		case "Digits":
			if c.IndividualDigits {
				s.preRegexes = append(s.preRegexes, `\p{N}`)
			} else {
				s.preRegexes = append(s.preRegexes, `\p{N}+`)
			}
		case "ByteLevel":
			byteLevel = true
			if c.UseRegex == nil || *c.UseRegex {
				s.preRegexes = append(s.preRegexes, reGPT2)
			}
			if c.AddPrefixSpace != nil && *c.AddPrefixSpace {
				s.addSpacePrefix = true
			}
		case "Metaspace":
			s.escapeSpaces = true
			if c.PrependScheme == "first" || c.PrependScheme == "always" ||
				(c.AddPrefixSpace != nil && *c.AddPrefixSpace) {
				s.addSpacePrefix = true
			}
		default:
			unsupported = append(unsupported, "pre_tokenizer "+c.Type)
		}
	})
	hf.Decoder.walk(func(c *hfComponent) {
		if c.Type == "ByteLevel" {
			byteLevel = true
		}
	})
	hf.Normalizer.walk(func(c *hfComponent) {
		switch c.Type {
		case "Sequence":
		case "NFC":
			// llama.cpp ignores Qwen2's NFC normalizer too; text is tokenized as given.
		case "Replace":
			if c.Pattern == nil || c.Pattern.String == nil || *c.Pattern.String != " " || c.Content != spaceMarker {
				unsupported = append(unsupported, "normalizer Replace other than ' ' -> U+2581")
				return
			}
			s.escapeSpaces = true
		case "Prepend":
			if c.Prepend != spaceMarker {
				unsupported = append(unsupported, "normalizer Prepend other than U+2581")
				return
			}
			s.addSpacePrefix = true
		default:
			unsupported = append(unsupported, "normalizer "+c.Type)
		}
	})
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("%w: tokenizer.json: unsupported %s", ErrFormat, strings.Join(unsupported, ", "))
	}
	s.byteLevel = byteLevel
	s.unicodeRegex = true
	if !byteLevel && !s.escapeSpaces {
		return nil, fmt.Errorf("%w: tokenizer.json: neither a ByteLevel pre-tokenizer nor SentencePiece-style spaces", ErrFormat)
	}

	// Special tokens.
	hf.PostProcessor.walk(func(c *hfComponent) {
		if c.Type == "TemplateProcessing" && len(c.Single) > 0 && c.Single[0].SpecialToken != nil {
			if id := idOf(c.Single[0].SpecialToken.ID); id != noToken {
				s.bos, s.addBOS = id, true
			}
		}
	})
	if s.bos == noToken {
		for _, name := range []string{"<s>", "<|begin_of_text|>"} {
			if id := idOf(name); id != noToken {
				s.bos = id
				break
			}
		}
	}
	for _, name := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"} {
		if id := idOf(name); id != noToken {
			s.eos = id
			break
		}
	}
	if config != nil {
		var cfg hfConfig
		if err := json.Unmarshal(config, &cfg); err != nil {
			return nil, fmt.Errorf("%w: tokenizer_config.json: %v", ErrFormat, err)
		}
		if name := tokenName(cfg.BOSToken); name != "" {
			s.bos = idOf(name)
		}
		if name := tokenName(cfg.EOSToken); name != "" {
			s.eos = idOf(name)
		}
		if cfg.AddBOSToken != nil {
			s.addBOS = *cfg.AddBOSToken
		}
		if cfg.AddEOSToken != nil {
			s.addEOS = *cfg.AddEOSToken
		}
		var tmpl string
		if json.Unmarshal(cfg.ChatTemplate, &tmpl) == nil {
			s.chatTemplate = tmpl
		}
	}
	if s.addBOS && s.bos == noToken {
		s.addBOS = false
	}
	t, err := s.build()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	for _, id := range lstrip {
		t.attrs[id] |= attrLStrip
	}
	for _, id := range rstrip {
		t.attrs[id] |= attrRStrip
	}
	return t, nil
}
