package judge

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/rules"
)

func TestParseScores(t *testing.T) {
	ok := []struct {
		text   string
		s1, s2 float64
	}{
		{"8 7\nAssistant 1 gave more detail.", 8, 7},                                           // Vicuna's format
		{"9 8.5\n\nBoth answers are good.", 9, 8.5},                                            // half points
		{"8, 7\nexplanation", 8, 7},                                                            // comma
		{"\n\n  10 9  \nexplanation", 10, 9},                                                   // leading blank lines
		{"**8 6**\n\nAssistant 1 ...", 8, 6},                                                   // markdown bold
		{"Scores: 7 and 9\nAssistant 2 is better.", 7, 9},                                      // label and "and"
		{"8/10 6/10\nreasons", 8, 6},                                                           // out of ten
		{"Assistant 1: 8/10, Assistant 2: 6/10\nBecause...", 8, 6},                             // labels on line 1
		{"Assistant 1: 7\nAssistant 2: 9\n\nAssistant 2 gave three examples.", 7, 9},           // labels on two lines
		{"## Evaluation\nAssistant 1 score: 6\nAssistant 2 score: 8", 6, 8},                    // header first
		{"Assistant 1's score: 4; Assistant 2's score: 5. Assistant 1 was brief.", 4, 5},       // possessive labels
		{"0 10\nAssistant 1 did not answer.", 0, 10},                                           // range ends
		{"I would rate Assistant 1 8 and Assistant 2 7 out of 10 points, for 3 reasons", 8, 7}, // labelled in prose
	}
	for _, c := range ok {
		s1, s2, err := ParseScores(c.text)
		if err != nil || s1 != c.s1 || s2 != c.s2 {
			t.Errorf("ParseScores(%q) = %v, %v, %v; want %v, %v", c.text, s1, s2, err, c.s1, c.s2)
		}
	}
	bad := []struct{ text, reason string }{
		{"", "empty output"},
		{"   \n\n", "empty output"},
		{"Once upon a time, there was a little girl named Lily. She loved to play outside.", "no scores"}, // a story model
		{"8\nThe first answer is better.", "1 numbers"},                                                   // one score
		{"Assistant 1 and 2 both get 8 or maybe 7, 6", "4 numbers"},                                       // rambling
		{"8 7 9\nthree assistants?", "3 numbers"},
		{"85 70\nout of 100", "outside 0-10"},
		{"-1 -1", "outside 0-10"},
		{"Assistant 1: 12\nAssistant 2: 7", "outside 0-10"},
		{"The scores are eight and seven.", "no scores"},
	}
	for _, c := range bad {
		_, _, err := ParseScores(c.text)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Reason, c.reason) {
			t.Errorf("ParseScores(%q) = %v; want a ParseError with %q", c.text, err, c.reason)
		}
	}
}

// fakeChat answers from a function of the prompt; the real endpoints are in package evaluate's tests.
type fakeChat func(user string) (string, error)

func (f fakeChat) Chat(_ context.Context, system, user string, _ ChatOptions) (string, string, error) {
	if system != SystemPrompt {
		return "", "", errors.New("wrong system prompt")
	}
	text, err := f(user)
	return text, `{"raw":true}`, err
}

func TestLLMBothOrders(t *testing.T) {
	// A judge with a position bias: +1 for Assistant 1. The model's answer ("GOOD") deserves 8, the opponent's 6.
	biased := fakeChat(func(user string) (string, error) {
		first := strings.Index(user, "GOOD") < strings.Index(user, "MEH")
		if first {
			return "9 6\nAssistant 1 is better.", nil
		}
		return "7 8\nAssistant 2 is better.", nil
	})
	j := &LLM{Client: biased}
	v, err := j.Judge(context.Background(), Pair{Question: "q", Model: "GOOD", Opponent: "MEH"})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.Model != 8.5 || v.Opponent != 6.5 || len(v.Orders) != 2 || v.Orders[1].ModelFirst || v.Orders[0].RawResponse == "" {
		t.Errorf("verdict %+v", v)
	}

	// One order unparseable: the other one decides; both unparseable: a failure with both reasons, no scores.
	half := fakeChat(func(user string) (string, error) {
		if strings.Index(user, "GOOD") < strings.Index(user, "MEH") {
			return "Once upon a time there was a cat.", nil
		}
		return "5 9", nil
	})
	v, _ = (&LLM{Client: half}).Judge(context.Background(), Pair{Question: "q", Model: "GOOD", Opponent: "MEH"})
	if !v.OK || v.Model != 9 || v.Opponent != 5 || v.Orders[0].OK || v.Orders[0].Failure == "" {
		t.Errorf("half verdict %+v", v)
	}
	story := fakeChat(func(string) (string, error) { return "Once upon a time.", nil })
	v, _ = (&LLM{Client: story}).Judge(context.Background(), Pair{Question: "q", Model: "a", Opponent: "b"})
	if v.OK || v.Model != 0 || !strings.Contains(v.Failure, "model first") || !strings.Contains(v.Failure, "opponent first") || v.Orders[1].Text != "Once upon a time." {
		t.Errorf("failed verdict %+v", v)
	}
	down := fakeChat(func(string) (string, error) { return "", errors.New("connection refused") })
	if _, err := (&LLM{Client: down}).Judge(context.Background(), Pair{}); err == nil {
		t.Error("a transport error must be an error, not a verdict")
	}
}

type fixedScorer []float32

func (f fixedScorer) Score(context.Context, string, []string) ([]float32, error) { return f, nil }

func TestRewardAndRules(t *testing.T) {
	v, err := (&Reward{Scorer: fixedScorer{1.5, 0.5}}).Judge(context.Background(), Pair{})
	if err != nil || !v.OK || math.Abs(v.Model-1/(1+math.Exp(-1))) > 1e-12 || math.Abs(v.Model+v.Opponent-1) > 1e-12 {
		t.Errorf("reward verdict %+v %v", v, err)
	}
	if _, err := (&Reward{Scorer: fixedScorer{1}}).Judge(context.Background(), Pair{}); err == nil {
		t.Error("one score for two answers: no error")
	}
	ins := rules.FromText("A story about a cat named Tom that ends with 'The end.'")
	p := Pair{Question: "q", Model: "Tom sat. The end.", Opponent: "Lily sat.", Instructions: ins}
	v, _ = (&Rules{}).Judge(context.Background(), p)
	if !v.OK || v.Model != 1 || v.Opponent != 0 {
		t.Errorf("rules verdict %+v", v)
	}
	v, _ = (&Rules{}).Judge(context.Background(), Pair{Question: "Tell me about Paris."})
	if v.OK || v.Failure != "no instructions" {
		t.Errorf("no instructions: %+v", v)
	}
	v, _ = (&Rules{FromText: true}).Judge(context.Background(), Pair{Question: "A story named Tom.", Model: "Tom.", Opponent: "Sam."})
	if !v.OK || v.Model != 1 || v.Opponent != 0 {
		t.Errorf("rules from text: %+v", v)
	}
}
