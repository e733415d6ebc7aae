package tokenizer

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// encodeWPM appends the WordPiece ids of text, matching llama.cpp's llm_tokenizer_wpm_session: BERT-style
// normalization and splitting, then greedy longest-match per word with a U+2581 phantom space in front (GGUF
// BERT vocabularies store "##x" continuation pieces as "x" and word starts as "▁x").
func (t *Tokenizer) encodeWPM(text string, out []int32) []int32 {
	for _, word := range t.wpmWords(text) {
		w := spaceMarker + word
		n := len(w)
		before := len(out)
		for i := 0; i < n; i++ {
			match := false
			for j := min(n, i+t.maxTokenLen+1); j > i; j-- {
				if id, ok := t.ids[w[i:j]]; ok {
					out = append(out, id)
					match = true
					i = j - 1
					break
				}
			}
			if !match {
				out = out[:before]
				break
			}
		}
		if len(out) == before && t.unk != noToken {
			out = append(out, t.unk)
		}
	}
	return out
}

// wpmWords is llama.cpp's WPM preprocess: optional accent stripping (first code point of the NFD form, marks
// dropped), lowercasing, whitespace splitting, control characters dropped, and punctuation, ASCII symbols and
// CJK ideographs as words of their own.
func (t *Tokenizer) wpmWords(text string) []string {
	var words []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	for _, r := range text {
		if t.stripAccents && r >= 0x80 {
			d := norm.NFD.String(string(r))
			r, _ = utf8.DecodeRuneInString(d)
		}
		f := flagsOf(r)
		if f&flagWhitespace != 0 {
			flush()
			continue
		}
		if r == 0 || r == utf8.RuneError || f&flagControl != 0 {
			continue
		}
		if t.stripAccents && f&flagAccentMark != 0 {
			continue
		}
		s := r
		if t.lowercase {
			s = unicode.ToLower(r)
		}
		if f&flagPunctuation != 0 || (r < 0x7F && f&flagSymbol != 0) || isChineseChar(r) {
			flush()
			words = append(words, string(s))
			continue
		}
		cur = utf8.AppendRune(cur, s)
	}
	flush()
	return words
}

func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0x0F900 && r <= 0x0FAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
