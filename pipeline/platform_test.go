package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
	"github.com/bestofn/bestofn/trainjobs"
)

func newEnv(t *testing.T) *jobstest.Env {
	return jobstest.New(t, jobs.Config{Types: Types(Options{}), Purposes: append(Purposes(), trainjobs.Purposes()...)})
}

// outputsByName maps a job's output file names to their contents.
func outputsByName(t *testing.T, env *jobstest.Env, j jobs.Job) (map[string][]byte, map[string]string) {
	t.Helper()
	content, purpose := map[string][]byte{}, map[string]string{}
	for _, id := range j.Outputs {
		f, err := env.Service.File(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		content[f.Filename], purpose[f.Filename] = env.ReadFile(id), f.Purpose
	}
	return content, purpose
}

// TestGenerateDataCrash runs generate-data on the job platform, kills the Service as kill -9 would in the
// middle, and lets a new Service resume it: no instruction answered before the crash is asked again, no row is
// duplicated, and the published file is byte-identical to an uninterrupted run's.
func TestGenerateDataCrash(t *testing.T) {
	srv := teachertest.Serve(t)
	var in strings.Builder
	const total = 12
	for i := range total {
		in.WriteString(`{"instruction":"Write about the number ` + itoa(i) + `."}` + "\n")
	}
	params := func(env *jobstest.Env, base string) map[string]any {
		f := env.Upload("in.jsonl", PurposeInstructions, []byte(in.String()))
		return map[string]any{"input_file": f.ID, "seed": 9, "max_tokens": 24,
			"teacher": teacher.Config{BaseURL: base + "/v1", Model: "llama-gpt4", Concurrency: 2}}
	}
	ref := newEnv(t)
	refJob := ref.Run(TypeGenerateData, params(ref, srv.URL))
	refFiles, _ := outputsByName(t, ref, refJob)

	rec := &recorder{}
	proxy := teachertest.NewProxy(t, srv.URL, rec.fault)
	env := newEnv(t)
	j := env.Submit(TypeGenerateData, params(env, proxy.URL))
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done >= 4 })
	env.Crash()
	answered := map[string]bool{}
	for _, row := range env.OutputRows(j.ID, "items") {
		var d DataRow
		json.Unmarshal(row.Row, &d)
		answered[d.Instruction] = true
	}
	before := len(rec.userTexts())
	j = env.Wait(j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("job ended %s after %d attempts: %+v", j.Status, j.Attempts, j.Error)
	}
	if len(answered) < 4 || len(answered) == total {
		t.Fatalf("%d answered at the crash", len(answered))
	}
	for _, text := range rec.userTexts()[before:] {
		for instr := range answered {
			if strings.Contains(text, "### Instruction:\n"+instr+"\n") {
				t.Errorf("asked again after the crash: %q", instr)
			}
		}
	}
	rows := env.OutputRows(j.ID, "items")
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Key] {
			t.Errorf("row %s duplicated", r.Key)
		}
		seen[r.Key] = true
	}
	files, purposes := outputsByName(t, env, j)
	if len(rows) != total || string(files["alpaca_gpt4_data.json"]) != string(refFiles["alpaca_gpt4_data.json"]) {
		t.Errorf("%d rows; resumed file equals the uninterrupted one: %v", len(rows), string(files["alpaca_gpt4_data.json"]) == string(refFiles["alpaca_gpt4_data.json"]))
	}
	if purposes["alpaca_gpt4_data.jsonl"] != PurposeSFT || purposes["items.jsonl"] != jobs.PurposeResults {
		t.Errorf("purposes %v", purposes)
	}
	var res GenerateResult
	json.Unmarshal(j.Result, &res)
	if res.Succeeded != total || j.Metrics["answers"] != total {
		t.Errorf("result %+v, metrics %v", res, j.Metrics)
	}
}

