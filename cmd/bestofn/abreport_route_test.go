package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bestofn/bestofn/pipeline"
	"github.com/bestofn/bestofn/rules"
)

// TestProcessABReportRoute drives GET /admin/v1/ab/report on a real `bestofn serve --ab-log`: A/B traffic to
// stories260K (B one sample, R1 best of 5 by tiny-rm), then the report judged by the rule checks. The win
// counts are recomputed here from the log's answers (rules.Scorer on each answer, every R1 x B pair
// compared), the latency counts and means from the server's own /metrics scraped over HTTP; the log as an
// uploaded file gives the same report; bad queries are 400s naming the parameter, no token a 401.
func TestProcessABReportRoute(t *testing.T) {
	dir := t.TempDir()
	abLog := filepath.Join(dir, "ab.jsonl")
	p := startServe(t, filepath.Join(dir, "data"), tokenEnv, "--reward-model", serveTestReward, "--ab-log", abLog)
	const perVariant = 4
	prompt := "Write a story about a cat named Tom in under 12 words."
	for i := range perVariant {
		for _, v := range []string{"B", "R1"} {
			code, got := postJSON(t, p.url+"/v1/chat/completions", map[string]string{"X-Bestofn-Variant": v}, map[string]any{
				"model": "llama-gpt4:ab", "messages": []map[string]string{{"role": "user", "content": prompt}},
				"max_tokens": 4 + 12*i, "seed": i + 1}, nil)
			if code != http.StatusOK || got != v {
				t.Fatalf("request %d %s: status %d, variant %q", i, v, code, got)
			}
		}
	}
	var recs []pipeline.ABRecord
	waitFor(t, "the A/B log's records", 20*time.Second, func() bool {
		var err error
		recs, _, err = pipeline.ReadABLogFile(abLog)
		return err == nil && len(recs) == 2*perVariant
	})

	// The expected win counts, from the log's answers scored here.
	sc := &rules.Scorer{}
	scores := map[string][]float32{}
	for _, r := range recs {
		s, err := sc.Score(context.Background(), r.Prompt, []string{r.Answer})
		if err != nil {
			t.Fatal(err)
		}
		scores[r.Variant] = append(scores[r.Variant], s[0])
	}
	var wins, ties, losses int64
	for _, a := range scores["R1"] {
		for _, b := range scores["B"] {
			switch {
			case a > b:
				wins++
			case a == b:
				ties++
			default:
				losses++
			}
		}
	}
	wantValue := (float64(wins) + float64(ties)/2) / float64(wins+ties+losses)

	// The server's own histograms, scraped over HTTP and parsed here.
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	type hist struct{ count, sum float64 }
	own := map[string]hist{}
	for _, m := range fams[pipeline.LatencyMetric].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["model"] == "llama-gpt4:ab" {
			h := own[labels["variant"]]
			h.count += float64(m.GetHistogram().GetSampleCount())
			h.sum += m.GetHistogram().GetSampleSum()
			own[labels["variant"]] = h
		}
	}

	c := p.client()
	check := func(what string, q url.Values) pipeline.ABReport {
		t.Helper()
		var rep pipeline.ABReport
		if err := c.ABReport(context.Background(), q, &rep); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rep.Object != "ab_report" || rep.Log.Used != 2*perVariant || len(rep.Variants) != 2 || rep.Variants[0].Variant != "R1" ||
			rep.Variants[0].Judged != perVariant || rep.Variants[1].Judged != perVariant {
			t.Errorf("%s: report %+v", what, rep)
		}
		if w := rep.WinRate; w == nil || w.Wins != wins || w.Ties != ties || w.Losses != losses || w.N != perVariant*perVariant ||
			math.Abs(w.Value-wantValue) > 1e-12 || w.CI95[0] > w.Value || w.CI95[1] < w.Value {
			t.Errorf("%s: win rate %+v, want %d wins %d ties %d losses = %.4f", what, rep.WinRate, wins, ties, losses, wantValue)
		}
		if rep.Paired == nil || rep.Paired.N != 1 {
			t.Errorf("%s: paired %+v, want one prompt both variants answered", what, rep.Paired)
		}
		if rep.Latency == nil || rep.Latency.Source != "metrics" {
			t.Fatalf("%s: latency %+v (warnings %q)", what, rep.Latency, rep.Warnings)
		}
		for _, v := range rep.Variants {
			h := own[v.Variant]
			if v.Latency == nil || float64(v.Latency.Count) != h.count || h.count != perVariant ||
				math.Abs(v.Latency.MeanS-h.sum/h.count) > 1e-9 || v.Latency.P50S <= 0 || v.Latency.P99S < v.Latency.P50S {
				t.Errorf("%s: %s latency %+v, /metrics has count %v sum %v", what, v.Variant, v.Latency, h.count, h.sum)
			}
		}
		return rep
	}
	// The server's own --ab-log, judge chosen by scorer.kind alone.
	rep := check("default log", url.Values{"scorer.kind": {"rules"}, "model": {"llama-gpt4:ab"}})
	t.Logf("win rate %+v; latency %+v", *rep.WinRate, *rep.Latency)
	if rep.Judge["scorer"] != pipeline.ScorerRules {
		t.Errorf("judge %v", rep.Judge)
	}
	// The log as an uploaded file.
	b, err := os.ReadFile(abLog)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.UploadFile(context.Background(), "ab.jsonl", "ab-log", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	check("uploaded log", url.Values{"ab_log": {f.ID}, "judge": {"scorer"}, "scorer.kind": {"rules"}, "seed": {"3"}})
	// A path on the server, and limit/since selecting records.
	var small pipeline.ABReport
	if err := c.ABReport(context.Background(), url.Values{"ab_log": {abLog}, "scorer.kind": {"rules"}, "limit": {"1"}}, &small); err != nil {
		t.Fatal(err)
	}
	if small.Log.Used != 2 || small.WinRate == nil || small.WinRate.N != 1 {
		t.Errorf("limit 1: used %d, win rate %+v", small.Log.Used, small.WinRate)
	}

	u := p.url + "/admin/v1/ab/report"
	code, body := rawCall(t, "GET", u+"?scorer.kind=rules", "", "", nil)
	wantAPIError(t, "no token", code, body, http.StatusUnauthorized, "-")
	code, body = rawCall(t, "GET", u+"?scorer.kind=rules", "wrong", "", nil)
	wantAPIError(t, "wrong token", code, body, http.StatusUnauthorized, "-")
	for _, tc := range []struct{ query, param string }{
		{"judge=vibes", "judge"},
		{"scorer.kind=rules&limit=ten", "limit"},
		{"scorer.kind=rules&limit=1&limit=2", "limit"},
		{"scorer.kind=rules&limit=-1", "limit"},
		{"scorer.kind=rules&colour=blue", "colour"},
		{"scorer.kind=nope", "scorer.kind"},
		{"scorer.kind=reward-model", "scorer.path"},
		{"scorer.kind=reward-model&scorer.path=" + url.QueryEscape(dir), "scorer"},
		{"scorer.kind=reward-model&scorer.model=nope", "scorer.model"},
		{"scorer.kind=rules&ab_log=" + url.QueryEscape(filepath.Join(dir, "absent.jsonl")), "ab_log"},
		{"scorer.kind=rules&since=yesterday", "since"},
		{"scorer.kind=rules&treatment=B", "control"},
		{"scorer.kind=rules&metrics_url=ftp://x", "metrics_url"},
		{"", "teacher"},
		{"teacher.base_url=http://127.0.0.1:1/v1", "teacher.model"},
		{"teacher.base_url=http://127.0.0.1:1/v1&teacher.model=m&teacher.api_key_env=BESTOFN_TEST_UNSET_KEY", "teacher.api_key_env"},
		{"teacher.base_url=http://127.0.0.1:1/v1&teacher.model=m&teacher.concurrency=many", "teacher.concurrency"},
		{"scorer.kind=rules&scorer.params=" + url.QueryEscape(`[1]`), "scorer.params"},
	} {
		code, body := rawCall(t, "GET", u+"?"+tc.query, testAdminToken, "", nil)
		wantAPIError(t, tc.query, code, body, http.StatusBadRequest, tc.param)
	}
	if code, body := rawCall(t, "POST", u, testAdminToken, "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d %s", code, body)
	}

	// A server that writes no A/B log wants one named.
	p.kill()
	q := startServe(t, filepath.Join(dir, "data2"), tokenEnv)
	code, body = rawCall(t, "GET", q.url+"/admin/v1/ab/report?scorer.kind=rules", testAdminToken, "", nil)
	wantAPIError(t, "no --ab-log", code, body, http.StatusBadRequest, "ab_log")
	var er struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(body, &er); !strings.Contains(er.Error.Message, "--ab-log") {
		t.Errorf("no --ab-log: %s", body)
	}
}
