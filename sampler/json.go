package sampler

import "math"

// JSON mode: a pushdown automaton over bytes that accepts one JSON object (RFC 8259), used to mask every token
// whose text would make the output invalid. It is the constraint of OpenAI's response_format
// {"type":"json_object"} and Ollama's format "json" (whose grammar's root is an object too).

// Limits of the JSON constraint, which keep a small model from looping forever in white space or nesting.
const (
	// MaxJSONDepth is the deepest nesting of objects and arrays JSON mode allows.
	MaxJSONDepth = 32
	// MaxJSONSpace bounds the white space between JSON tokens, as llama.cpp's JSON grammar does
	// (ws ::= | " " | "\n" [ \t]{0,20}): none, one space, or a newline and at most MaxJSONSpace spaces or tabs.
	MaxJSONSpace = 20
)

// JSONVocab is what JSON-constrained sampling needs of a vocabulary: the output bytes of every token (as the
// streaming decoder prints them: spaces, raw bytes of byte tokens, nothing for control tokens) and which ids
// end generation. Build it once per vocabulary with NewJSONVocab; it is read-only and shared by samplers.
type JSONVocab struct {
	pieces [][]byte
	eog    []int32
	// plain marks the tokens made only of printable ASCII other than '"' and '\\': inside a string (after no
	// escape or partial character) they are valid without trying their bytes, which is most tokens there.
	plain []bool
}

// NewJSONVocab builds the table from each token's output text and the end-of-generation test.
func NewJSONVocab(pieces []string, isEOG func(id int32) bool) *JSONVocab {
	v := &JSONVocab{pieces: make([][]byte, len(pieces)), plain: make([]bool, len(pieces))}
	for id, p := range pieces {
		v.pieces[id] = []byte(p)
		v.plain[id] = p != ""
		for i := 0; i < len(p); i++ {
			if c := p[i]; c < 0x20 || c >= 0x7F || c == '"' || c == '\\' {
				v.plain[id] = false
			}
		}
		if isEOG(int32(id)) {
			v.eog = append(v.eog, int32(id))
		}
	}
	return v
}

// jsonMode is what the automaton expects next.
type jsonMode uint8

const (
	jStart   jsonMode = iota // before the object: white space or '{'
	jObjOpen                 // after '{': white space, a key or '}'
	jObjKey                  // after ',' in an object: white space or a key
	jColon                   // after a key: white space or ':'
	jValue                   // after ':' or ',' in an array: white space or a value
	jArrOpen                 // after '[': white space, a value or ']'
	jAfter                   // after a value in a container: white space, ',' or the closer
	jString                  // inside a string
	jNumber                  // inside a number (see num)
	jLiteral                 // inside true, false or null
	jDone                    // the object is closed: only an end-of-generation token
)

// Number states: where in -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? the automaton is.
const (
	nMinus     uint8 = iota // after '-'
	nZero                   // after a leading 0 (accepting)
	nInt                    // in the integer digits (accepting)
	nDot                    // after '.'
	nFrac                   // in the fraction digits (accepting)
	nExp                    // after 'e' or 'E'
	nExpSign                // after the exponent's sign
	nExpDigits              // in the exponent digits (accepting)
)

var jsonLiterals = [...]string{"true", "false", "null"}

// spaceClosed marks a white space run that was a single space: no more white space may follow.
const spaceClosed = 255

// jsonState is the automaton's state; it is a value, copied to try a token.
type jsonState struct {
	stack    [MaxJSONDepth]byte // '{' or '[' of the open containers
	depth    uint8
	mode     jsonMode
	key      bool  // the string is an object key
	esc      bool  // after a backslash in a string
	hex      uint8 // hex digits of a \u escape still to come
	need     uint8 // UTF-8 continuation bytes still to come
	lo, hi   byte  // range of the next continuation byte
	num      uint8 // number state
	lit, pos uint8 // literal index and position
	space    uint8 // the white space run: 0 none, spaceClosed after a lone space, else 1 + indentation after '\n'

}

