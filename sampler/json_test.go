package sampler

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// feed runs text through a fresh automaton: how many bytes it accepted and whether the object is complete.
func feed(text []byte) (accepted int, done bool) {
	var s jsonState
	for i, b := range text {
		if !s.step(b) {
			return i, false
		}
	}
	return len(text), s.mode == jDone
}

// isObject is the reference: encoding/json says the text is one valid JSON object, and it is UTF-8 (which
// RFC 8259 requires; json.Valid lets invalid bytes in strings pass).
func isObject(text []byte) bool {
	if !json.Valid(text) || !utf8.Valid(text) {
		return false
	}
	t := bytes.TrimLeft(text, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// randomValue builds a random JSON value of at most depth levels.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(9); {
	case k == 0 && depth > 0:
		m := map[string]any{}
		for i := r.IntN(4); i > 0; i-- {
			m[randomString(r)] = randomValue(r, depth-1)
		}
		return m
	case k == 1 && depth > 0:
		a := []any{}
		for i := r.IntN(4); i > 0; i-- {
			a = append(a, randomValue(r, depth-1))
		}
		return a
	case k == 2:
		return r.NormFloat64() * 1e3
	case k == 3:
		return r.IntN(2000) - 1000
	case k == 4:
		return r.IntN(2) == 0
	case k == 5:
		return nil
	case k == 6:
		return r.Float64() * 1e-30
	}
	return randomString(r)
}