// TestFeedbackAndReportOnPlatform runs feedback and ab-report as submitted jobs on uploaded files: an A/B log
// of a real server (purpose ab-log) rated by the repository's tiny reward model.
func TestFeedbackAndReportOnPlatform(t *testing.T) {
	srv, log := abTraffic(t, abPrompts[:3], 1)
	env := newEnv(t)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	abFile := env.Upload("ab.jsonl", PurposeABLog, b)
	scorer := map[string]any{"kind": ScorerRewardModel, "path": tinyRM(t), "runtime": "go"}
	fb := env.Run(TypeFeedback, map[string]any{"ab_log": abFile.ID, "rater": "scorer", "scorer": scorer})
	files, purposes := outputsByName(t, env, fb)
	if purposes["comparisons.jsonl"] != PurposeComparisons || purposes["preferences.jsonl"] != PurposePreferences {
		t.Errorf("purposes %v", purposes)
	}
	// The outputs upload again under their purposes (each line passes its check), e.g. into train-reward.
	env.Upload("c.jsonl", PurposeComparisons, files["comparisons.jsonl"])
	if len(files["preferences.jsonl"]) > 0 {
		env.Upload("p.jsonl", PurposePreferences, files["preferences.jsonl"])
	}
	var res FeedbackResult
	json.Unmarshal(fb.Result, &res)
	if res.Prompts != 3 || res.Candidates != 6 || res.Rated != 6 || res.BySource["B"].Candidates != 3 {
		t.Errorf("feedback result %+v", res)
	}
	rep := env.Run(TypeABReport, map[string]any{"ab_log": abFile.ID, "judge": "scorer", "scorer": scorer, "metrics_url": srv.URL})
	var report ABReport
	json.Unmarshal(rep.Result, &report)
	if report.Object != "ab_report" || report.WinRate == nil || report.Paired == nil || report.Paired.N != 3 || report.Latency == nil {
		t.Errorf("report %s", rep.Result)
	}
	if rep.Progress.Done != 6 || rep.Progress.Total != 6 {
		t.Errorf("progress %+v", rep.Progress)
	}
}

// TestPurposes uploads good and bad rows of each of the pipeline's purposes through the platform.
func TestPurposes(t *testing.T) {
	env := newEnv(t)
	for _, c := range []struct {
		purpose, good, bad, why string
	}{
		{PurposeInstructions, `{"instruction":"a","input":""}` + "\n" + `{"text":"q","category":"generic"}`, `{"instruction":"a"}` + "\n" + `{"output":"x"}`, "no instruction"},
		{PurposeComparisons, `{"user_input":"q","responses_and_scores":[{"response":"a","score":8,"source":"gpt4"}]}`,
			`{"user_input":"q","responses_and_scores":[{"response":"a","score":"8","source":"gpt4"}]}`, "score"},
		{PurposeABLog, `{"time":"2026-01-01T00:00:00Z","request_id":"x","model":"m","variant":"B","prompt":"p","answer":"a","chosen":0,"n":1}`, `{"answer":"a"}`, "variant"},
		{PurposeAnswers, `{"instruction":"a","output":"b"}`, `{"instruction":"a"}`, "no answer"},
	} {
		env.Upload("good.jsonl", c.purpose, []byte(c.good+"\n"))
		_, err := env.Service.UploadFile(context.Background(), "bad.jsonl", c.purpose, strings.NewReader(c.bad+"\n"))
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Line == 0 || !strings.Contains(pe.Message, c.why) {
			t.Errorf("%s: bad upload: %v", c.purpose, err)
		}
	}
}

// TestAPIKeyNotInStore runs generate-data on the platform with a key in the environment, through a proxy that
// answers 429 (a pause event) and cuts an answer (a retry event), and looks for the key in every byte of the data
// directory (the SQLite store with params, events and results, the output rows, the files).
func TestAPIKeyNotInStore(t *testing.T) {
	srv := teachertest.Serve(t)
	const secret = "sk-proj-Zx81kq0PLm3v"
	t.Setenv("PIPELINE_PLATFORM_KEY", secret)
	drop := teachertest.DropMidResponse(srv.URL, 1)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if n == 1 {
			return teachertest.TooManyRequests(1, "1")(n, w, r)
		}
		return drop(n-1, w, r)
	})
	env := newEnv(t)
	in := env.Upload("in.jsonl", PurposeInstructions, []byte(sixInstructions))
	j := env.Run(TypeGenerateData, map[string]any{"input_file": in.ID, "max_tokens": 8,
		"teacher": map[string]any{"base_url": proxy.URL + "/v1", "model": "llama-gpt4", "api_key_env": "PIPELINE_PLATFORM_KEY",
			"pause_after_s": 0.5, "max_backoff_s": 0.2}})
	var warns int
	for _, e := range env.Events(j.ID) {
		if e.Level == "warn" {
			warns++
		}
	}
	if warns < 2 {
		t.Errorf("want pause and retry events, got %d warnings", warns)
	}
	found := ""
	filepath.WalkDir(env.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(secret)) {
				found = path
			}
		}
		return nil
	})
	if found != "" {
		t.Errorf("the API key is stored in %s", found)
	}
	if !strings.Contains(string(j.Params), "PIPELINE_PLATFORM_KEY") {
		t.Errorf("params %s", j.Params)
	}
}
