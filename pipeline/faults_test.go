package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestFeedbackThroughFaults asks feedback's candidates of a real bestofn through a proxy that answers the first
// two requests with 429 and Retry-After: 1 (over pause_after_s: the client pauses) and cuts the next two answers
// in half, and once more through a clean proxy: nothing fails, and comparisons.jsonl and preferences.jsonl are
// byte for byte the clean run's (rated by the rule checks, so the ratings depend on the candidates alone).
func TestFeedbackThroughFaults(t *testing.T) {
	srv := teachertest.Serve(t)
	tooMany := teachertest.TooManyRequests(2, "1")
	drop := teachertest.DropMidResponse(srv.URL, 4)
	faulty := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n <= 2 {
			return tooMany(n, w, r)
		}
		return drop(n, w, r)
	})
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
