package evaluate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestEvaluateThroughFaults asks the questions of one group through a proxy that answers the first two
// requests with 429 and Retry-After: 1 (longer than the endpoint's pause_after_s, so the client pauses) and cuts
// the next two answers in half (a dropped connection), and once more through a clean proxy: the job pauses
// and retries instead of failing, every question is answered, and the answers, judgments and scores are the
// clean run's. The opponent is an endpoint (the clean proxy, other seeds).
func TestEvaluateThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bestofn server")
	}
	srv := teachertest.Serve(t)
	faulty := teachertest.NewProxy(t, srv.URL, teachertest.Flaky(srv.URL))
	clean := teachertest.NewProxy(t, srv.URL, nil)
	evaluateVia := func(base string) (*Report, []map[string]any, []string) {
		dir := t.TempDir()
		files := map[string]string{"file-q": testQuestions(t, dir), "file-opp": testOpponent(t, dir)}
		p := Params{
			QuestionsFile: "file-q",
			Groups: []Group{{Name: "B", Endpoint: &Endpoint{Config: teacher.Config{BaseURL: base + "/v1", Model: "llama-gpt4",
				PauseAfterSeconds: 0.5, MaxRetries: 3}, MaxTokens: 32, Seed: i64(3)}}},
			// The opponent is an endpoint too (the clean proxy in both runs): one sample with other seeds.
			Opponent: Opponent{Name: "one-sample", Endpoint: &Endpoint{Config: teacher.Config{BaseURL: clean.URL + "/v1", Model: "llama-gpt4"},
				MaxTokens: 32, Seed: i64(1003)}},
			Judges: Judges{Rules: &RulesJudge{}},
		}
		p.Bootstrap.Resamples = 500
		e := newFileEnv(t, dir, files)
		rep, err := run(t.Context(), p, e)
		e.close()
		if err != nil {
			t.Fatal(err)
		}
		return rep, readJSONL(t, filepath.Join(dir, "published", "answers.jsonl")), e.events
	}
	got, gotAnswers, events := evaluateVia(faulty.URL)
	want, wantAnswers, _ := evaluateVia(clean.URL)

	st := got.Usage["B"]
	if faulty.Faults.Load() != 4 || st.RateLimited != 2 || st.Pauses < 1 || st.Retries != 2 || st.Requests != 10 || st.Failed != 0 || st.Succeeded != 6 {
		t.Errorf("%d faults; client stats %+v: want 2 rate limits, a pause, 2 retries (the cut answers), 10 requests, 6 answers, no failure", faulty.Faults.Load(), st)
	}
	if !strings.Contains(strings.Join(events, "\n"), "paus") {
		t.Errorf("no pause in the job's events: %q", events)
	}
	g, w := got.Groups[0], want.Groups[0]
	if got.Opponent.Answers != 6 || got.Opponent.Missing != 0 || got.Opponent.MeanWords != want.Opponent.MeanWords || got.Usage["opponent"].Succeeded != 6 {
		t.Errorf("opponent %+v (usage %+v), clean run's %+v", got.Opponent, got.Usage["opponent"], want.Opponent)
	}
	if g.Answers != 6 || g.Missing != 0 || g.Judges["rules"].Relative != w.Judges["rules"].Relative || g.MeanWords != w.MeanWords {
		t.Errorf("through faults %+v %+v, clean %+v %+v", g.SystemInfo, g.Judges["rules"], w.SystemInfo, w.Judges["rules"])
	}
	answer := func(rows []map[string]any) map[string]string {
		m := map[string]string{}
		for _, a := range rows {
			if a["group"] == "B" {
				m[a["question_id"].(string)] = a["answer"].(string)
			}
		}
		return m
	}
	ga, wa := answer(gotAnswers), answer(wantAnswers)
	if len(ga) != 6 {
		t.Fatalf("%d answers of B", len(ga))
	}
	for q, a := range wa {
		if ga[q] != a {
			t.Errorf("question %s: %q through faults, %q clean", q, ga[q], a)
		}
	}
}
