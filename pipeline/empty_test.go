package pipeline

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// emptyAnswer writes an OpenAI chat completion whose content is empty, as a hosted API answers a request its
// content filter stopped (finish_reason "content_filter") or a model that stops at once.
func emptyAnswer(w http.ResponseWriter, finish string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"chatcmpl-empty","object":"chat.completion","created":1,"model":"llama-gpt4","choices":[{"index":0,`+
		`"message":{"role":"assistant","content":""},"finish_reason":"`+finish+`"}],"usage":{"prompt_tokens":40,"completion_tokens":0,"total_tokens":40}}`)
}

// TestGenerateDataEmptyAnswer runs generate-data on the job platform (which checks each published file against
// its purpose) with a teacher that answers one instruction with an empty text and translates another to
// nothing: those two are failures with the teacher's raw response, the others are published, and the job
// succeeds instead of failing at the end because sft-data refuses an empty output.
func TestGenerateDataEmptyAnswer(t *testing.T) {
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte("Name a color.")) {
			emptyAnswer(w, "content_filter")
			return true
		}
		return false
	})
	env := newEnv(t)
	f := env.Upload("in.jsonl", PurposeInstructions, []byte(sixInstructions))
	j := env.Run(TypeGenerateData, map[string]any{"input_file": f.ID, "max_tokens": 8, "seed": 1,
		"teacher": teacher.Config{BaseURL: proxy.URL + "/v1", Model: "llama-gpt4"}})
	var res GenerateResult
	json.Unmarshal(j.Result, &res)
	if res.Succeeded != 4 || res.Failed != 1 || res.FailuresByKind[KindEmpty] != 1 {
		t.Errorf("result %+v", res)
	}
	files, _ := outputsByName(t, env, j)
	fails := lines[FailureRow](t, files["failures.jsonl"])
	if len(fails) != 1 || fails[0].Instruction != "Name a color." || fails[0].Kind != KindEmpty || !strings.Contains(string(fails[0].Raw), "content_filter") {
		t.Errorf("failures %+v", fails)
	}
	var data []alpacaRow
	json.Unmarshal(files["alpaca_gpt4_data.json"], &data)
	for _, d := range data {
		if strings.TrimSpace(d.Output) == "" || d.Instruction == "Name a color." {
			t.Errorf("row %+v published", d)
		}
	}

	// In Chinese, an empty translation is a failure of the translate stage, not an empty instruction.
	zh := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte("Simplified Chinese")) && bytes.Contains(b, []byte("Tell me about dogs.")) {
			emptyAnswer(w, "stop")
			return true
		}
		return false
	})
	j = env.Run(TypeGenerateData, map[string]any{"input_file": f.ID, "max_tokens": 8, "seed": 1, "language": "zh",
		"teacher": teacher.Config{BaseURL: zh.URL + "/v1", Model: "llama-gpt4"}})
	res = GenerateResult{}
	json.Unmarshal(j.Result, &res)
	files, _ = outputsByName(t, env, j)
	fails = lines[FailureRow](t, files["failures.jsonl"])
	if res.Succeeded != 4 || len(fails) != 1 || fails[0].Stage != "translate" || fails[0].Kind != KindEmpty {
		t.Errorf("zh: result %+v, failures %+v", res, fails)
	}
}

// TestFeedbackEmptyCandidate runs feedback on the platform with a source that answers some seeds with an empty
// text: the empty answers are counted and kept in items.jsonl, but no comparison or preference row holds
// one (train-reward refuses empty texts), and the job publishes the rest instead of failing.
func TestFeedbackEmptyCandidate(t *testing.T) {
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var req struct{ Seed int64 }
		json.Unmarshal(b, &req)
		if req.Seed%3 == 1 {
			emptyAnswer(w, "stop")
			return true
		}
		return false
	})
	env := newEnv(t)
	f := env.Upload("in.jsonl", PurposeInstructions, []byte("{\"instruction\":\"Tell me a story.\"}\n{\"instruction\":\"What is a cat?\"}\n"))
	j := env.Run(TypeFeedback, map[string]any{"input_file": f.ID, "k": 3, "seed": 0, "max_tokens": 12,
		"sources": []map[string]any{{"name": "sft", "kind": "openai", "endpoint": teacher.Config{BaseURL: proxy.URL + "/v1", Model: "llama-gpt4"}}},
		"rater":   "scorer", "scorer": map[string]any{"kind": ScorerRewardModel, "path": tinyRM(t), "runtime": "go"}})
	if j.Status != jobs.StatusSucceeded {
		t.Fatalf("job %s: %+v", j.Status, j.Error)
	}
	var res FeedbackResult
	json.Unmarshal(j.Result, &res)
	if res.Candidates != 6 || res.EmptyResponses == 0 || res.Pairs == 0 {
		t.Errorf("result %+v", res)
	}
	files, _ := outputsByName(t, env, j)
	for _, c := range lines[ComparisonRow](t, files["comparisons.jsonl"]) {
		for _, rs := range c.ResponsesAndScores {
			if strings.TrimSpace(rs.Response) == "" {
				t.Errorf("comparison %q holds an empty response", c.UserInput)
			}
		}
	}
	for _, p := range lines[PreferenceRow](t, files["preferences.jsonl"]) {
		if strings.TrimSpace(p.Chosen) == "" || strings.TrimSpace(p.Rejected) == "" {
			t.Errorf("pair %+v has an empty side", p)
		}
	}
	empty := 0
	for _, row := range lines[FeedbackRow](t, files["items.jsonl"]) {
		for _, c := range row.Candidates {
			if c.Response == "" {
				empty++
			}
		}
	}
	if empty != res.EmptyResponses {
		t.Errorf("items.jsonl keeps %d empty candidates, the result counts %d", empty, res.EmptyResponses)
	}
}
