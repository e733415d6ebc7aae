package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
	"github.com/bestofn/bestofn/trainjobs"
)

// ratingProxy stands between the job and a real bestofn teacher. Rating requests (those with the rating system
// message) are forwarded, and the story the server answers is replaced by the next of a list of rater's texts:
// real-looking outputs, some without a usable score. It remembers which text each answer got.
type ratingProxy struct {
	target string
	single []string // texts for one-answer ratings
	pair   []string // texts for pair ratings

	mu    sync.Mutex
	n     int
	given map[string][]string // answer text (single) or "a\x00b" (pair) -> rater texts given
}

func (p *ratingProxy) fault(n int64, w http.ResponseWriter, r *http.Request) bool {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	json.Unmarshal(body, &req)
	if len(req.Messages) != 2 || req.Messages[0].Content != RatingSystem {
		return false // candidate requests go to the server untouched
	}
	resp, err := http.Post(p.target+r.URL.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cc map[string]any
	json.Unmarshal(out, &cc)
	user := req.Messages[1].Content
	key, texts := "", p.single
	if strings.Contains(user, "[The Start of Assistant 1's Answer]") {
		key, texts = between(user, "[The Start of Assistant 1's Answer]\n", "\n[The End of Assistant 1's Answer]")+"\x00"+
			between(user, "[The Start of Assistant 2's Answer]\n", "\n[The End of Assistant 2's Answer]"), p.pair
	} else {
		key = between(user, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")
	}
	p.mu.Lock()
	text := texts[p.n%len(texts)]
	p.n++
	p.given[key] = append(p.given[key], text)
	p.mu.Unlock()
	cc["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] = text
	b, _ := json.Marshal(cc)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return true
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

var singleTexts = []string{
	"8\nThe answer is relevant.", "Score: 6/10\nIt rambles.", "I'd give it a 7 out of 10.", "N/A",
	"评分：9分", "Rating: 3", "7 8\nHard to say.", "**Score:** 5",
}

// TestFeedback: two prompts, candidates from a served bestofn model (one best_of request per prompt), the
// same server's Ollama API, and an answers file; the teacher (a real server whose text a proxy
// replaces with real-looking ratings) rates each alone. Scores in the comparison rows are the parsed ratings;
// unparseable ones are counted and kept with their raw text; pairs follow from the scores.
func TestFeedback(t *testing.T) {
	srv := teachertest.Serve(t)
	rp := &ratingProxy{target: srv.URL, single: singleTexts, given: map[string][]string{}}
	judge := teachertest.NewProxy(t, srv.URL, rp.fault)
	prompts := writeFile(t, "prompts.jsonl", `{"instruction":"Summarize the text.","input":"Tom had a red ball."}
{"instruction":"Name a color."}
`)
	answers := writeFile(t, "answers.jsonl", `{"instruction":"Name a color.","output":"Blue."}
{"instruction":"Summarize the text.","input":"Tom had a red ball.","output":"Tom owned a red ball."}
{"instruction":"Not one of the prompts.","output":"ignored"}
`)
	params := FeedbackParams{
		InputPath: prompts, K: 1, MaxTokens: 16, Seed: 3,
		Sources: []SourceSpec{
			{Name: "sft", Kind: SourceBestofn, K: 3, Endpoint: &teacher.Config{BaseURL: srv.URL + "/v1", Model: "llama-gpt4"}},
			{Name: "ollama", Kind: SourceOllama, Endpoint: &teacher.Config{BaseURL: srv.URL, Model: "llama-gpt4"}},
			{Name: "gpt4", Kind: SourceFile, Path: answers},
		},
		Teacher:         &teacher.Config{BaseURL: judge.URL + "/v1", Model: "llama-gpt4"},
		RatingMaxTokens: 2, // the proxy replaces the text anyway
	}
	r := newFileRun(t, t.TempDir(), 1, params)
	if err := feedback(context.Background(), r, Options{}); err != nil {
		t.Fatal(err)
	}
	var res FeedbackResult
	json.Unmarshal(r.result, &res)
	items := lines[FeedbackRow](t, r.files["items.jsonl"])
	if len(items) != 2 || res.Prompts != 2 || res.Candidates != 2*4+2 {
		t.Fatalf("result %+v", res)
	}
	wantUnparsed := 0
	for _, row := range items {
		bySource := map[string]int{}
		for _, c := range row.Candidates {
			bySource[c.Source]++
			got := rp.given[c.Response]
			if len(got) == 0 {
				t.Fatalf("candidate %q was not rated", c.Response)
			}
			v, err := ParseRating(got[0])
			if err != nil {
				wantUnparsed++
				if c.Score != nil {
					t.Errorf("%q rated %q has score %v", c.Response, got[0], *c.Score)
				}
			} else if c.Score == nil || *c.Score != v {
				t.Errorf("%q rated %q: score %v, want %v", c.Response, got[0], c.Score, v)
			}
		}
		if bySource["sft"] != 3 || bySource["ollama"] != 1 || bySource["gpt4"] != 1 {
			t.Errorf("prompt %d candidates by source %v", row.Index, bySource)
		}
		var bestofnCalls int
		for _, call := range row.Calls {
			if call.Source == "sft" {
				bestofnCalls++
				if len(call.Raw) == 0 || call.Kind != "" {
					t.Errorf("bestofn call %+v", call)
				}
			}
		}
		if bestofnCalls != 1 {
			t.Errorf("prompt %d: %d bestofn requests, want one with best_of 3", row.Index, bestofnCalls)
		}
		for _, j := range row.Ratings.Judgments {
			if len(j.Raw) == 0 || j.Text == "" {
				t.Errorf("judgment without raw text: %+v", j)
			}
		}
	}
	if items[1].Candidates[len(items[1].Candidates)-1].Response != "Blue." || items[0].UserInput != "Summarize the text.\n\nTom had a red ball." {
		t.Errorf("file answers not attached: %+v", items[1].Candidates)
	}
	if res.UnparseableRatings != wantUnparsed || res.Unrated != wantUnparsed || res.Rated != res.Candidates-wantUnparsed || wantUnparsed == 0 {
		t.Errorf("unparseable %d (want %d), unrated %d, rated %d", res.UnparseableRatings, wantUnparsed, res.Unrated, res.Rated)
	}
	failed := lines[map[string]any](t, r.files["rating_failures.jsonl"])
	if len(failed) != wantUnparsed {
		t.Errorf("%d rating failures kept, want %d", len(failed), wantUnparsed)
	}
	for _, f := range failed {
		js, _ := json.Marshal(f["judgments"])
		if !strings.Contains(string(js), `"failure":"parse"`) || !strings.Contains(string(js), `"text":`) {
			t.Errorf("failure without its raw judgment: %s", js)
		}
	}
	cmp := lines[ComparisonRow](t, r.files["comparisons.jsonl"])
	prefs := lines[PreferenceRow](t, r.files["preferences.jsonl"])
	var wantPairs []PreferenceRow
	for _, c := range cmp {
		for _, rs := range c.ResponsesAndScores {
			if rs.Source == "" || math.IsNaN(rs.Score) {
				t.Errorf("comparison %+v", rs)
			}
		}
		wantPairs = append(wantPairs, Pairs(c)...)
	}
	if len(prefs) != len(wantPairs) || len(prefs) != res.Pairs || len(prefs) == 0 {
		t.Errorf("%d pairs, want %d (result %d)", len(prefs), len(wantPairs), res.Pairs)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(r.files["comparisons.jsonl"]), []byte("\n")) {
		if err := validateComparison(line); err != nil {
			t.Errorf("comparison row fails its own purpose: %v", err)
		}
	}
	for _, line := range bytes.Split(bytes.TrimSpace(r.files["preferences.jsonl"]), []byte("\n")) {
		if _, err := trainjobs.ParsePreference(line); err != nil {
			t.Errorf("preference row fails its own purpose: %v", err)
		}
	}
}

// TestFeedbackPairwise: pairwise mode asks for every ordered pair (both orders) and averages each answer's
// scores over the judgments it appears in.
func TestFeedbackPairwise(t *testing.T) {
	srv := teachertest.Serve(t)
	rp := &ratingProxy{target: srv.URL, pair: []string{"8 6", "Assistant 1: 5\nAssistant 2: 9", "7 7", "N/A"}, given: map[string][]string{}}
	judge := teachertest.NewProxy(t, srv.URL, rp.fault)
	prompts := writeFile(t, "prompts.jsonl", `{"instruction":"Tell me a story about a cat."}`+"\n")
	r := newFileRun(t, t.TempDir(), 1, FeedbackParams{InputPath: prompts, MaxTokens: 16, Mode: ModePairwise,
		Sources: []SourceSpec{{Kind: SourceOpenAI, K: 3, Endpoint: &teacher.Config{BaseURL: srv.URL + "/v1", Model: "llama-gpt4"}}},
		Teacher: &teacher.Config{BaseURL: judge.URL + "/v1", Model: "llama-gpt4"}, RatingMaxTokens: 2})
	if err := feedback(context.Background(), r, Options{}); err != nil {
		t.Fatal(err)
	}
	row := lines[FeedbackRow](t, r.files["items.jsonl"])[0]
	if len(row.Ratings.Judgments) != 6 {
		t.Fatalf("%d judgments, want 3*2 ordered pairs", len(row.Ratings.Judgments))
	}
	sums, counts := make([]float64, 3), make([]int, 3)
	for _, j := range row.Ratings.Judgments {
		a, b := j.Answers[0], j.Answers[1]
		text := rp.given[row.Candidates[a].Response+"\x00"+row.Candidates[b].Response]
		if len(text) == 0 || j.Text != text[0] {
			t.Fatalf("judgment %+v not the one given (%q)", j, text)
		}
		if sa, sb, err := ParsePairRating(text[0]); err == nil {
			sums[a], sums[b] = sums[a]+sa, sums[b]+sb
			counts[a]++
			counts[b]++
		} else if j.Failure != "parse" {
			t.Errorf("unparseable %q not marked", text[0])
		}
	}
	for i, c := range row.Candidates {
		switch {
		case counts[i] == 0 && c.Score != nil:
			t.Errorf("candidate %d: score %v without a parsed judgment", i, *c.Score)
		case counts[i] > 0 && (c.Score == nil || math.Abs(*c.Score-sums[i]/float64(counts[i])) > 1e-12):
			t.Errorf("candidate %d: score %v, want mean %v", i, c.Score, sums[i]/float64(counts[i]))
		}
	}
}

// abTraffic sends each prompt to both variants of the server's experiment and returns the log's path.
func abTraffic(t *testing.T, prompts []string, repeat int) (*teachertest.Server, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "ab.jsonl")
	srv := teachertest.Serve(t, "--ab-log", log)
	for rep := range repeat {
		for i, p := range prompts {
			for _, variant := range []string{"B", "R1"} {
				body := fmt.Sprintf(`{"model":"llama-gpt4:ab","messages":[{"role":"user","content":%q}],"max_tokens":24,"seed":%d}`, p, i+100*rep)
				req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("X-Bestofn-Variant", variant)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("A/B request: HTTP %d", resp.StatusCode)
				}
			}
		}
	}
	// The server writes its A/B log off the request path (a group-committing writer), so the last records can
	// land a moment after their responses: wait for all of them.
	want := len(prompts) * repeat * 2
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, _, err := ReadABLogFile(log)
		if err == nil && len(recs) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A/B log holds %d records (%v) 10 s after the last response, want %d", len(recs), err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return srv, log
}

func tinyRM(t *testing.T) string {
	return filepath.Join(teachertest.RepoRoot(t), "reward", "testdata", "tiny-rm")
}

// TestFeedbackFromABLog turns a real server's A/B log into comparisons rated by a reward model: every logged
// answer is a candidate of its prompt labelled by variant, scored as the reward model scores it.
func TestFeedbackFromABLog(t *testing.T) {
	prompts := []string{"Tell me a story.", "What is a cat?", "Say hello."}
	_, log := abTraffic(t, prompts, 1)
	r := newFileRun(t, t.TempDir(), 1, FeedbackParams{ABLog: log, Rater: "scorer", Scorer: &ScorerSpec{Kind: ScorerRewardModel, Path: tinyRM(t), Runtime: "go"}})
	if err := (feedbackType{}).Validate(context.Background(), r.job.Params, nil); err != nil {
		t.Fatal(err)
	}
	if err := feedback(context.Background(), r, Options{}); err != nil {
		t.Fatal(err)
	}
	cmp := lines[ComparisonRow](t, r.files["comparisons.jsonl"])
	if len(cmp) != 3 {
		t.Fatalf("%d comparison rows, want one per prompt", len(cmp))
	}
	rm, err := reward.Load(tinyRM(t), reward.Options{Runtime: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	for i, c := range cmp {
		if c.UserInput != prompts[i] || len(c.ResponsesAndScores) != 2 || c.ResponsesAndScores[0].Source != "B" || c.ResponsesAndScores[1].Source != "R1" {
			t.Fatalf("row %d: %+v", i, c)
		}
		want, err := rm.Score(context.Background(), c.UserInput, []string{c.ResponsesAndScores[0].Response, c.ResponsesAndScores[1].Response})
		if err != nil {
			t.Fatal(err)
		}
		for k, rs := range c.ResponsesAndScores {
			if math.Abs(rs.Score-float64(want[k])) > 1e-6 {
				t.Errorf("row %d %s: score %v, reward model says %v", i, rs.Source, rs.Score, want[k])
			}
		}
	}
	// The rule scorer is a rater too.
	rules := newFileRun(t, t.TempDir(), 1, FeedbackParams{ABLog: log, Rater: "scorer", Scorer: &ScorerSpec{Kind: ScorerRules}})
	if err := feedback(context.Background(), rules, Options{}); err != nil {
		t.Fatal(err)
	}
	var pe *jobs.ParamError
	bad := json.RawMessage(`{"ab_log":"` + log + `","rater":"scorer","scorer":{"kind":"vibes"}}`)
	if err := (feedbackType{}).Validate(context.Background(), bad, nil); !errors.As(err, &pe) || pe.Field != "scorer.kind" {
		t.Errorf("unknown scorer: %v", err)
	}
}

func TestPairs(t *testing.T) {
	c := ComparisonRow{UserInput: "q", ResponsesAndScores: []ScoredReply{
		{"a", 8, "gpt4"}, {"b", 6, "davinci"}, {"c", 8, "icm"}, {"a", 3, "dup-text"},
	}}
	got := Pairs(c)
	want := []PreferenceRow{
		{"q", "a", "b", 2}, // a-c tie: no pair; a-a same text: no pair
		{"q", "c", "b", 2}, {"q", "b", "a", 3}, {"q", "c", "a", 5},
	}
	if len(got) != len(want) {
		t.Fatalf("pairs %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("pair %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestFeedbackRetriesFailedPrompts: a prompt whose candidate request fails is kept in failures.jsonl and
// counted, not rated; the job's next attempt asks only that prompt again.
func TestFeedbackRetriesFailedPrompts(t *testing.T) {
	srv := teachertest.Serve(t)
	var failing atomic.Bool
	failing.Store(true)
	rec := &recorder{}
	source := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		rec.fault(n, w, r)
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if failing.Load() && bytes.Contains(b, []byte("Name a color.")) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	prompts := writeFile(t, "prompts.jsonl", `{"instruction":"Say hello."}`+"\n"+`{"instruction":"Name a color."}`+"\n")
	params := FeedbackParams{InputPath: prompts, K: 2, MaxTokens: 8, Rater: "scorer", Scorer: &ScorerSpec{Kind: ScorerRules},
		Sources: []SourceSpec{{Kind: SourceOpenAI, Endpoint: &teacher.Config{BaseURL: source.URL + "/v1", Model: "llama-gpt4", MaxRetries: -1}}}}
	dir := t.TempDir()
	first := newFileRun(t, dir, 1, params)
	if err := feedback(context.Background(), first, Options{}); err != nil {
		t.Fatal(err)
	}
	var res FeedbackResult
	json.Unmarshal(first.result, &res)
	if res.Prompts != 2 || res.FailedPrompts != 1 || res.SourceFailures != 2 || res.Comparisons != 1 {
		t.Errorf("first attempt: %+v", res)
	}
	failed := lines[FeedbackRow](t, first.files["failures.jsonl"])
	if len(failed) != 1 || failed[0].UserInput != "Name a color." || !strings.Contains(failed[0].Calls[0].Error, "503") {
		t.Errorf("failures %+v", failed)
	}
	failing.Store(false)
	before := len(rec.userTexts())
	second := newFileRun(t, dir, 2, params)
	if err := feedback(context.Background(), second, Options{}); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(second.result, &res)
	if res.FailedPrompts != 0 || res.Comparisons != 2 {
		t.Errorf("second attempt: %+v", res)
	}
	for _, text := range rec.userTexts()[before:] {
		if text != "Name a color." {
			t.Errorf("asked %q again", text)
		}
	}
	if got := len(rec.userTexts()) - before; got != 2 {
		t.Errorf("second attempt sent %d requests, want the 2 candidates of the failed prompt", got)
	}
}
