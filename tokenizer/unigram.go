package tokenizer

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// unigramUnkPenalty is how much lower than the lowest piece score an unknown character scores (the value
// SentencePiece and Hugging Face tokenizers both use).
const unigramUnkPenalty = 10.0

// Unigram is a SentencePiece-Unigram tokenizer read from a Hugging Face tokenizer.json (the format DeBERTa-v3
// and T5-family models ship). It reproduces Hugging Face tokenizers' encoding without special tokens: added tokens
// are split out first, then the normalizer, the Metaspace pre-tokenizer and the Viterbi segmentation of each word
// (consecutive unknown characters fused into one [UNK], or spelled as <0xXX> byte pieces when byte_fallback is
// set). Post-processing (e.g. [CLS] ... [SEP]) is left to the caller. A Unigram is immutable and safe for
// concurrent use.
type Unigram struct {
	pieces       map[string]int32 // piece text -> id
	scores       []float64        // (vocab) log probability of each piece
	unkID        int32
	unkScore     float64
	maxPieceLen  int        // longest piece in bytes
	byteFallback bool       // unknown text becomes <0xXX> pieces
	byteIDs      [256]int32 // id of <0xXX>, -1 if absent
	normalizers  []unigramNormalizer
	meta         *unigramMetaspace // nil: the normalized text is one word
	added        []unigramAdded    // sorted by decreasing content length
}

// unigramNormalizer is one supported normalizer step.
type unigramNormalizer struct {
	kind  string         // "replace", "prepend", "nfc", "nfd", "nfkc", "nfkd", "lowercase", "strip", "precompiled"
	from  string         // replace: pattern
	re    *regexp.Regexp // replace: regex pattern (nil for a string pattern)
	to    string         // replace: content; prepend: prefix
	left  bool           // strip: strip left
	right bool           // strip: strip right
	pc    *precompiledCharsmap
}

// unigramMetaspace is the Metaspace pre-tokenizer.
type unigramMetaspace struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

// unigramAdded is a token of tokenizer.json's added_tokens, matched in the raw text before normalization.
type unigramAdded struct {
	content string
	id      int32
	lstrip  bool
	rstrip  bool
}

// unigramJSON is the part of tokenizer.json a Unigram reads.
type unigramJSON struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        struct {
		Type         string            `json:"type"`
		UnkID        *int              `json:"unk_id"`
		Vocab        []json.RawMessage `json:"vocab"`
		ByteFallback bool              `json:"byte_fallback"`
	} `json:"model"`
}