func randomString(r *rand.Rand) string {
	alphabet := []string{"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "é", "日本", "🦙", "\u2028", "0", "{", "]"}
	var b strings.Builder
	for i := r.IntN(6); i > 0; i-- {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// TestJSONAutomatonAcceptsObjects checks the automaton against encoding/json: every JSON object Marshal
// writes (compact or indented, with escapes, numbers of every form and multi-byte characters) is accepted
// whole, and every prefix of it is accepted without completing early.
func TestJSONAutomatonAcceptsObjects(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		obj := map[string]any{}
		for k := r.IntN(5); k > 0; k-- {
			obj[randomString(r)] = randomValue(r, 4)
		}
		var text []byte
		var err error
		if i%2 == 0 {
			text, err = json.Marshal(obj)
		} else {
			text, err = json.MarshalIndent(obj, "", "  ")
		}
		if err != nil {
			t.Fatal(err)
		}
		text = append([]byte("\n "), text...)
		if n, done := feed(text); n != len(text) || !done {
			t.Fatalf("%q: accepted %d of %d bytes, done %v", text, n, len(text), done)
		}
		for cut := 0; cut < len(text)-1; cut++ {
			if n, done := feed(text[:cut]); n != cut || done {
				t.Fatalf("prefix %q of %q: accepted %d bytes, done %v", text[:cut], text, n, done)
			}
		}
	}
	for _, s := range []string{`{}`, `{"a":-0.5e+10,"b":[1E3,0,-0,true,false,null,{}],"c":"\u00e9\"\\\/\b\f\n\r\t"}`,
		`{"deep":` + strings.Repeat(`[`, MaxJSONDepth-1) + strings.Repeat(`]`, MaxJSONDepth-1) + `}`,
		"{\n" + strings.Repeat(" ", MaxJSONSpace) + `"a": 1}`} {
		if n, done := feed([]byte(s)); n != len(s) || !done {
			t.Errorf("%s: accepted %d of %d bytes, done %v", s, n, len(s), done)
		}
	}
}

// TestJSONAutomatonRejects checks, on random mutations of valid objects and on hand-picked cases, that whatever
// the automaton accepts as a complete object encoding/json accepts too, and that its limits hold.
func TestJSONAutomatonRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	bytesPool := []byte("{}[]\":,\\-+.0123456789eEtfnrul aé\x00\x1f\x80\xc3\xff")
	checked := 0
	for i := 0; i < 20000; i++ {
		text, _ := json.Marshal(map[string]any{randomString(r): randomValue(r, 3)})
		for k := 1 + r.IntN(3); k > 0; k-- {
			switch pos := r.IntN(len(text)); r.IntN(3) {
			case 0:
				text[pos] = bytesPool[r.IntN(len(bytesPool))]
			case 1:
				text = append(text[:pos], text[pos+1:]...)
			default:
				text = append(text[:pos], append([]byte{bytesPool[r.IntN(len(bytesPool))]}, text[pos:]...)...)
			}
		}
		n, done := feed(text)
		if n == len(text) && done {
			checked++
			if !isObject(text) {
				t.Fatalf("accepted %q, which encoding/json rejects", text)
			}
		} else if isObject(text) && n < len(text) {
			t.Fatalf("rejected %q at byte %d, a valid object", text, n)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d mutated texts were complete objects: the test checks little", checked)
	}
	for _, s := range []string{`[]`, `"x"`, `1`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`,
		`{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x}`, `{"a":"\u12G4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xc3(\"}",
		"{\"a\":\"\xed\xa0\x80\"}", `{"a":1}}`, `{"a":1} `, `{'a':1}`, `{"a":[1,]}`,
		`{"a":` + strings.Repeat(`[`, MaxJSONDepth) + strings.Repeat(`]`, MaxJSONDepth) + `}`,
		"{\n" + strings.Repeat(" ", MaxJSONSpace+1) + `}`, `{  }`, "{ \n}", "{\r\n}", "{\t}", "{\n\n}"} {
		if n, done := feed([]byte(s)); n == len(s) && done {
			t.Errorf("%q accepted as a complete object", s)
		}
	}
}

// toyVocab has JSON-ish pieces of every kind: structural bytes, multi-byte runs that cross states, the two
// halves of "é" as byte tokens, letters and an end-of-generation token (id 0, no text).
var toyPieces = []string{"", "{", "}", "[", "]", "\"", ":", ",", " ", "\n", "a", "bc", "1", "-", ".", "e", "true", "nul", "l",
	"\"k\":", "},{", "\\", "u", "00e9", "\xc3", "\xa9", "\x01", "{\"", "\"}", "x y", "]}", "0"}

func toyVocab() *JSONVocab {
	return NewJSONVocab(toyPieces, func(id int32) bool { return id == 0 })
}

// TestJSONModeSampling samples with random logits in JSON mode: every text is a valid prefix of an object,
// and every sequence that ends on its end-of-generation token is one JSON object (encoding/json), greedy or
// not.
func TestJSONModeSampling(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	v := toyVocab()
	ended := 0
	for seq := 0; seq < 300; seq++ {
		p := Params{Temperature: float32(seq % 3), JSON: v, Seed: uint64(seq)}
		s, err := New(p, len(toyPieces))
		if err != nil {
			t.Fatal(err)
		}
		var text []byte
		logits := make([]float32, len(toyPieces))
		for step := 0; step < 300; step++ {
			for i := range logits {
				logits[i] = float32(r.NormFloat64() * 2)
			}
			logits[0] += 1 // end when allowed, often
			id, _ := s.Sample(logits)
			s.Accept(id)
			if id == 0 {
				if !isObject(text) {
					t.Fatalf("sequence %d ended on %q, not a JSON object", seq, text)
				}
				ended++
				break
			}
			text = append(text, toyPieces[id]...)
			if n, _ := feed(text); n != len(text) {
				t.Fatalf("sequence %d: %q is not a JSON prefix (bad at byte %d)", seq, text, n)
			}
		}
	}
	if ended < 30 {
		t.Errorf("only %d of 300 sequences closed their object: the end is not exercised", ended)
	}
}

// TestJSONModeEndsAndFallsBack checks that once the object is closed only the end-of-generation token is
// left, and that a vocabulary lacking what the grammar needs ends the sequence instead of sampling garbage.
func TestJSONModeEndsAndFallsBack(t *testing.T) {
	s, err := New(Params{JSON: toyVocab()}, len(toyPieces))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{1, 2} { // "{" "}"
		s.Accept(id)
	}
	logits := make([]float32, len(toyPieces))
	for i := range logits {
		logits[i] = 10
	}
	logits[0] = -50
	if id, _ := s.Sample(logits); id != 0 {
		t.Errorf("after {}: sampled %d (%q), want the end-of-generation token", id, toyPieces[id])
	}
	// Only letters and the end token: nothing can start an object, so the end token is the answer.
	bare := NewJSONVocab([]string{"", "a", "b"}, func(id int32) bool { return id == 0 })
	s, _ = New(Params{Temperature: 1, JSON: bare, Seed: 1}, 3)
	if id, _ := s.Sample([]float32{-20, 5, 5}); id != 0 {
		t.Errorf("no valid token: sampled %d, want the end-of-generation token", id)
	}
}

// TestJSONModeLogprobsAreRaw checks that JSON mode, like bias and penalties, does not change the reported
// log-probabilities (those of the raw model distribution).
func TestJSONModeLogprobsAreRaw(t *testing.T) {
	logits := make([]float32, len(toyPieces))
	r := rand.New(rand.NewPCG(7, 8))
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	plain, _ := New(Params{TopLogprobs: 3}, len(toyPieces))
	constrained, _ := New(Params{TopLogprobs: 3, JSON: toyVocab()}, len(toyPieces))
	plain.Sample(logits)
	id, lp := constrained.Sample(logits)
	if toyPieces[id][0] != '{' && toyPieces[id] != " " && toyPieces[id] != "\n" {
		t.Errorf("first token %q cannot start an object", toyPieces[id])
	}
	plainLP := plain.TopLogprobs()
	for i, top := range constrained.TopLogprobs() {
		if top != plainLP[i] {
			t.Errorf("top logprob %d: %+v in JSON mode, %+v without", i, top, plainLP[i])
		}
	}
	if lp >= 0 {
		t.Errorf("logprob %v", lp)
	}
}

// BenchmarkSampleJSON compares one Sample over a 32000-token vocabulary of JSON-ish pieces with and without
// JSON mode (the mask tries every token's bytes on a copy of the automaton).
func BenchmarkSampleJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	const vocab = 32000
	alphabet := []byte(`{}[]":, abcdefghij0123456789.-\`)
	pieces := make([]string, vocab)
	for i := 1; i < vocab; i++ {
		p := make([]byte, 1+r.IntN(7))
		for k := range p {
			p[k] = alphabet[r.IntN(len(alphabet))]
		}
		pieces[i] = string(p)
	}
	v := NewJSONVocab(pieces, func(id int32) bool { return id == 0 })
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	for _, mode := range []struct {
		name string
		json *JSONVocab
	}{{"plain", nil}, {"json", v}} {
		b.Run(mode.name, func(b *testing.B) {
			s, _ := New(Params{Temperature: 1, JSON: mode.json}, vocab)
			s.Accept(int32(slicesIndex(pieces, "{")))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Sample(logits)
			}
		})
	}
}

func slicesIndex(pieces []string, p string) int {
	for i, q := range pieces {
		if q == p {
			return i
		}
	}
	return 0
}
