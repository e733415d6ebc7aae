package evaluate

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestJobPlatform runs evaluate as a job on the real platform (SQLite store) against a real bestofn server,
// crashes the Service (as kill -9 would) half way, and checks that the resumed job finishes with every answer
// and judgment stored once and all its files published.
func TestJobPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bestofn server")
	}
	srv := teachertest.Serve(t)
	env := jobstest.New(t, jobs.Config{Types: Types(), Purposes: Purposes()})
	dir := t.TempDir()
	qs, _ := os.ReadFile(testQuestions(t, dir))
	opp, _ := os.ReadFile(testOpponent(t, dir))
	qf := env.Upload("questions.jsonl", PurposeQuestions, qs)
	of := env.Upload("opponent.jsonl", PurposeAnswers, opp)

	ep := map[string]any{"base_url": srv.URL + "/v1", "model": "llama-gpt4", "max_tokens": 32, "seed": 5}
	params := map[string]any{
		"questions_file": qf.ID,
		"groups":         []any{map[string]any{"name": "B", "endpoint": ep}},
		"opponent":       map[string]any{"name": "reference", "answers_file": of.ID},
		"judges": map[string]any{
			"llm":   map[string]any{"base_url": srv.URL + "/v1", "model": "llama-gpt4", "max_tokens": 16, "one_order": true},
			"rules": map[string]any{},
		},
		"concurrency": 1,
	}
	job := env.RunWithCrash(TypeName, params, func(j jobs.Job) bool { return j.Progress.Total > 0 && j.Progress.Done >= 4 })
	for _, name := range []string{outAnswers, outJudgments} {
		rows := env.OutputRows(job.ID, name)
		seen := map[string]bool{}
		for _, r := range rows {
			if seen[r.Key] {
				t.Errorf("%s: key %s stored twice", name, r.Key)
			}
			seen[r.Key] = true
		}
		if want := map[string]int{outAnswers: 6, outJudgments: 12}[name]; len(rows) != want {
			t.Errorf("%s: %d rows, want %d", name, len(rows), want)
		}
	}
	files := map[string]string{}
	for _, id := range job.Outputs {
		f, err := env.Service.File(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		files[f.Filename] = id
	}
	for _, name := range []string{"report.json", "report.md", "answers.jsonl", "judgments.jsonl", "relative_llm.png", "relative_rules.svg", "rouge_l.png"} {
		if files[name] == "" {
			t.Errorf("no output %s (outputs %v)", name, files)
		}
	}
	var rep Report
	if err := json.Unmarshal(env.ReadFile(files["report.json"]), &rep); err != nil {
		t.Fatal(err)
	}
	llm := rep.Groups[0].Judges["llm"]
	if rep.Object != "evaluation.report" || rep.Questions.Count != 6 || llm.Judged+llm.ParseFailures != 6 || rep.Groups[0].Judges["rules"].Judged != 3 {
		t.Errorf("report %+v, llm %+v", rep.Questions, llm)
	}
	var sum Summary
	if err := json.Unmarshal(job.Result, &sum); err != nil || sum.Groups["B"]["rules"] == nil {
		t.Errorf("result %s: %v", job.Result, err)
	}
	if job.Progress.Done != job.Progress.Total || job.Progress.Total != 6+2*6 {
		t.Errorf("progress %+v", job.Progress)
	}

	// Bad params and missing files are refused before anything is queued.
	_, err := env.Service.Submit(t.Context(), TypeName, json.RawMessage(`{"questions_file": "file-nope", "groups": [{"name": "B", "answers_file": "`+of.ID+`"}], "opponent": {"answers_file": "`+of.ID+`"}, "judges": {"rules": {}}}`))
	var pe *jobs.ParamError
	if !errors.As(err, &pe) || pe.Field != "params.questions_file" {
		t.Errorf("missing questions file: %v", err)
	}
	// An upload of questions without question text is refused with its line.
	_, err = env.Service.UploadFile(t.Context(), "bad.jsonl", PurposeQuestions, strings.NewReader("{\"text\": \"ok\"}\n{\"question_id\": 2}\n"))
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("a question row without text: %v", err)
	}
}
