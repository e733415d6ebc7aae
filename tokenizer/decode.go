package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// buildDecoded computes each token's output text, as llama.cpp's token_to_piece with special=false: control
// and unknown tokens print nothing, user-defined tokens print their text, byte tokens their byte, normal tokens
// their text with U+2581 turned back into spaces (SentencePiece, WordPiece) or GPT-2 byte runes turned back into
// bytes (byte-level BPE).
func (t *Tokenizer) buildDecoded() {
	t.decoded = make([]string, len(t.pieces))
	for id, p := range t.pieces {
		a := t.attrs[id]
		switch {
		case a&(attrUnknown|attrControl) != 0:
		case a&attrUserDefined != 0:
			t.decoded[id] = p
		case a&attrNormal != 0:
			switch {
			case t.kind == kindBPE && t.byteLevel != nil:
				t.decoded[id] = string(t.byteLevel.decode(nil, p))
			default:
				t.decoded[id] = strings.ReplaceAll(p, spaceMarker, " ")
			}
		case a&attrByte != 0:
			if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
				if v, err := strconv.ParseUint(p[3:5], 16, 8); err == nil {
					t.decoded[id] = string([]byte{byte(v)})
				}
			} else if t.byteLevel != nil {
				t.decoded[id] = string(t.byteLevel.decode(nil, p))
			}
		}
	}
}

// piece returns the output text of id, with the leading space removed when first is set and the vocabulary
// adds a space prefix when encoding (SentencePiece's leading-space rule). prints is false when the token prints
// nothing at all (control tokens), so the rule still applies to the next token.
func (t *Tokenizer) piece(id int32, first bool) (p string, prints bool) {
	if id < 0 || int(id) >= len(t.decoded) || t.decoded[id] == "" {
		return "", false
	}
	p = t.decoded[id]
	if first && t.addSpacePrefix && p[0] == ' ' {
		p = p[1:]
	}
	return p, true
}

// Decode turns ids into text. Control and unknown tokens (BOS, EOS, <unk>, ...) print nothing; ids outside the
// vocabulary are skipped. For SentencePiece vocabularies with a space prefix, the leading space of the first
// token that prints text is removed, so Decode(Encode(s, ...)) == s. Byte sequences that are not valid UTF-8
// become U+FFFD, one per byte, exactly as a Decoder fed the same ids would print them.
func (t *Tokenizer) Decode(ids []int32) string {
	var b []byte
	first := true
	for _, id := range ids {
		p, ok := t.piece(id, first)
		if ok {
			first = false
		}
		b = append(b, p...)
	}
	out, _ := appendValid(nil, b, false)
	return string(out)
}

// appendValid appends the valid UTF-8 of b to dst with each invalid byte replaced by U+FFFD. When holdTail is
// set, a trailing incomplete sequence that later bytes could complete is not consumed but returned as rest.
func appendValid(dst, b []byte, holdTail bool) (out, rest []byte) {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if holdTail && !utf8.FullRune(b[i:]) {
				return dst, b[i:]
			}
			dst = append(dst, "\uFFFD"...)
			i++
			continue
		}
		dst = append(dst, b[i:i+n]...)
		i += n
	}
	return dst, nil
}

// Decoder turns a stream of ids into text, one id at a time, never splitting a UTF-8 sequence: bytes of a
// character spread over several byte-fallback tokens are held until the character is complete. Use one Decoder
// per sequence; it is not safe for concurrent use.
type Decoder struct {
	t       *Tokenizer
	started bool
	pending []byte
	buf     []byte
}

// NewDecoder returns a streaming decoder for the ids that continue prompt (nil for a sequence of its own). What
// it returns is exactly what Decode(prompt + ids) adds after Decode(prompt): SentencePiece's leading space is
// removed only from the first token that prints text of the whole sequence, so a continuation of a prompt that
// prints text keeps it (llama2.c removes it right after BOS alone).
func (t *Tokenizer) NewDecoder(prompt []int32) *Decoder {
	d := &Decoder{t: t}
	for _, id := range prompt {
		if _, prints := t.piece(id, true); prints {
			d.started = true
			break
		}
	}
	return d
}

// Next returns the text that id completes (possibly ""). It allocates only when the text has to be assembled
// from pending bytes.
func (d *Decoder) Next(id int32) string {
	p, ok := d.t.piece(id, !d.started)
	if !ok {
		return ""
	}
	d.started = true
	if p == "" {
		return ""
	}
	if len(d.pending) == 0 && utf8.ValidString(p) {
		return p
	}
	d.pending = append(d.pending, p...)
	var rest []byte
	d.buf, rest = appendValid(d.buf[:0], d.pending, true)
	d.pending = append(d.pending[:0], rest...)
	return string(d.buf)
}

// Flush returns what is still held (an incomplete UTF-8 sequence, as U+FFFD per byte) and resets the pending
// bytes; the decoder stays usable for the same sequence.
func (d *Decoder) Flush() string {
	if len(d.pending) == 0 {
		return ""
	}
	d.buf, _ = appendValid(d.buf[:0], d.pending, false)
	d.pending = d.pending[:0]
	return string(d.buf)
}