// unigramStep is one normalizer or pre-tokenizer object of tokenizer.json.
type unigramStep struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	PreTokenizers  []json.RawMessage `json:"pretokenizers"`
	Pattern        map[string]string `json:"pattern"`
	Content        string            `json:"content"`
	Prepend        string            `json:"prepend"`
	StripLeft      bool              `json:"strip_left"`
	StripRight     bool              `json:"strip_right"`
	Replacement    string            `json:"replacement"`
	PrependScheme  string            `json:"prepend_scheme"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	Split          *bool             `json:"split"`
	// PrecompiledCharsmap is SentencePiece's normalization rules (base64 in tokenizer.json).
	PrecompiledCharsmap string `json:"precompiled_charsmap"`
}

// ParseUnigramJSON reads a Hugging Face tokenizer.json whose model is "Unigram". Supported: normalizers Sequence,
// Replace (string or RE2-compatible regex pattern), Prepend, NFC/NFD/NFKC/NFKD, Lowercase, Strip and Precompiled
// (SentencePiece's compiled charsmap, as DeBERTa-v3 files carry; applied per grapheme cluster like Hugging Face,
// with clusters found by the UAX #29 rules for marks, ZWJ sequences, emoji modifiers and regional indicators); the
// Metaspace pre-tokenizer (alone or in a Sequence); added tokens with lstrip/rstrip. Anything else (e.g. other
// pre-tokenizers, regexes RE2 cannot compile, single_word added tokens) is an error naming the feature, never a
// silent approximation.
func ParseUnigramJSON(data []byte) (*Unigram, error) {
	var tj unigramJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: %w", err)
	}
	if tj.Model.Type != "Unigram" {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: model type %q is not Unigram", tj.Model.Type)
	}
	n := len(tj.Model.Vocab)
	if n == 0 || n > math.MaxInt32 {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: vocabulary has %d pieces", n)
	}
	u := &Unigram{pieces: make(map[string]int32, n), scores: make([]float64, n), byteFallback: tj.Model.ByteFallback}
	for i := range u.byteIDs {
		u.byteIDs[i] = -1
	}
	minScore := math.Inf(1)
	for i, raw := range tj.Model.Vocab {
		var entry []any
		if err := json.Unmarshal(raw, &entry); err != nil || len(entry) != 2 {
			return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: vocab entry %d is not [piece, score]", i)
		}
		piece, ok1 := entry[0].(string)
		score, ok2 := entry[1].(float64)
		if !ok1 || !ok2 || piece == "" {
			return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: vocab entry %d is not [piece, score]", i)
		}
		if _, dup := u.pieces[piece]; !dup {
			u.pieces[piece] = int32(i)
		}
		u.scores[i] = score
		minScore = math.Min(minScore, score)
		u.maxPieceLen = max(u.maxPieceLen, len(piece))
		if len(piece) == 6 && strings.HasPrefix(piece, "<0x") && piece[5] == '>' {
			var b uint8
			if _, err := fmt.Sscanf(piece[3:5], "%02X", &b); err == nil {
				u.byteIDs[b] = int32(i)
			}
		}
	}
	u.unkScore = minScore - unigramUnkPenalty
	u.unkID = -1
	if tj.Model.UnkID != nil {
		if *tj.Model.UnkID < 0 || *tj.Model.UnkID >= n {
			return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: unk_id %d outside the vocabulary of %d", *tj.Model.UnkID, n)
		}
		u.unkID = int32(*tj.Model.UnkID)
	}
	for _, a := range tj.AddedTokens {
		if a.SingleWord {
			return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: added token %q: single_word is not supported", a.Content)
		}
		if a.Content == "" {
			continue
		}
		u.added = append(u.added, unigramAdded{content: a.Content, id: a.ID, lstrip: a.LStrip, rstrip: a.RStrip})
	}
	sort.SliceStable(u.added, func(i, j int) bool { return len(u.added[i].content) > len(u.added[j].content) })
	if err := u.parseNormalizer(tj.Normalizer); err != nil {
		return nil, err
	}
	if err := u.parsePreTokenizer(tj.PreTokenizer); err != nil {
		return nil, err
	}
	return u, nil
}

func isJSONNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

func (u *Unigram) parseNormalizer(raw json.RawMessage) error {
	if isJSONNull(raw) {
		return nil
	}
	var st unigramStep
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer: %w", err)
	}
	switch st.Type {
	case "Sequence":
		for _, child := range st.Normalizers {
			if err := u.parseNormalizer(child); err != nil {
				return err
			}
		}
	case "Replace":
		n := unigramNormalizer{kind: "replace", to: st.Content}
		if pat, ok := st.Pattern["String"]; ok && pat != "" {
			n.from = pat
		} else if pat, ok := st.Pattern["Regex"]; ok && pat != "" {
			re, err := regexp.Compile(pat)
			if err != nil {
				return fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer Replace: regex %q is not supported: %w", pat, err)
			}
			n.re = re
		} else {
			return fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer Replace: empty pattern")
		}
		u.normalizers = append(u.normalizers, n)
	case "Precompiled":
		pc, err := parsePrecompiled(st.PrecompiledCharsmap)
		if err != nil {
			return err
		}
		u.normalizers = append(u.normalizers, unigramNormalizer{kind: "precompiled", pc: pc})
	case "Prepend":
		u.normalizers = append(u.normalizers, unigramNormalizer{kind: "prepend", to: st.Prepend})
	case "NFC", "NFD", "NFKC", "NFKD", "Lowercase":
		u.normalizers = append(u.normalizers, unigramNormalizer{kind: strings.ToLower(st.Type)})
	case "Strip":
		u.normalizers = append(u.normalizers, unigramNormalizer{kind: "strip", left: st.StripLeft, right: st.StripRight})
	default:
		return fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer %q is not supported", st.Type)
	}
	return nil
}

func (u *Unigram) parsePreTokenizer(raw json.RawMessage) error {
	if isJSONNull(raw) {
		return nil
	}
	var st unigramStep
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("tokenizer: unigram tokenizer.json: pre_tokenizer: %w", err)
	}
	switch st.Type {
	case "Sequence":
		for _, child := range st.PreTokenizers {
			if err := u.parsePreTokenizer(child); err != nil {
				return err
			}
		}
	case "Metaspace":
		if u.meta != nil {
			return fmt.Errorf("tokenizer: unigram tokenizer.json: pre_tokenizer: more than one Metaspace")
		}
		m := &unigramMetaspace{replacement: st.Replacement, prepend: st.PrependScheme, split: true}
		if m.replacement == "" {
			m.replacement = "\u2581"
		}
		if utf8.RuneCountInString(m.replacement) != 1 {
			return fmt.Errorf("tokenizer: unigram tokenizer.json: pre_tokenizer Metaspace: replacement %q is not one character", m.replacement)
		}
		if m.prepend == "" {
			m.prepend = "always"
			if st.AddPrefixSpace != nil && !*st.AddPrefixSpace {
				m.prepend = "never"
			}
		}
		if m.prepend != "always" && m.prepend != "first" && m.prepend != "never" {
			return fmt.Errorf("tokenizer: unigram tokenizer.json: pre_tokenizer Metaspace: prepend_scheme %q is not supported", m.prepend)
		}
		if st.Split != nil {
			m.split = *st.Split
		}
		u.meta = m
	default:
		return fmt.Errorf("tokenizer: unigram tokenizer.json: pre_tokenizer %q is not supported", st.Type)
	}
	return nil
}

// VocabSize returns the number of pieces.
func (u *Unigram) VocabSize() int { return len(u.scores) }

// TokenID returns the id of a piece or added token, and whether it exists.
func (u *Unigram) TokenID(piece string) (int32, bool) {
	for _, a := range u.added {
		if a.content == piece {
			return a.id, true
		}
	}
	id, ok := u.pieces[piece]
	return id, ok
}

// Encode returns the token ids of text without special tokens added around it (added tokens that occur in the
// text, e.g. a literal "[SEP]", are still recognized, as Hugging Face tokenizers does).
//
// Invalid UTF-8 is first replaced by U+FFFD, as the conversion into a Rust string does.
func (u *Unigram) Encode(text string) []int32 {
	text = strings.ToValidUTF8(text, "\uFFFD")
	var ids []int32
	first := true
	for len(text) > 0 {
		pos, a := u.findAdded(text)
		if a == nil {
			ids = u.encodeSegment(ids, text, first)
			break
		}
		seg := text[:pos]
		rest := text[pos+len(a.content):]
		if a.lstrip {
			seg = strings.TrimRight(seg, " \t\n\r\f\v")
		}
		if a.rstrip {
			rest = strings.TrimLeft(rest, " \t\n\r\f\v")
		}
		if seg != "" {
			ids = u.encodeSegment(ids, seg, first)
		}
		ids = append(ids, a.id)
		first = false
		text = rest
	}
	return ids
}

// findAdded returns the leftmost added token in text (the longest at that position) and its byte offset.
func (u *Unigram) findAdded(text string) (int, *unigramAdded) {
	best, bestPos := -1, len(text)
	for i := range u.added {
		if p := strings.Index(text, u.added[i].content); p >= 0 && p < bestPos {
			best, bestPos = i, p
		}
	}
	if best < 0 {
		return 0, nil
	}
	return bestPos, &u.added[best]
}

// encodeSegment normalizes, pre-tokenizes and segments text that holds no added token, appending to ids.
func (u *Unigram) encodeSegment(ids []int32, text string, first bool) []int32 {
	text = u.normalize(text)
	if text == "" {
		return ids
	}
	m := u.meta
	if m == nil {
		return u.viterbi(ids, text)
	}
	text = strings.ReplaceAll(text, " ", m.replacement)
	if (m.prepend == "always" || (m.prepend == "first" && first)) && !strings.HasPrefix(text, m.replacement) {
		text = m.replacement + text
	}
	if !m.split {
		return u.viterbi(ids, text)
	}
	// Split before each replacement character (it stays at the start of the next word).
	for start := 0; start < len(text); {
		end := len(text)
		if next := strings.Index(text[start+1:], m.replacement); next >= 0 {
			end = start + 1 + next
		}
		ids = u.viterbi(ids, text[start:end])
		start = end
	}
	return ids
}

func (u *Unigram) normalize(s string) string {
	for _, n := range u.normalizers {
		switch n.kind {
		case "replace":
			if n.re != nil {
				s = n.re.ReplaceAllLiteralString(s, n.to)
			} else {
				s = strings.ReplaceAll(s, n.from, n.to)
			}
		case "precompiled":
			s = n.pc.normalize(s)
		case "prepend":
			if s != "" {
				s = n.to + s
			}
		case "nfc":
			s = norm.NFC.String(s)
		case "nfd":
			s = norm.NFD.String(s)
		case "nfkc":
			s = norm.NFKC.String(s)
		case "nfkd":
			s = norm.NFKD.String(s)
		case "lowercase":
			s = strings.ToLower(s)
		case "strip":
			if n.left {
				s = strings.TrimLeftFunc(s, isUnigramSpace)
			}
			if n.right {
				s = strings.TrimRightFunc(s, isUnigramSpace)
			}
		}
	}
	return s
}

func isUnigramSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == 0x85 || r == 0xA0 ||
		r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 || r == 0x202F || r == 0x205F ||
		r == 0x3000
}

// unigramNode is the best path ending at a byte position.
type unigramNode struct {
	score float64
	start int   // start of the last piece; -1: unreached
	id    int32 // id of the last piece
}

// viterbi appends the highest-scoring segmentation of word into pieces (Hugging Face's Unigram::encode).
func (u *Unigram) viterbi(ids []int32, word string) []int32 {
	n := len(word)
	best := make([]unigramNode, n+1)
	for i := range best {
		best[i].start = -1
	}
	best[0] = unigramNode{start: 0, id: -1}
	for start := 0; start < n; start++ {
		if best[start].start < 0 || !utf8.RuneStart(word[start]) {
			continue
		}
		_, charLen := utf8.DecodeRuneInString(word[start:])
		base := best[start].score
		single := false
		for end := start + 1; end <= n && end-start <= u.maxPieceLen; end++ {
			if end < n && !utf8.RuneStart(word[end]) {
				continue
			}
			id, ok := u.pieces[word[start:end]]
			if !ok {
				continue
			}
			cand := base + u.scores[id]
			if t := &best[end]; t.start < 0 || cand > t.score {
				*t = unigramNode{score: cand, start: start, id: id}
			}
			if end-start == charLen {
				single = true
			}
		}
		if !single {
			cand := base + u.unkScore
			if t := &best[start+charLen]; t.start < 0 || cand > t.score {
				*t = unigramNode{score: cand, start: start, id: u.unkID}
			}
		}
	}
	// Backtrack, fusing runs of unknown characters into one piece.
	type span struct{ start, end int }
	var spans []span
	unkEnd := -1
	for end := n; end > 0; {
		node := best[end]
		if node.id == u.unkID && u.unkID >= 0 || node.id < 0 {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				spans = append(spans, span{end, unkEnd})
				unkEnd = -1
			}
			spans = append(spans, span{node.start, end})
		}
		end = node.start
	}
	if unkEnd >= 0 {
		spans = append(spans, span{0, unkEnd})
	}
	for i := len(spans) - 1; i >= 0; i-- {
		piece := word[spans[i].start:spans[i].end]
		if id, ok := u.pieces[piece]; ok {
			ids = append(ids, id)
			continue
		}
		ids = u.unknown(ids, piece)
	}
	return ids
}

// unknown appends the ids for a piece outside the vocabulary: its bytes as <0xXX> pieces when byte_fallback is on
// and all exist, else the unknown token (dropped if the model has none).
func (u *Unigram) unknown(ids []int32, piece string) []int32 {
	if u.byteFallback {
		ok := true
		for i := 0; i < len(piece); i++ {
			if u.byteIDs[piece[i]] < 0 {
				ok = false
				break
			}
		}
		if ok {
			for i := 0; i < len(piece); i++ {
				ids = append(ids, u.byteIDs[piece[i]])
			}
			return ids
		}
	}
	if u.unkID >= 0 {
		ids = append(ids, u.unkID)
	}
	return ids
}

// precompiledCharsmap is SentencePiece's compiled normalization (e.g. nmt_nfkc): a darts-clone double-array trie
// over UTF-8 byte strings whose values index NUL-terminated replacements.
type precompiledCharsmap struct {
	units      []uint32
	normalized []byte
}

// parsePrecompiled reads a base64 precompiled_charsmap: a little-endian uint32 trie size in bytes, the trie's
// uint32 units, then the replacement strings.
func parsePrecompiled(b64 string) (*precompiledCharsmap, error) {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer Precompiled: %w", err)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer Precompiled: charsmap of %d bytes", len(data))
	}
	size := binary.LittleEndian.Uint32(data)
	if size%4 != 0 || uint64(size) > uint64(len(data)-4) || size == 0 {
		return nil, fmt.Errorf("tokenizer: unigram tokenizer.json: normalizer Precompiled: trie size %d for %d bytes", size, len(data))
	}
	pc := &precompiledCharsmap{units: make([]uint32, size/4), normalized: data[4+size:]}
	for i := range pc.units {
		pc.units[i] = binary.LittleEndian.Uint32(data[4+4*i:])
	}
	return pc, nil
}

// firstMatch returns the value of the shortest key in the trie that is a prefix of s (darts-clone's
// commonPrefixSearch, first result), and whether there is one. Out-of-range trie offsets mean no match.
func (pc *precompiledCharsmap) firstMatch(s string) (uint32, bool) {
	offset := func(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }
	units := pc.units
	pos := offset(units[0])
	for i := 0; i < len(s); i++ {
		c := uint32(s[i])
		pos ^= c
		if pos >= uint32(len(units)) {
			return 0, false
		}
		u := units[pos]
		if u&((1<<31)|0xFF) != c { // label
			return 0, false
		}
		pos ^= offset(u)
		if (u>>8)&1 == 1 { // has leaf
			if pos >= uint32(len(units)) {
				return 0, false
			}
			return units[pos] & (1<<31 - 1), true
		}
	}
	return 0, false
}

// transform returns the replacement for chunk when one of its prefixes is in the charsmap (Hugging Face's
// spm_precompiled: the whole chunk is replaced by the shortest match's string).
func (pc *precompiledCharsmap) transform(chunk string) (string, bool) {
	v, ok := pc.firstMatch(chunk)
	if !ok || int(v) >= len(pc.normalized) {
		return "", false
	}
	rest := pc.normalized[v:]
	if end := bytes.IndexByte(rest, 0); end >= 0 {
		rest = rest[:end]
	}
	return string(rest), true
}

// normalize applies the charsmap as Hugging Face's Precompiled normalizer does: per grapheme cluster shorter
// than 6 bytes, else per character.
func (pc *precompiledCharsmap) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		g := graphemeLen(s)
		if g < 6 {
			if r, ok := pc.transform(s[:g]); ok {
				b.WriteString(r)
				s = s[g:]
				continue
			}
		}
		for end := len(s) - g; len(s) > end; {
			_, n := utf8.DecodeRuneInString(s)
			if r, ok := pc.transform(s[:n]); ok {
				b.WriteString(r)
			} else {
				b.WriteString(s[:n])
			}
			s = s[n:]
		}
	}
	return b.String()
}

// graphemeLen returns the byte length of the extended grapheme cluster at the start of s, following the UAX #29
// rules that matter for normalization: CR LF; a character followed by marks (Extend, SpacingMark), variation
// selectors, emoji modifiers and ZWJ-joined characters; regional-indicator pairs. (Hangul jamo sequences and
// Prepend characters are not joined.)
func graphemeLen(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	if r == '\r' && len(s) > 1 && s[1] == '\n' {
		return 2
	}
	if r == '\r' || r == '\n' || unicode.IsControl(r) {
		return n
	}
	if isRegionalIndicator(r) {
		if r2, n2 := utf8.DecodeRuneInString(s[n:]); isRegionalIndicator(r2) {
			n += n2
		}
	}
	for n < len(s) {
		r2, n2 := utf8.DecodeRuneInString(s[n:])
		switch {
		case unicode.IsMark(r2), r2 >= 0x1F3FB && r2 <= 0x1F3FF, r2 >= 0xE0020 && r2 <= 0xE007F:
			n += n2
		case r2 == 0x200D: // ZWJ joins the next character too
			n += n2
			if n < len(s) {
				_, n3 := utf8.DecodeRuneInString(s[n:])
				n += n3
			}
		default:
			return n
		}
	}
	return n
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }
