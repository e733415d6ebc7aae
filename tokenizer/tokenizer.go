package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrFormat is wrapped by every error about a malformed or unsupported tokenizer file.
var ErrFormat = errors.New("tokenizer: bad tokenizer data")

// tokenType is a token's kind, with the values SentencePiece and GGUF's tokenizer.ggml.token_type use.
type tokenType int32

// Token types (tokenizer.ggml.token_type values).
const (
	typeUndefined   tokenType = 0
	typeNormal      tokenType = 1
	typeUnknown     tokenType = 2
	typeControl     tokenType = 3
	typeUserDefined tokenType = 4
	typeUnused      tokenType = 5
	typeByte        tokenType = 6
)

// attr is llama.cpp's llama_token_attr bit set.
type attr uint16

const (
	attrUnknown attr = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
	attrNormalized
	attrLStrip
	attrRStrip
	attrSingleWord
)

func attrOfType(t tokenType) attr {
	switch t {
	case typeUnknown:
		return attrUnknown
	case typeUnused:
		return attrUnused
	case typeNormal:
		return attrNormal
	case typeControl:
		return attrControl
	case typeUserDefined:
		return attrUserDefined
	case typeByte:
		return attrByte
	}
	return 0
}

// kind is the tokenization algorithm.
type kind int

const (
	kindSPM kind = iota // SentencePiece BPE by piece scores (LLaMA-1/2)
	kindBPE             // BPE by merge ranks (GPT-2 byte-level, or SentencePiece-style with byte fallback)
	kindWPM             // WordPiece (BERT)
)

// noToken marks an absent special token id.
const noToken int32 = -1

// Tokenizer turns text into token ids and back. It is safe for concurrent use.
type Tokenizer struct {
	kind   kind
	pieces []string  // id -> vocabulary text
	scores []float32 // id -> score (SPM)
	attrs  []attr    // id -> attributes
	ids    map[string]int32

	bos, eos, unk, sep, pad, eot, eom int32
	eog                               map[int32]bool
	addBOS, addEOS, addSep            bool
	addSpacePrefix                    bool
	special                           []int32 // control/user-defined/unknown ids, longest text first
	maxTokenLen                       int
	chatTemplate                      string

	cache idCache // word -> ids (BPE pre-tokens, SentencePiece runs)

	// SPM: ASCII characters that occur in no token of two or more characters
	spmBarrier [128]bool
	// SPM: no token holds U+2581 right after another character than U+2581, so the text splits before each
	// word-starting U+2581 into runs that merge independently.
	spmWordSplit bool

	// BPE
	merges       map[mergePair]int32
	pre          *preTokenizer
	byteLevel    *byteLevel // nil for BPE over raw UTF-8 with <0xNN> byte fallback
	escapeSpaces bool       // replace ' ' by U+2581 before BPE (SentencePiece-style BPE)
	ignoreMerges bool

	// WPM
	lowercase, stripAccents bool

	// decoded text of each token for Decode: control and unknown tokens are empty.
	decoded []string
}

type mergePair struct{ left, right string }

// vocabSpec is what every loader produces before the Tokenizer is built.
type vocabSpec struct {
	kind           kind
	pre            string // tokenizer.ggml.pre (BPE)
	preRegexes     []string
	unicodeRegex   bool // pre-tokenizer regexes use real Unicode classes (HF), not llama.cpp's collapsed ones
	tokens         []string
	scores         []float32
	types          []tokenType
	merges         []string // "left right"
	mergePairs     [][2]string
	bos, eos, unk  int32
	sep, pad       int32
	eot, eom       int32
	addBOS, addEOS bool
	addSep         bool
	addSpacePrefix bool
	byteLevel      bool
	escapeSpaces   bool
	ignoreMerges   bool
	lowercase      bool
	stripAccents   bool
	modelName      string
	chatTemplate   string
}

func newSpec(k kind) *vocabSpec {
	s := &vocabSpec{kind: k, bos: noToken, eos: noToken, unk: noToken, sep: noToken, pad: noToken,
		eot: noToken, eom: noToken}
	switch k {
	case kindSPM:
		s.bos, s.eos, s.unk = 1, 2, 0
		s.addBOS, s.addSpacePrefix = true, true
	case kindBPE:
		s.byteLevel = true
	case kindWPM:
		s.bos, s.unk, s.sep, s.pad = 101, 100, 102, 0
		s.addBOS, s.addSep = true, true
		s.lowercase, s.stripAccents = true, true
	}
	return s
}

// build validates the spec and makes the Tokenizer.
func (s *vocabSpec) build() (*Tokenizer, error) {
	n := len(s.tokens)
	if n == 0 {
		return nil, fmt.Errorf("%w: empty vocabulary", ErrFormat)
	}
	if s.scores != nil && len(s.scores) < n {
		return nil, fmt.Errorf("%w: %d scores for %d tokens", ErrFormat, len(s.scores), n)
	}
	if s.types != nil && len(s.types) < n {
		return nil, fmt.Errorf("%w: %d token types for %d tokens", ErrFormat, len(s.types), n)
	}
	t := &Tokenizer{
		kind:           s.kind,
		pieces:         make([]string, n),
		scores:         make([]float32, n),
		attrs:          make([]attr, n),
		ids:            make(map[string]int32, n),
		addBOS:         s.addBOS,
		addEOS:         s.addEOS,
		addSep:         s.addSep,
		addSpacePrefix: s.addSpacePrefix,
		escapeSpaces:   s.escapeSpaces,
		ignoreMerges:   s.ignoreMerges,
		lowercase:      s.lowercase,
		stripAccents:   s.stripAccents,
		chatTemplate:   s.chatTemplate,
		eog:            make(map[int32]bool),
	}
	for i, w := range s.tokens {
		if w == "" {
			w = fmt.Sprintf("[EMPTY_%d]", i)
		}
		if prev, dup := t.ids[w]; dup {
			return nil, fmt.Errorf("%w: duplicate token %q (ids %d and %d)", ErrFormat, w, prev, i)
		}
		t.ids[w] = int32(i)
		t.pieces[i] = w
		t.maxTokenLen = max(t.maxTokenLen, len(w))
		if s.scores != nil {
			t.scores[i] = s.scores[i]
		}
		t.attrs[i] = attrNormal
		if s.types != nil {
			t.attrs[i] = attrOfType(s.types[i])
		}
	}
	valid := func(id int32) int32 {
		if id < 0 || int(id) >= n {
			return noToken
		}
		return id
	}
	t.bos, t.eos, t.unk = valid(s.bos), valid(s.eos), valid(s.unk)
	t.sep, t.pad, t.eot, t.eom = valid(s.sep), valid(s.pad), valid(s.eot), valid(s.eom)
	if t.addBOS && t.bos == noToken {
		return nil, fmt.Errorf("%w: add_bos_token is set but there is no BOS token", ErrFormat)
	}

	if s.kind == kindBPE {
		t.merges = make(map[mergePair]int32, len(s.merges)+len(s.mergePairs))
		for i, m := range s.merges {
			var p mergePair
			if j := strings.IndexByte(m[min(1, len(m)):], ' '); j >= 0 {
				j += min(1, len(m))
				p = mergePair{m[:j], m[j+1:]}
			}
			if _, ok := t.merges[p]; !ok {
				t.merges[p] = int32(i)
			}
		}
		for i, m := range s.mergePairs {
			p := mergePair{m[0], m[1]}
			if _, ok := t.merges[p]; !ok {
				t.merges[p] = int32(len(s.merges) + i)
			}
		}
		if s.byteLevel {
			t.byteLevel = newByteLevel()
		}
		regexes := s.preRegexes
		if regexes == nil {
			var ok bool
			if regexes, ok = preTokenizerRegexes(s.pre); !ok {
				return nil, fmt.Errorf("%w: unknown pre-tokenizer %q", ErrFormat, s.pre)
			}
		}
		pre, err := newPreTokenizer(regexes, s.unicodeRegex)
		if err != nil {
			return nil, err
		}
		t.pre = pre
	}

	if s.kind == kindSPM {
		for c := range t.spmBarrier {
			t.spmBarrier[c] = true
		}
		t.spmWordSplit = true
		for _, p := range t.pieces {
			if utf8.RuneCountInString(p) < 2 {
				continue
			}
			for off := 1; t.spmWordSplit; {
				k := strings.Index(p[off:], spaceMarker)
				if k < 0 {
					break
				}
				at := off + k
				if !strings.HasSuffix(p[:at], spaceMarker) {
					t.spmWordSplit = false
				}
				off = at + len(spaceMarker)
			}
			for i := 0; i < len(p); i++ {
				if p[i] < 0x80 {
					t.spmBarrier[p[i]] = false
				}
			}
		}
	}

	t.markSpecials(s.modelName)
	t.buildDecoded()
	return t, nil
}

