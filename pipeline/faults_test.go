package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestFeedbackThroughFaults asks feedback's candidates of a real bestofn through a proxy that answers the first
// two requests with 429 and Retry-After: 1 (over pause_after_s: the client pauses) and cuts the next two answers
// in half, and once more through a clean proxy: nothing fails, and comparisons.jsonl and preferences.jsonl are
// byte for byte the clean run's (rated by the rule checks, so the ratings depend on the candidates alone).
func TestFeedbackThroughFaults(t *testing.T) {
	srv := teachertest.Serve(t)
	faulty := teachertest.NewProxy(t, srv.URL, teachertest.Flaky(srv.URL))
	clean := teachertest.NewProxy(t, srv.URL, nil)
	prompts := writeFile(t, "prompts.jsonl", `{"instruction":"Write a story about a cat named Tom in under 20 words."}`+"\n"+
		`{"instruction":"Tell a story that mentions a ball."}`+"\n")
	feedbackVia := func(base string) (*fileRun, FeedbackResult) {
		r := newFileRun(t, t.TempDir(), 1, FeedbackParams{InputPath: prompts, K: 3, MaxTokens: 24, Seed: 7,
			Sources: []SourceSpec{{Name: "story", Kind: SourceOpenAI, Endpoint: &teacher.Config{BaseURL: base + "/v1", Model: "llama-gpt4",
				PauseAfterSeconds: 0.5, MaxRetries: 3}}},
			Rater: "scorer", Scorer: &ScorerSpec{Kind: ScorerRules}})
		if err := feedback(context.Background(), r, Options{}); err != nil {
			t.Fatal(err)
		}
		var res FeedbackResult
		json.Unmarshal(r.result, &res)
		return r, res
	}
	got, gotRes := feedbackVia(faulty.URL)
	want, _ := feedbackVia(clean.URL)
	if faulty.Faults.Load() != 4 || gotRes.SourceFailures != 0 || gotRes.FailedPrompts != 0 || gotRes.Candidates != 6 || gotRes.Comparisons != 2 {
		t.Errorf("%d faults; result %+v", faulty.Faults.Load(), gotRes)
	}
	for _, name := range []string{"comparisons.jsonl", "preferences.jsonl"} {
		if len(want.files[name]) == 0 || !bytes.Equal(got.files[name], want.files[name]) {
			t.Errorf("%s through faults:\n%s\nclean:\n%s", name, got.files[name], want.files[name])
		}
	}
	paused := false
	for _, ev := range got.events {
		paused = paused || bytes.Contains([]byte(ev.Message), []byte("paus"))
	}
	if !paused {
		t.Errorf("no pause event: %+v", got.events)
	}
}

// TestABReportThroughFaults judges an A/B log with a teacher behind a proxy that answers the first two rating
// requests with 429 and Retry-After: 1 (a pause) and cuts the next two answers in half; the teacher is a real
// bestofn whose text a second proxy replaces with a rating that depends on the answer alone (its length). The
// report's scores and win rates equal those of a run without the faults, and nothing is left unjudged.
func TestABReportThroughFaults(t *testing.T) {
	srv := teachertest.Serve(t)
	judge := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.Unmarshal(body, &req)
		resp, err := http.Post(srv.URL+r.URL.Path, "application/json", bytes.NewReader(body))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		var cc map[string]any
		json.NewDecoder(resp.Body).Decode(&cc)
		resp.Body.Close()
		answer := between(req.Messages[len(req.Messages)-1].Content, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
		cc["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] = fmt.Sprint(1 + len(answer)%10)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(cc)
		return true
	})
	faulty := teachertest.NewProxy(t, judge.URL, teachertest.Flaky(judge.URL))
	var log strings.Builder
	for i := range 6 {
		rec, _ := json.Marshal(map[string]any{"variant": []string{"B", "R1"}[i%2], "prompt": abPrompts[i%5],
			"answer": strings.Repeat("word ", 1+i*3)})
		log.Write(append(rec, '\n'))
	}
	path := writeFile(t, "ab.jsonl", log.String())
	report := func(base string) *ABReport {
		rep, err := ABReportFor(context.Background(), ABReportParams{ABLog: path, Seed: 3, RatingMaxTokens: 2,
			Teacher: &teacher.Config{BaseURL: base + "/v1", Model: "llama-gpt4", PauseAfterSeconds: 0.5, MaxRetries: 3, Concurrency: 2}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	start := time.Now()
	got := report(faulty.URL)
	mid := time.Now()
	want := report(judge.URL)
	t.Logf("through faults %v, clean %v", mid.Sub(start).Round(time.Millisecond), time.Since(mid).Round(time.Millisecond))
	if faulty.Faults.Load() != 4 {
		t.Errorf("%d faults, want 4", faulty.Faults.Load())
	}
	for i, v := range got.Variants {
		w := want.Variants[i]
		if v.Judged != 3 || v.Unjudged != 0 || v.MeanScore == nil || w.MeanScore == nil || *v.MeanScore != *w.MeanScore {
			t.Errorf("%s through faults %+v, clean %+v", v.Variant, v, w)
		}
	}
	if got.WinRate == nil || want.WinRate == nil || *got.WinRate != *want.WinRate || got.Paired == nil || *got.Paired != *want.Paired {
		t.Errorf("win rates through faults %+v %+v, clean %+v %+v", got.WinRate, got.Paired, want.WinRate, want.Paired)
	}
}
