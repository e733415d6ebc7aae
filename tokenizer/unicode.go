package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// cptFlags mirrors llama.cpp's unicode_cpt_flags: one general-category bit (as Python's `regex` module assigns
// them, with unassigned code points counted as \p{C}) plus the \s whitespace bit.
type cptFlags uint16

const (
	flagNumber      cptFlags = 1 << 1 // \p{N}
	flagLetter      cptFlags = 1 << 2 // \p{L}
	flagSeparator   cptFlags = 1 << 3 // \p{Z}
	flagAccentMark  cptFlags = 1 << 4 // \p{M}
	flagPunctuation cptFlags = 1 << 5 // \p{P}
	flagSymbol      cptFlags = 1 << 6 // \p{S}
	flagControl     cptFlags = 1 << 7 // \p{C}
	flagWhitespace  cptFlags = 1 << 8 // \s (Unicode White_Space)
)

// outOfRange is the code point value llama.cpp's splitters use past the end of a fragment; its flags are zero.
const outOfRange = rune(-1)

// flagsOf returns the flags of r; a rune outside Unicode (or outOfRange) has no flags at all.
func flagsOf(r rune) cptFlags {
	if r < 0 || r > unicode.MaxRune {
		return 0
	}
	if r < 0x80 {
		return asciiFlagsOf(r)
	}
	return flagsOfSlow(r)
}

// asciiFlagsOf is flagsOfSlow for r < 0x80, without table lookups.
func asciiFlagsOf(r rune) cptFlags {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return flagLetter
	case r >= '0' && r <= '9':
		return flagNumber
	case r == ' ':
		return flagSeparator | flagWhitespace
	case r >= '\t' && r <= '\r':
		return flagControl | flagWhitespace
	case r < 0x20 || r == 0x7F:
		return flagControl
	case r == '$' || r == '+' || r == '<' || r == '=' || r == '>' || r == '^' || r == '`' || r == '|' || r == '~':
		return flagSymbol
	default:
		return flagPunctuation
	}
}

func flagsOfSlow(r rune) cptFlags {
	var f cptFlags
	switch {
	case unicode.IsLetter(r):
		f = flagLetter
	case unicode.IsNumber(r):
		f = flagNumber
	case unicode.IsMark(r):
		f = flagAccentMark
	case unicode.IsPunct(r):
		f = flagPunctuation
	case unicode.IsSymbol(r):
		f = flagSymbol
	case unicode.Is(unicode.Z, r):
		f = flagSeparator
	default:
		f = flagControl // Cc, Cf, Co, Cs and unassigned (Cn)
	}
	if unicode.Is(unicode.White_Space, r) {
		f |= flagWhitespace
	}
	return f
}

// utf8SeqLen is llama.cpp's unicode_len_utf8: the sequence length announced by a lead byte (1 for a stray
// continuation byte).
func utf8SeqLen(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

// byteLevel is GPT-2's reversible byte <-> printable-rune map.
type byteLevel struct {
	enc [256]string  // byte -> UTF-8 of its printable rune
	dec map[rune]int // printable rune -> byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{dec: make(map[rune]int, 256)}
	var r [256]rune
	var have [256]bool
	for c := 0; c < 256; c++ {
		if (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF) {
			r[c], have[c] = rune(c), true
		}
	}
	n := 0
	for c := 0; c < 256; c++ {
		if !have[c] {
			r[c] = rune(256 + n)
			n++
		}
	}
	for c := 0; c < 256; c++ {
		bl.enc[c] = string(r[c])
		bl.dec[r[c]] = c
	}
	return bl
}

// encode appends the byte-level form of s to dst.
func (bl *byteLevel) encode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, bl.enc[s[i]]...)
	}
	return dst
}

// decode appends the bytes that the byte-level text s stands for; a rune outside the map is copied as UTF-8.
func (bl *byteLevel) decode(dst []byte, s string) []byte {
	for _, r := range s {
		if b, ok := bl.dec[r]; ok {
			dst = append(dst, byte(b))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