// step consumes one byte; false means the byte makes the text invalid (the state is then undefined).
func (s *jsonState) step(b byte) bool {
	switch s.mode {
	case jString:
		return s.stringByte(b)
	case jNumber:
		if s.numberByte(b) {
			return true
		}
		if s.num != nZero && s.num != nInt && s.num != nFrac && s.num != nExpDigits {
			return false
		}
		s.afterValue() // the number ended just before b
		return s.step(b)
	case jLiteral:
		lit := jsonLiterals[s.lit]
		if b != lit[s.pos] {
			return false
		}
		if s.pos++; int(s.pos) == len(lit) {
			s.afterValue()
		}
		return true
	case jDone:
		return false
	}
	if b == ' ' || b == '\t' || b == '\n' || b == '\r' {
		switch {
		case s.space == 0 && b == ' ':
			s.space = spaceClosed
		case s.space == 0 && b == '\n':
			s.space = 1
		case s.space == 0 || s.space == spaceClosed || b == '\n' || b == '\r' || s.space > MaxJSONSpace:
			return false
		default: // indentation after the newline
			s.space++
		}
		return true
	}
	s.space = 0
	switch s.mode {
	case jStart:
		return b == '{' && s.push('{', jObjOpen)
	case jObjOpen, jObjKey:
		switch {
		case b == '"':
			s.mode, s.key = jString, true
			return true
		case b == '}' && s.mode == jObjOpen:
			return s.pop('{')
		}
		return false
	case jColon:
		if b == ':' {
			s.mode = jValue
			return true
		}
		return false
	case jArrOpen:
		if b == ']' {
			return s.pop('[')
		}
		return s.value(b)
	case jValue:
		return s.value(b)
	case jAfter:
		top := s.stack[s.depth-1]
		switch {
		case b == ',' && top == '{':
			s.mode = jObjKey
			return true
		case b == ',':
			s.mode = jValue
			return true
		case b == '}' && top == '{':
			return s.pop('{')
		case b == ']' && top == '[':
			return s.pop('[')
		}
	}
	return false
}

// value starts a value with b.
func (s *jsonState) value(b byte) bool {
	switch {
	case b == '{':
		return s.push('{', jObjOpen)
	case b == '[':
		return s.push('[', jArrOpen)
	case b == '"':
		s.mode, s.key = jString, false
		return true
	case b == '-':
		s.mode, s.num = jNumber, nMinus
		return true
	case b == '0':
		s.mode, s.num = jNumber, nZero
		return true
	case b >= '1' && b <= '9':
		s.mode, s.num = jNumber, nInt
		return true
	}
	for i, lit := range jsonLiterals {
		if b == lit[0] {
			s.mode, s.lit, s.pos = jLiteral, uint8(i), 1
			return true
		}
	}
	return false
}

func (s *jsonState) push(c byte, mode jsonMode) bool {
	if s.depth == MaxJSONDepth {
		return false
	}
	s.stack[s.depth] = c
	s.depth++
	s.mode = mode
	return true
}

// pop closes the innermost container, which must be c.
func (s *jsonState) pop(c byte) bool {
	if s.depth == 0 || s.stack[s.depth-1] != c {
		return false
	}
	s.depth--
	s.afterValue()
	return true
}

// afterValue moves past a finished value: to the container's next separator, or to the end.
func (s *jsonState) afterValue() {
	s.space = 0
	if s.depth == 0 {
		s.mode = jDone
	} else {
		s.mode = jAfter
	}
}

func (s *jsonState) stringByte(b byte) bool {
	switch {
	case s.need > 0:
		if b < s.lo || b > s.hi {
			return false
		}
		s.need--
		s.lo, s.hi = 0x80, 0xBF
		return true
	case s.hex > 0:
		if !isHex(b) {
			return false
		}
		s.hex--
		return true
	case s.esc:
		s.esc = false
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			return true
		case 'u':
			s.hex = 4
			return true
		}
		return false
	case b == '"':
		if s.key {
			s.mode = jColon
		} else {
			s.afterValue()
		}
		return true
	case b == '\\':
		s.esc = true
		return true
	case b < 0x20:
		return false
	case b < 0x80:
		return true
	}
	// The lead byte of a multi-byte character: the ranges of well-formed UTF-8 (Unicode table 3-7).
	s.lo, s.hi = 0x80, 0xBF
	switch {
	case b >= 0xC2 && b <= 0xDF:
		s.need = 1
	case b == 0xE0:
		s.need, s.lo = 2, 0xA0
	case b >= 0xE1 && b <= 0xEC, b == 0xEE, b == 0xEF:
		s.need = 2
	case b == 0xED:
		s.need, s.hi = 2, 0x9F
	case b == 0xF0:
		s.need, s.lo = 3, 0x90
	case b >= 0xF1 && b <= 0xF3:
		s.need = 3
	case b == 0xF4:
		s.need, s.hi = 3, 0x8F
	default:
		return false
	}
	return true
}

