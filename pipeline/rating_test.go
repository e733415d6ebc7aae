package pipeline

import (
	"strings"
	"testing"
)

// TestParseRating runs the parser on outputs of the kind LLM raters really produce (Vicuna's reviewer output,
// chatty answers, markdown, other languages) and on ones that must fail: no score, N/A, two scores.
func TestParseRating(t *testing.T) {
	ok := []struct {
		text string
		want float64
	}{
		{"8\nThe answer is relevant and detailed.", 8},
		{"8.5", 8.5},
		{"  \n\n7\n", 7},
		{"Score: 8/10\nThe response covers the main points.", 8},
		{"**Rating:** 9", 9},
		{"## Score: 6", 6},
		{"Rating: 7 out of 10", 7},
		{"I'd give it a 7 out of 10. It answers the question but misses details.", 7},
		{"The assistant's answer is helpful and accurate. I would rate it 9/10.", 9},
		{"Overall, this deserves a score of 6.", 6},
		{"My rating: 4", 4},
		{"评分：8分\n回答准确。", 8},
		{"评分：８分", 8},
		{"这个回答可以打八分。", 8},
		{"得分: 7", 7},
		{"Note : 8/10\nLa réponse est claire.", 8},
		{"Je donne 7 sur 10.", 7},
		{"Puntuación: 9\nLa respuesta es completa.", 9},
		{"Bewertung: 7 von 10", 7},
		{"Voto: 6/10", 6},
		{"10", 10},
		{"Score: 8/10. It would be 8/10 again on a second read.", 8},
		{"The answer gets 5 points.", 5},
		{"7,5/10", 7.5},
	}
	for _, c := range ok {
		got, err := ParseRating(c.text)
		if err != nil || got != c.want {
			t.Errorf("ParseRating(%q) = %v, %v; want %v", c.text, got, err, c.want)
		}
	}
	bad := []struct{ text, why string }{
		{"", "empty"},
		{"N/A", "no rating"},
		{"I cannot rate this answer.", "no rating"},
		{"7 8\nBoth are good.", "no rating"},
		{"Answer 1 gets 6/10 and answer 2 gets 9/10.", "ambiguous"},
		{"Score: 85", "no rating"},
		{"The story has 3 characters and 2 dogs.", "not labelled"},
		{"Rating: 7 or 8 out of 10, somewhere between 6/10 and 8/10", "ambiguous"},
	}
	for _, c := range bad {
		got, err := ParseRating(c.text)
		if err == nil {
			t.Errorf("ParseRating(%q) = %v, want an error (%s)", c.text, got, c.why)
		} else if !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseRating(%q): error %q does not say %q", c.text, err, c.why)
		}
	}
}

func TestParsePairRating(t *testing.T) {
	ok := []struct {
		text string
		a, b float64
	}{
		{"8 7\nAssistant 1 gave more detail.", 8, 7},
		{"9, 6", 9, 6},
		{"8/10 7/10", 8, 7},
		{"**7.5 8**", 7.5, 8},
		{"Assistant 1: 8\nAssistant 2: 6\nAssistant 1 is better.", 8, 6},
		{"Assistant 1's score: 4; Assistant 2's score: 9", 4, 9},
		{"３ ９", 3, 9},
	}
	for _, c := range ok {
		a, b, err := ParsePairRating(c.text)
		if err != nil || a != c.a || b != c.b {
			t.Errorf("ParsePairRating(%q) = %v %v %v; want %v %v", c.text, a, b, err, c.a, c.b)
		}
	}
	for _, text := range []string{"", "8", "N/A N/A", "8 7 6", "Both assistants did well.", "12 7"} {
		if a, b, err := ParsePairRating(text); err == nil {
			t.Errorf("ParsePairRating(%q) = %v %v, want an error", text, a, b)
		}
	}
}