// markSpecials finds EOT/EOG tokens by text as llama.cpp does, applies per-model strip attributes and builds
// the list of tokens that are matched in raw text before tokenization.
func (t *Tokenizer) markSpecials(modelName string) {
	eotTexts := []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eogTexts := []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
		"<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<｜end▁of▁sentence｜>"}
	if t.eot == noToken {
		for _, s := range eotTexts {
			if id, ok := t.ids[s]; ok {
				t.eot = id
				t.attrs[id] |= attrControl
				break
			}
		}
	}
	if t.eom == noToken {
		if id, ok := t.ids["<|eom_id|>"]; ok {
			t.eom = id
			t.attrs[id] |= attrControl
		}
	}
	for _, s := range eogTexts {
		if id, ok := t.ids[s]; ok {
			t.eog[id] = true
			t.attrs[id] |= attrControl
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id != noToken {
			t.eog[id] = true
		}
	}
	for id, a := range t.attrs {
		if a&attrControl != 0 && strings.Contains(t.pieces[id], "unused") {
			t.attrs[id] |= attrUnused
		}
	}
	for id, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.special = append(t.special, int32(id))
		}
	}
	slices.SortStableFunc(t.special, func(a, b int32) int { return len(t.pieces[b]) - len(t.pieces[a]) })

	name := strings.ToLower(modelName)
	if strings.Contains(name, "phi-3") || strings.Contains(name, "phi3") {
		for _, id := range t.special {
			t.attrs[id] |= attrRStrip
		}
		for _, s := range []string{"</s>"} {
			if id, ok := t.ids[s]; ok {
				t.attrs[id] |= attrRStrip
			}
		}
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			if id, ok := t.ids[s]; ok {
				t.attrs[id] &^= attrRStrip
			}
		}
	}
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// BOS is the beginning-of-sequence token id, or -1 when the vocabulary has none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS is the end-of-sequence token id, or -1 when the vocabulary has none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// UNK is the unknown token id, or -1 when the vocabulary has none.
func (t *Tokenizer) UNK() int32 { return t.unk }

// PAD is the padding token id, or -1 when the vocabulary has none.
func (t *Tokenizer) PAD() int32 { return t.pad }

// AddBOSDefault reports whether the vocabulary asks for BOS at the start of a prompt (GGUF add_bos_token).
func (t *Tokenizer) AddBOSDefault() bool { return t.addBOS }

// IsEOG reports whether id ends generation: EOS, EOT/EOM and the end-of-turn tokens llama.cpp recognizes by
// text (<|eot_id|>, <|im_end|>, <|endoftext|>, ...).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// TokenText is the vocabulary text of id (SentencePiece pieces keep their U+2581 spaces, byte-level BPE tokens
// their GPT-2 byte runes); "" for an id outside the vocabulary.
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenPiece is the text id prints as one token of generated output, as llama.cpp's token_to_piece: spaces
// instead of U+2581, bytes instead of GPT-2 byte runes or <0xNN>, "" for control tokens and ids outside the
// vocabulary. Unlike Decode it keeps a leading space, and a byte token's piece may be a partial UTF-8 sequence.
// This is the token text of OpenAI-style logprobs.
func (t *Tokenizer) TokenPiece(id int32) string {
	p, _ := t.piece(id, false)
	return p
}

// TokenID returns the id of the token whose vocabulary text is exactly text.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.ids[text]
	return id, ok
}

// ChatTemplate is the GGUF tokenizer.chat_template (a Jinja template), or "" when the file has none.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// fragment is a piece of the input: raw text [start, end) or, when tok >= 0, a special token.
type fragment struct {
	tok        int32
	start, end int
}

func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// overlaps reports whether [start, end) shares a byte with one of the sorted, disjoint spans.
func overlaps(spans []span, start, end int) bool {
	for _, r := range spans {
		if r.start >= end {
			return false
		}
		if start < r.end {
			return true
		}
	}
	return false
}