func (s *jsonState) numberByte(b byte) bool {
	digit := b >= '0' && b <= '9'
	switch s.num {
	case nMinus:
		switch {
		case b == '0':
			s.num = nZero
		case digit:
			s.num = nInt
		default:
			return false
		}
	case nZero, nInt:
		switch {
		case digit && s.num == nInt:
		case b == '.':
			s.num = nDot
		case b == 'e' || b == 'E':
			s.num = nExp
		default:
			return false
		}
	case nDot:
		if !digit {
			return false
		}
		s.num = nFrac
	case nFrac:
		switch {
		case digit:
		case b == 'e' || b == 'E':
			s.num = nExp
		default:
			return false
		}
	case nExp:
		switch {
		case b == '+' || b == '-':
			s.num = nExpSign
		case digit:
			s.num = nExpDigits
		default:
			return false
		}
	case nExpSign, nExpDigits:
		if !digit {
			return false
		}
		s.num = nExpDigits
	}
	return true
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// jsonConstraint is one sequence's JSON state over a shared vocabulary table.
type jsonConstraint struct {
	vocab     *JSONVocab
	state     jsonState
	eogLogits []float32 // (len(vocab.eog)) saved before masking, for the fallback
	firstOK   [256]bool // which first bytes the state allows, recomputed by mask
}

func newJSONConstraint(v *JSONVocab) *jsonConstraint {
	return &jsonConstraint{vocab: v, eogLogits: make([]float32, len(v.eog))}
}

// allows reports whether token id may come next. inString says the state is inside a string with no escape
// or partial character pending, where plain tokens are valid as they are; firstOK must be current.
func (c *jsonConstraint) allows(id int, inString bool) bool {
	if id >= len(c.vocab.pieces) {
		return false
	}
	if inString && c.vocab.plain[id] {
		return true
	}
	piece := c.vocab.pieces[id]
	if len(piece) == 0 { // prints nothing: only an end-of-generation token, once the object is closed
		if c.state.mode != jDone {
			return false
		}
		for _, e := range c.vocab.eog {
			if int(e) == id {
				return true
			}
		}
		return false
	}
	if !c.firstOK[piece[0]] {
		return false
	}
	st := c.state
	for _, b := range piece {
		if !st.step(b) {
			return false
		}
	}
	return true
}

// mask sets to -Inf the logits of the tokens that may not come next. Should no token be left (a vocabulary
// without the bytes the grammar needs), the end-of-generation tokens are allowed, so the sequence ends.
func (c *jsonConstraint) mask(work []float32) {
	for i, id := range c.vocab.eog {
		c.eogLogits[i] = work[id]
	}
	for b := range c.firstOK {
		st := c.state
		c.firstOK[b] = st.step(byte(b))
	}
	st := &c.state
	inString := st.mode == jString && !st.esc && st.hex == 0 && st.need == 0
	ninf := float32(math.Inf(-1))
	left := false
	for id, v := range work {
		if v == ninf {
			continue
		}
		if c.allows(id, inString) {
			left = true
		} else {
			work[id] = ninf
		}
	}
	if !left {
		for i, id := range c.vocab.eog {
			work[id] = c.eogLogits[i]
		}
	}
}

// accept advances the state by token id's bytes. A token the constraint would not have allowed (a stop the
// caller forced) leaves the state where the valid prefix of its bytes took it.
func (c *jsonConstraint) accept(id int32) {
	if id < 0 || int(id) >= len(c.vocab.pieces) {
		return
	}
	for _, b := range c.vocab.pieces[id] {
		next := c.state
		if !next.step(b) {
			return
		}
		c.state = next
	}
}
