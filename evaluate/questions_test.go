package evaluate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
)

func sharedData(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		t.Skip("shared data missing: ", err)
	}
	return p
}

// The paper's question sets load as they are.
func TestSharedQuestionSets(t *testing.T) {
	for _, c := range []struct {
		file       string
		n          int
		firstID    string
		category   string
		textPrefix string
		refs       bool
	}{
		{"vicuna_question_80.jsonl", 80, "1", "generic", "How can I improve my time management skills?", false},
		{"mt_bench_question_80.jsonl", 80, "81", "writing", "Compose an engaging travel blog post about a recent trip to Hawaii", false},
		{"user_oriented_instructions_252.jsonl", 252, "user_oriented_task_0", "Grammarly", "The sentence you are given might be too wordy", true},
	} {
		f, err := os.Open(sharedData(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		qs, err := ParseQuestions(f, 0)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		q := qs[0]
		if len(qs) != c.n || q.ID != c.firstID || q.Category != c.category || !strings.HasPrefix(q.Text, c.textPrefix) {
			t.Errorf("%s: %d questions, first %+v", c.file, len(qs), q)
		}
		if c.refs && (q.Reference == "" || !strings.Contains(q.Text, "\n\nIf you have any questions")) {
			t.Errorf("%s: reference %q, text %q", c.file, q.Reference, q.Text)
		}
		if strings.HasPrefix(c.file, "mt_bench") && strings.Contains(q.Text, "Start every sentence with the letter A") {
			t.Errorf("MT-Bench: the second turn leaked into the question")
		}
	}
}

func TestParseQuestionsRules(t *testing.T) {
	in := `{"question_id": "s1", "prompt": "Write a story about a cat named Tom.", "category": "story", "instruction_id_list": ["detectable_content:name", "length_constraints:number_words"], "kwargs": [{"name": "Tom"}, {"num_words": 80, "relation": "less than"}]}
{"key": 7, "prompt": "Say hi", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
`
	qs, err := ParseQuestions(strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || len(qs[0].instructions) != 2 || qs[1].ID != "7" || qs[1].Category != "general" {
		t.Fatalf("%+v", qs)
	}
	for _, bad := range []struct{ in, want string }{
		{`{"question_id": 1}`, "line 1: no question text"},
		{"{\"question_id\": 1, \"text\": \"a\"}\n{\"question_id\": 1, \"text\": \"b\"}", `line 2: question id "1" repeats line 1`},
		{`{"text": "a", "instruction_id_list": ["nope"]}`, `unknown instruction id "nope"`},
		{`not json`, "line 1: not a JSON object"},
		{``, "empty"},
	} {
		if _, err := ParseQuestions(strings.NewReader(bad.in), 0); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseQuestions(%q) = %v, want %q", bad.in, err, bad.want)
		}
	}
	ans, err := ParseAnswers(strings.NewReader(`{"question_id": 1, "answer": "a"}
{"question_id": 2, "choices": [{"index": 0, "turns": ["b", "c"]}]}
{"id": "x", "output": "d"}`))
	if err != nil || ans["1"] != "a" || ans["2"] != "b" || ans["x"] != "d" {
		t.Errorf("answers %v, %v", ans, err)
	}
	if err := ValidateAnswerLine([]byte(`{"question_id": 1}`)); err == nil {
		t.Error("an answer row without an answer: no error")
	}
}

func TestValidateParams(t *testing.T) {
	good := `{"questions_file": "file-q", "groups": [{"name": "R", "k": 5, "baseline": "B", "endpoint": {"base_url": "http://127.0.0.1:1/v1", "model": "m:r1"}}],
	  "opponent": {"answers_file": "file-a"}, "judges": {"rules": {"from_text": true}}}`
	if err := (Type{}).Validate(t.Context(), json.RawMessage(good), nil); err != nil {
		t.Fatalf("good params: %v", err)
	}
	var p Params
	json.Unmarshal([]byte(good), &p)
	names, _ := p.check()
	if got := strings.Join(reportOrder(p, names), ","); got != "B,R1,R2,R3,R4,R5" {
		t.Errorf("report order %s", got)
	}
	bad := []struct{ params, field string }{
		{`{"groups": []}`, "questions_file"},
		{`{"questions_file": "f", "groups": [], "opponent": {}, "judges": {}}`, "groups"},
		{`{"questions_file": "f", "groups": [{"name": "B"}], "opponent": {}, "judges": {}}`, "groups[0]"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {}}`, "judges"},
		{`{"questions_file": "f", "groups": [{"name": "B c", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "groups[0].name"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}, {"name": "B", "answers_file": "c"}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "groups[1].name"},
		{`{"questions_file": "f", "groups": [{"name": "R", "k": 3, "endpoint": {"provider": "ollama", "base_url": "http://h:1", "model": "m"}}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "groups[0].endpoint"},
		{`{"questions_file": "f", "groups": [{"name": "B", "endpoint": {"base_url": "ftp://x", "model": "m"}}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "groups[0].endpoint.base_url"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {"reward": {}}}`, "judges.reward"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {"reward": {"path": "/nonexistent"}}}`, "judges.reward.path"},
		{`{"questions_file": "f", "language": "fr", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "language"},
		{`{"questions_file": "f", "language": "zh", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "translator"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a", "k": 2}], "opponent": {"answers_file": "b"}, "judges": {"rules": {}}}`, "groups[0].endpoint"},
		{`{"questions_file": "f", "surprise": 1}`, "surprise"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}, {"name": "C", "answers_file": "c"}], "opponent": {"group": "D"}, "judges": {"rules": {}}}`, "opponent.group"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"group": "B"}, "judges": {"rules": {}}}`, "opponent.group"},
		{`{"questions_file": "f", "groups": [{"name": "B", "answers_file": "a"}], "opponent": {"group": "B", "answers_file": "c"}, "judges": {"rules": {}}}`, "opponent"},
	}
	for _, c := range bad {
		err := (Type{}).Validate(t.Context(), json.RawMessage(c.params), nil)
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("Validate(%s) = %v, want a ParamError on %q", c.params, err, c.field)
		}
	}
}
