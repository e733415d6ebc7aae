package judge

import (
	"errors"
	"testing"
)

// FuzzParseScores: any judge output gives two scores in range or a *ParseError, never a panic.
func FuzzParseScores(f *testing.F) {
	for _, s := range []string{"8 7\nok", "Assistant 1: 8\nAssistant 2: 9", "**8/10 7/10**", "", "1e400 3", "9.5 10.0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		a, b, err := ParseScores(text)
		var pe *ParseError
		switch {
		case err == nil && (a < 0 || a > MaxScore || b < 0 || b > MaxScore):
			t.Fatalf("scores %v %v out of range", a, b)
		case err != nil && !errors.As(err, &pe):
			t.Fatalf("error %v is not a ParseError", err)
		}
	})
}