// partition splits text around special tokens, like llama.cpp's tokenizer_st_partition: user-defined tokens are
// always matched, control and unknown tokens only when parseSpecial is set and the match shares no byte with a
// plain span (text from a non-special Segment).
func (t *Tokenizer) partition(text string, parseSpecial bool, plain []span) []fragment {
	frags := []fragment{{tok: noToken, start: 0, end: len(text)}}
	if text == "" {
		return nil
	}
	// Bytes present in the text: a special token whose first byte is absent cannot match.
	var present [256]bool
	for i := 0; i < len(text); i++ {
		present[text[i]] = true
	}
	for _, id := range t.special {
		a := t.attrs[id]
		gated := a&(attrControl|attrUnknown) != 0
		if !parseSpecial && gated {
			continue
		}
		piece := t.pieces[id]
		if !present[piece[0]] {
			continue
		}
		found := false
		for _, f := range frags {
			if f.tok == noToken && strings.Contains(text[f.start:f.end], piece) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		next := make([]fragment, 0, len(frags)+4)
		for _, f := range frags {
			if f.tok != noToken {
				next = append(next, f)
				continue
			}
			start, end := f.start, f.end
			for from := start; from < end; {
				k := strings.Index(text[from:end], piece)
				if k < 0 {
					break
				}
				m := from + k
				if gated && overlaps(plain, m, m+len(piece)) {
					from = m + 1 // typed by a user: plain text
					continue
				}
				left := m
				if a&attrLStrip != 0 {
					for left > start && isCSpace(text[left-1]) {
						left--
					}
				}
				if left > start {
					next = append(next, fragment{tok: noToken, start: start, end: left})
				}
				next = append(next, fragment{tok: id, start: m, end: m + len(piece)})
				start = m + len(piece)
				if a&attrRStrip != 0 {
					for start < end && isCSpace(text[start]) {
						start++
					}
				}
				from = start
			}
			if start < end {
				next = append(next, fragment{tok: noToken, start: start, end: end})
			}
		}
		frags = next
	}
	return frags
}

// Segment is a piece of text to encode. Control tokens written in a Special segment (a chat template's own
// "<s>" or "<|im_start|>") become their ids; in the other segments (message content) they are plain text.
type Segment struct {
	Text    string
	Special bool
}

// EncodeSegments encodes the concatenation of segs as one text (so tokens may span segment boundaries, exactly
// as Encode would split it), matching control tokens only where they lie wholly inside Special segments. When
// the plain segments hold no control-token text this is Encode(whole, addBOS, true); with no Special segment it
// is Encode(whole, addBOS, false).
func (t *Tokenizer) EncodeSegments(segs []Segment, addBOS bool) []int32 {
	var b strings.Builder
	var plain []span
	for _, s := range segs {
		if !s.Special && s.Text != "" {
			if n := len(plain); n > 0 && plain[n-1].end == b.Len() {
				plain[n-1].end += len(s.Text)
			} else {
				plain = append(plain, span{b.Len(), b.Len() + len(s.Text)})
			}
		}
		b.WriteString(s.Text)
	}
	return t.encode(b.String(), addBOS, true, plain)
}

// ControlTexts returns the texts of the tokens that only special parsing matches (control and unknown tokens,
// e.g. "<s>", "</s>", "<|im_start|>"), longest first: the texts a chat template may write and a user must not.
func (t *Tokenizer) ControlTexts() []string {
	var out []string
	for _, id := range t.special {
		if t.attrs[id]&(attrControl|attrUnknown) != 0 {
			out = append(out, t.pieces[id])
		}
	}
	return out
}

// Encode turns text into token ids. With addBOS, the vocabulary's framing tokens are added: BOS first (when the
// vocabulary has one) and EOS/SEP last when the vocabulary asks for them (add_eos_token; WordPiece's [SEP]).
// With parseSpecial, control tokens written in the text (e.g. "<s>", "<|im_end|>") become their ids; without
// it they are tokenized as plain text. User-defined tokens are always matched.
func (t *Tokenizer) Encode(text string, addBOS, parseSpecial bool) []int32 {
	return t.encode(text, addBOS, parseSpecial, nil)
}

// encode is Encode with the plain spans of EncodeSegments, where control tokens are not matched.
func (t *Tokenizer) encode(text string, addBOS, parseSpecial bool, plain []span) []int32 {
	out := make([]int32, 0, len(text)/3+2)
	if addBOS && t.bos != noToken {
		out = append(out, t.bos)
	}
	frags := t.partition(text, parseSpecial, plain)
	switch t.kind {
	case kindSPM:
		var sess spmSession
		prevSpecial := true
		for _, f := range frags {
			if f.tok != noToken {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			out = sess.encode(t, text[f.start:f.end], t.addSpacePrefix && prevSpecial, out)
			prevSpecial = false
		}
	case kindBPE:
		var sess bpeSession
		prevSpecial := true
		for _, f := range frags {
			if f.tok != noToken {
				out = append(out, f.tok)
				prevSpecial = true
				continue
			}
			out = sess.encode(t, text[f.start:f.end], t.addSpacePrefix && prevSpecial, out)
			prevSpecial = false
		}
	case kindWPM:
		for _, f := range frags {
			if f.tok != noToken {
				out = append(out, f.tok)
				continue
			}
			out = t.encodeWPM(text[f.start:f.end], out)
		}
	}
	if addBOS {
		if t.addEOS && t.eos != noToken {
			out = append(out, t.eos)
		}
		if t.addSep && t.sep != noToken {
			out = append(out, t.sep)
		}
	}
	return out
}

// byteToken returns the token for one raw byte: "<0xNN>" (SentencePiece byte fallback) or, failing that, the
// one-byte token; for byte-level BPE, the byte's GPT-2 rune. ok is false when the vocabulary has neither.
func (t *Tokenizer) byteToken(b byte) (int32, bool) {
	if t.byteLevel != nil {
		id, ok := t.ids[t.byteLevel.enc[b]]
		return id, ok
	}
	const hex = "0123456789ABCDEF"
	buf := [6]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'}
	if id, ok := t.ids[string(buf[:])]; ok {
		return id, true
	}
	id, ok := t.ids[string([]byte{b})]
	return id, ok
}
