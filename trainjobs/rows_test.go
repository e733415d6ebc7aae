package trainjobs

import (
	"reflect"
	"testing"

	"github.com/bestofn/bestofn/chat"
)

func TestParsePreference(t *testing.T) {
	for _, c := range []struct {
		line   string
		reason string // "" for a good row
		want   Preference
	}{
		{`{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.5}`, "", Preference{Prompt: "p", Chosen: "a", Rejected: "b", Margin: 1.5, HasMargin: true}},
		{`{"chosen": "x", "rejected": "y", "id": 7}`, "", Preference{Chosen: "x", Rejected: "y"}},
		{`{"user_input": "q", "responses_and_scores": [{"response": "r1", "score": 9, "source": "gpt4"}, {"response": "r2", "score": 3}]}`, "",
			Preference{Prompt: "q", Responses: []ScoredResponse{{"r1", 9, "gpt4"}, {"r2", 3, ""}}}},
		{`not json`, ReasonInvalidJSON, Preference{}},
		{`[1, 2]`, ReasonInvalidJSON, Preference{}},
		{`{"a": 1} {"b": 2}`, ReasonInvalidJSON, Preference{}},
		{`{"chosen": "x"}`, ReasonMissingField, Preference{}},
		{`{"chosen": "x", "rejected": null}`, ReasonMissingField, Preference{}},
		{`{"chosen": "x", "rejected": 3}`, ReasonWrongType, Preference{}},
		{`{"chosen": [{"role": "user"}], "rejected": "y"}`, ReasonWrongType, Preference{}},
		{`{"chosen": "  ", "rejected": "y"}`, ReasonEmptyText, Preference{}},
		{`{"prompt": "", "chosen": "x", "rejected": "y"}`, ReasonEmptyText, Preference{}},
		{`{"chosen": "x", "rejected": "y", "margin": "big"}`, ReasonWrongType, Preference{}},
		{`{"question": "x"}`, ReasonUnknownFormat, Preference{}},
		{`{"user_input": "q"}`, ReasonMissingField, Preference{}},
		{`{"user_input": "q", "responses_and_scores": [{"response": "r1", "score": 9}]}`, ReasonMissingField, Preference{}},
		{`{"user_input": "q", "responses_and_scores": [{"response": "r1", "score": 9}, {"response": "r2"}]}`, ReasonMissingField, Preference{}},
		{`{"user_input": "q", "responses_and_scores": [{"response": "r1", "score": 9}, {"response": "", "score": 1}]}`, ReasonEmptyText, Preference{}},
		{`{"user_input": "q", "responses_and_scores": [{"response": "r1", "score": 9}, {"response": "r2", "score": "1"}]}`, ReasonWrongType, Preference{}},
		{`{"user_input": "q", "responses_and_scores": {"response": "r1"}}`, ReasonWrongType, Preference{}},
		{`{"user_input": 5, "responses_and_scores": []}`, ReasonWrongType, Preference{}},
	} {
		got, err := ParsePreference([]byte(c.line))
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: %v", c.line, err)
		case c.reason == "" && !reflect.DeepEqual(got, c.want):
			t.Errorf("%s: %+v, want %+v", c.line, got, c.want)
		case c.reason != "" && err == nil:
			t.Errorf("%s: no error, want %s", c.line, c.reason)
		case c.reason != "" && err.Reason != c.reason:
			t.Errorf("%s: %s (%v), want %s", c.line, err.Reason, err, c.reason)
		}
	}
}

func TestPreferencePairs(t *testing.T) {
	hh, _ := parseRMTemplate(DefaultRewardTemplate)
	cmp := Preference{Prompt: "q", Responses: []ScoredResponse{{"a", 9, ""}, {"b", 3, ""}, {"c", 9, ""}, {"d", 5, ""}}}
	got, err := cmp.pairs(hh, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []textPair{{"q", "a", "b", 6}, {"q", "a", "d", 4}, {"q", "c", "b", 6}, {"q", "d", "b", 2}, {"q", "c", "d", 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("comparison pairs %v, want %v", got, want)
	}
	if got, _ := cmp.pairs(hh, false); got[0].margin != 0 {
		t.Errorf("margin %g without use_margin", got[0].margin)
	}
	for _, c := range []struct {
		p      Preference
		reason string
	}{
		{Preference{Prompt: "q", Responses: []ScoredResponse{{"a", 5, ""}, {"b", 5, ""}}}, ReasonNoScoreGap},
		{Preference{Prompt: "q", Chosen: "a", Rejected: "a"}, ReasonIdentical},
		{Preference{Chosen: "hello", Rejected: "bye"}, ReasonTemplateMismatch},
		{Preference{Chosen: "\n\nHuman: x\n\nAssistant: a", Rejected: "\n\nHuman: y\n\nAssistant: b"}, ReasonTemplateMismatch},
	} {
		if _, err := c.p.pairs(hh, true); err == nil || err.Reason != c.reason {
			t.Errorf("%+v: %v, want %s", c.p, err, c.reason)
		}
	}
	tp, err := Preference{Chosen: "\n\nHuman: x\n\nAssistant: a", Rejected: "\n\nHuman: x\n\nAssistant: b", Margin: 2, HasMargin: true}.pairs(hh, true)
	if err != nil || !reflect.DeepEqual(tp, []textPair{{"x", "a", "b", 2}}) {
		t.Errorf("implicit prompt: %v %v", tp, err)
	}
}

func TestParseSFT(t *testing.T) {
	user := func(s string) chat.Message { return chat.Message{Role: chat.RoleUser, Content: s} }
	for _, c := range []struct {
		line   string
		reason string
		want   SFTExample
	}{
		{`{"instruction": "Add", "input": "2 and 3", "output": "5"}`, "", SFTExample{[]chat.Message{user("Add"), user("2 and 3")}, "5"}},
		{`{"instruction": "Say hi", "input": "", "output": "hi"}`, "", SFTExample{[]chat.Message{user("Say hi")}, "hi"}},
		{`{"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}`, "",
			SFTExample{[]chat.Message{{Role: chat.RoleSystem}, user("q")}, "a"}},
		{`{"instruction": "x"}`, ReasonMissingField, SFTExample{}},
		{`{"instruction": "x", "output": ""}`, ReasonEmptyText, SFTExample{}},
		{`{"instruction": "x", "output": 3}`, ReasonWrongType, SFTExample{}},
		{`{"instruction": "x", "input": [], "output": "y"}`, ReasonWrongType, SFTExample{}},
		{`{"messages": "hi"}`, ReasonWrongType, SFTExample{}},
		{`{"messages": [{"role": "user", "content": "q"}]}`, ReasonMissingField, SFTExample{}},
		{`{"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}`, ReasonMissingField, SFTExample{}},
		{`{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}`, ReasonWrongType, SFTExample{}},
		{`{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}`, ReasonEmptyText, SFTExample{}},
		{`{"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}`, ReasonMissingField, SFTExample{}},
		{`{"prompt": "x", "completion": "y"}`, ReasonUnknownFormat, SFTExample{}},
	} {
		got, err := ParseSFT([]byte(c.line))
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: %v", c.line, err)
		case c.reason == "" && !reflect.DeepEqual(got, c.want):
			t.Errorf("%s: %+v, want %+v", c.line, got, c.want)
		case c.reason != "" && err == nil:
			t.Errorf("%s: no error, want %s", c.line, c.reason)
		case c.reason != "" && err.Reason != c.reason:
			t.Errorf("%s: %s (%v), want %s", c.line, err.Reason, err, c.reason)
		}
	}
}
