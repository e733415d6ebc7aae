package chat

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Part is a piece of a rendered prompt. Special parts are the template's own text, whose control tokens written
// as text ("<s>", "<|im_start|>") are meant as such; the other parts are text of the messages that reads like a
// control token and must be tokenized as plain text, so that a user cannot inject one.
type Part struct {
	Text    string
	Special bool
}

// Markers stand in for control-token text of message contents while the template renders: markOpen, the index
// of the original text, markClose. Both are private-use characters, and markOpen in a content is itself
// replaced by a marker, so every markOpen in the output that starts a well-formed marker comes from a content.
const (
	markOpen  = '\uE000'
	markClose = '\uE001'
)

// RenderParts renders msgs with t and splits the output into the template's text (Special) and the
// occurrences, inside message contents, of any of controlTexts (the tokenizer's control-token texts; not
// Special). The parts concatenate to what t.Render(msgs) returns. It works with any template, Jinja ones
// included, as long as the template copies contents through (trimming or case changes keep working): each
// occurrence is replaced by a marker before rendering and restored after.
func RenderParts(t Template, msgs []Message, controlTexts []string) ([]Part, error) {
	var originals []string
	defused, copied := msgs, false
	for i, m := range msgs {
		c, changed := defuse(m.Content, controlTexts, &originals)
		if !changed {
			continue
		}
		if !copied {
			defused, copied = append([]Message(nil), msgs...), true
		}
		defused[i].Content = c
	}
	out, err := t.Render(defused)
	if err != nil {
		return nil, err
	}
	var parts []Part
	add := func(text string, special bool) {
		if text == "" {
			return
		}
		if n := len(parts); n > 0 && parts[n-1].Special == special {
			parts[n-1].Text += text
			return
		}
		parts = append(parts, Part{Text: text, Special: special})
	}
	for len(originals) > 0 {
		i := strings.IndexRune(out, markOpen)
		if i < 0 {
			break
		}
		idx, n, ok := parseMarker(out[i:], len(originals))
		if !ok {
			add(out[:i+utf8.RuneLen(markOpen)], true)
			out = out[i+utf8.RuneLen(markOpen):]
			continue
		}
		add(out[:i], true)
		add(originals[idx], false)
		out = out[i+n:]
	}
	add(out, true)
	return parts, nil
}

// defuse replaces each occurrence in s of a control text (longest first at each position) or of markOpen by a
// marker holding its index in originals, to which it is appended.
func defuse(s string, controlTexts []string, originals *[]string) (string, bool) {
	hit := strings.ContainsRune(s, markOpen)
	for _, c := range controlTexts {
		if hit {
			break
		}
		hit = c != "" && strings.Contains(s, c)
	}
	if !hit {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		match := ""
		if r, _ := utf8.DecodeRuneInString(s[i:]); r == markOpen {
			match = string(markOpen)
		}
		for _, c := range controlTexts {
			if len(c) > len(match) && strings.HasPrefix(s[i:], c) {
				match = c
			}
		}
		if match == "" {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteRune(markOpen)
		b.WriteString(strconv.Itoa(len(*originals)))
		b.WriteRune(markClose)
		*originals = append(*originals, match)
		i += len(match)
	}
	return b.String(), true
}

// parseMarker reads a marker at the start of s: its index (< n) and its length in bytes.
func parseMarker(s string, n int) (idx, size int, ok bool) {
	rest := s[utf8.RuneLen(markOpen):]
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		return 0, 0, false
	}
	r, rl := utf8.DecodeRuneInString(rest[digits:])
	if r != markClose {
		return 0, 0, false
	}
	idx, err := strconv.Atoi(rest[:digits])
	if err != nil || idx >= n {
		return 0, 0, false
	}
	return idx, utf8.RuneLen(markOpen) + digits + rl, true
}
