package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/server"
	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

var abPrompts = []string{"Tell me a story.", "What is a cat?", "Say hello.", "Name a dog.", "Why is the sky blue?"}

// TestABReport judges a real server's A/B traffic with a reward model and reads the latency of each variant
// from the server's own /metrics. The quantiles are checked against a real Prometheus's histogram_quantile
// over the same histogram, the win rates against their definitions computed from the stored judgments.
func TestABReport(t *testing.T) {
	srv, log := abTraffic(t, abPrompts, 2)
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	recs, skipped, err := ReadABLog(f)
	f.Close()
	if err != nil || skipped != 0 || len(recs) != 20 {
		t.Fatalf("log: %d records, %d skipped, %v", len(recs), skipped, err)
	}
	rm, err := reward.Load(tinyRM(t), reward.Options{Runtime: "go"})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	store := NewMemoryRows()
	rep, err := BuildABReport(context.Background(), ABReportConfig{Records: recs, Model: "llama-gpt4:ab",
		Rater: &ScorerRater{Scorer: rm, Name: "tiny-rm"}, MetricsURL: srv.URL, Seed: 1, Ratings: store})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Log.Used != 20 || len(rep.Variants) != 2 || rep.Variants[0].Variant != "R1" || rep.Variants[0].Answers != 10 || rep.Variants[1].Judged != 10 {
		t.Fatalf("report %+v", rep)
	}
	// Win rates from their definitions.
	scores := map[string][]float64{}
	byPrompt := map[string]map[string][]float64{}
	for _, k := range store.Keys() {
		raw, _ := store.Get(k)
		var r abRating
		json.Unmarshal(raw, &r)
		rec := recs[r.Record]
		want, _ := rm.Score(context.Background(), rec.Prompt, []string{rec.Answer})
		if r.Score == nil || math.Abs(*r.Score-float64(want[0])) > 1e-6 {
			t.Fatalf("record %d: score %v, reward model %v", r.Record, r.Score, want[0])
		}
		scores[r.Variant] = append(scores[r.Variant], *r.Score)
		if byPrompt[rec.Prompt] == nil {
			byPrompt[rec.Prompt] = map[string][]float64{}
		}
		byPrompt[rec.Prompt][r.Variant] = append(byPrompt[rec.Prompt][r.Variant], *r.Score)
	}
	var wins, ties float64
	for _, a := range scores["R1"] {
		for _, b := range scores["B"] {
			switch {
			case a > b:
				wins++
			case a == b:
				ties++
			}
		}
	}
	if w := rep.WinRate; w == nil || math.Abs(w.Value-(wins+ties/2)/100) > 1e-12 || w.N != 100 || w.Wins != int64(wins) || w.Ties != int64(ties) ||
		w.CI95[0] > w.Value || w.CI95[1] < w.Value {
		t.Errorf("unpaired win rate %+v, want %v", rep.WinRate, (wins+ties/2)/100)
	}
	var pairedWins float64
	for _, m := range byPrompt {
		d := mean(m["R1"]) - mean(m["B"])
		switch {
		case d > 0:
			pairedWins++
		case d == 0:
			pairedWins += 0.5
		}
	}
	if p := rep.Paired; p == nil || p.N != 5 || math.Abs(p.Value-pairedWins/5) > 1e-12 {
		t.Errorf("paired %+v, want %v of 5", rep.Paired, pairedWins/5)
	}
	for _, v := range rep.Variants {
		if v.Latency == nil || v.Latency.Source != "metrics" || v.Latency.Count != 10 || !(v.Latency.P50S > 0) || v.Latency.P99S < v.Latency.P50S {
			t.Errorf("%s latency %+v", v.Variant, v.Latency)
		}
	}
	if rep.Latency == nil || !(rep.Latency.RatioMean > 0) {
		t.Errorf("latency comparison %+v", rep.Latency)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report does not encode: %v", err)
	}
	checkAgainstPrometheus(t, srv.URL, rep)
}

// checkAgainstPrometheus lets a real Prometheus scrape the server and compares its histogram_quantile with
// the report's quantiles (the traffic is over, so both see the same counts).
func checkAgainstPrometheus(t *testing.T, target string, rep *ABReport) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Log("prometheus binary not found (apt-get install prometheus): quantiles not compared with PromQL")
		return
	}
	u, _ := url.Parse(target)
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bestofn\n    static_configs:\n      - targets: ['%s']\n", u.Host)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	query := func(q string) (map[string]float64, error) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var pr struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
			return nil, err
		}
		out := map[string]float64{}
		for _, r := range pr.Data.Result {
			s, _ := r.Value[1].(string)
			out[r.Metric["variant"]], _ = strconv.ParseFloat(s, 64)
		}
		return out, nil
	}
	sel := `{model="llama-gpt4:ab"}`
	for ctx.Err() == nil {
		m, err := query(`sum by (variant) (bestofn:e2e_request_latency_seconds_count` + sel + `)`)
		if err == nil && m["B"] == 10 && m["R1"] == 10 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("prometheus never saw the traffic:\n%s", logs.String())
	}
	for _, c := range []struct {
		q   float64
		get func(*LatencyStats) float64
	}{{0.5, func(l *LatencyStats) float64 { return l.P50S }}, {0.95, func(l *LatencyStats) float64 { return l.P95S }}, {0.99, func(l *LatencyStats) float64 { return l.P99S }}} {
		m, err := query(fmt.Sprintf(`histogram_quantile(%g, sum by (le, variant) (bestofn:e2e_request_latency_seconds_bucket%s))`, c.q, sel))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range rep.Variants {
			if got, want := c.get(v.Latency), m[v.Variant]; math.Abs(got-want) > 1e-9*math.Max(1, want) {
				t.Errorf("%s p%g: report %v, PromQL %v", v.Variant, c.q*100, got, want)
			}
		}
	}
}

// TestABReportJob runs the ab-report job with the teacher as judge (a real server whose text a proxy
// replaces with ratings) and latency from the log's own fields.
func TestABReportJob(t *testing.T) {
	srv := teachertest.Serve(t)
	rp := &ratingProxy{target: srv.URL, single: singleTexts, given: map[string][]string{}}
	judge := teachertest.NewProxy(t, srv.URL, rp.fault)
	var logLines strings.Builder
	for i := range 12 {
		v := []string{"B", "R1"}[i%2]
		rec := map[string]any{"time": time.Unix(1700000000+int64(i), 0).UTC(), "request_id": "r" + strconv.Itoa(i), "model": "m:ab", "variant": v,
			"prompt": abPrompts[i%5], "answer": fmt.Sprintf("answer %d from %s", i, v), "latency_ms": 100 + 50*float64(i%2) + float64(i)}
		b, _ := json.Marshal(rec)
		logLines.Write(b)
		logLines.WriteByte('\n')
	}
	logLines.WriteString(`{"time":"2023-11-14T22:13:40Z","variant":"R1","prom`) // torn by a crash
	log := writeFile(t, "ab.jsonl", logLines.String())
	params := ABReportParams{ABLog: log, Teacher: &teacher.Config{BaseURL: judge.URL + "/v1", Model: "llama-gpt4"}, Seed: 2, RatingMaxTokens: 2}
	if err := (abReportType{}).Validate(context.Background(), mustJSON(t, params), nil); err != nil {
		t.Fatal(err)
	}
	r := newFileRun(t, t.TempDir(), 1, params)
	if err := abReportJob(context.Background(), r, Options{}); err != nil {
		t.Fatal(err)
	}
	var rep ABReport
	if err := json.Unmarshal(r.files["report.json"], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Log.Records != 12 || rep.Log.Skipped != 1 || rep.Variants[0].Answers != 6 || rep.Judge["kind"] != "teacher" {
		t.Errorf("report %+v", rep)
	}
	unjudged := 0
	for _, v := range rep.Variants {
		unjudged += v.Unjudged
		if v.Latency == nil || v.Latency.Source != "log" || v.Latency.Count != 6 {
			t.Errorf("%s latency %+v", v.Variant, v.Latency)
		}
	}
	want := 0
	for _, texts := range rp.given {
		if _, err := ParseRating(texts[0]); err != nil {
			want++
		}
	}
	if unjudged != want {
		t.Errorf("%d unjudged, want %d", unjudged, want)
	}
	// R1's latencies are 150+i for odd i: mean 156, B's 100+i for even i: mean 105.
	if l := rep.Latency; l == nil || math.Abs(l.RatioMean-156.0/105.0) > 1e-9 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if md := string(r.files["report.md"]); !strings.Contains(md, "Win rate of R1 over B") {
		t.Errorf("report.md:\n%s", md)
	}
	if svg := string(r.files["report.svg"]); !strings.Contains(svg, "<svg") || !strings.Contains(svg, "win rate") || !strings.Contains(svg, "p95") {
		t.Errorf("report.svg: %.200s", svg)
	}
	if png := r.files["report.png"]; len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("report.png is not a PNG")
	}
	if got := len(lines[abRating](t, r.files["ratings.jsonl"])); got != 12 {
		t.Errorf("%d ratings kept", got)
	}
}

// TestABLogFormat writes records with the server's own ABLog and reads them back here.
func TestABLogFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	l, err := server.OpenABLog(path, server.ABLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := server.ABRecord{Time: time.Unix(1700000000, 0).UTC(), RequestID: "x", Model: "m:ab", Variant: "R1", Endpoint: "chat",
		Prompt: "p", Answer: "a", Scores: []float32{0.5, 1.5}, Chosen: 1, N: 2, Degraded: true}
	if err := l.Write(in); err != nil {
		t.Fatal(err)
	}
	l.Close()
	f, _ := os.Open(path)
	defer f.Close()
	recs, skipped, err := ReadABLog(f)
	if err != nil || skipped != 0 || len(recs) != 1 {
		t.Fatalf("%v %d %v", recs, skipped, err)
	}
	got := recs[0]
	if got.Time != in.Time || got.RequestID != in.RequestID || got.Model != in.Model || got.Variant != in.Variant || got.Endpoint != in.Endpoint ||
		got.Prompt != in.Prompt || got.Answer != in.Answer || len(got.Scores) != 2 || got.Scores[1] != 1.5 || got.Chosen != 1 || got.N != 2 || !got.Degraded {
		t.Errorf("read %+v, wrote %+v", got, in)
	}
	b, _ := os.ReadFile(path)
	if err := validateABLine(b[:len(b)-1]); err != nil {
		t.Errorf("the server's line fails the ab-log purpose: %v", err)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStatsReference compares the win rate, quantiles and histogram quantiles with
// scripts/pipeline_stats_reference.py's output (plain Python, written from the definitions).
func TestStatsReference(t *testing.T) {
	b, err := os.ReadFile("testdata/stats_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		WinRates []struct {
			T, C []float64
			Want float64 `json:"win_rate"`
		} `json:"win_rates"`
		Quantiles []struct {
			X    []float64
			Q    float64
			Want float64 `json:"value"`
		} `json:"quantiles"`
		Histograms []struct {
			Upper []float64 `json:"upper"`
			Count []float64 `json:"count"`
			Total float64   `json:"total"`
			Q     float64   `json:"q"`
			Want  float64   `json:"value"`
		} `json:"histograms"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.WinRates) == 0 || len(ref.Quantiles) == 0 || len(ref.Histograms) == 0 {
		t.Fatal("empty reference")
	}
	for _, c := range ref.WinRates {
		if got := WinRateUnpaired(c.T, c.C); math.Abs(got-c.Want) > 1e-12 {
			t.Errorf("win rate %v vs %v: %v, want %v", c.T, c.C, got, c.Want)
		}
	}
	for _, c := range ref.Quantiles {
		if got := sampleQuantile(c.X, c.Q); math.Abs(got-c.Want) > 1e-12 {
			t.Errorf("quantile %v of %v: %v, want %v", c.Q, c.X, got, c.Want)
		}
	}
	for _, c := range ref.Histograms {
		var bs []Bucket
		for i := range c.Upper {
			bs = append(bs, Bucket{Upper: c.Upper[i], Count: c.Count[i]})
		}
		bs = append(bs, Bucket{Upper: math.Inf(1), Count: c.Total})
		if got := HistogramQuantile(c.Q, bs); math.Abs(got-c.Want) > 1e-12 {
			t.Errorf("histogram quantile %v of %v: %v, want %v", c.Q, bs, got, c.Want)
		}
	}
}

// TestBootstrapCoverage: over simulated A/B tests with a known win rate (normal scores shifted by d, so
// P(T > C) = Φ(d/√2)), the 95% interval covers the truth about 95% of the time.
func TestBootstrapCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const sims, n, d, rounds = 120, 40, 0.3, 400
	truth := 0.5 * math.Erfc(-d/math.Sqrt2/math.Sqrt2)
	covered, pairedCovered := 0, 0
	for s := range sims {
		tr, co := make([]float64, n), make([]float64, n)
		outcomes := make([]float64, n)
		for i := range n {
			tr[i], co[i] = rng.NormFloat64()+d, rng.NormFloat64()
			if tr[i] > co[i] {
				outcomes[i] = 1
			}
		}
		if ci := bootstrapUnpaired(tr, co, uint64(s), rounds); ci[0] <= truth && truth <= ci[1] {
			covered++
		}
		if ci := bootstrapMean(outcomes, uint64(s), rounds); ci[0] <= truth && truth <= ci[1] {
			pairedCovered++
		}
	}
	for name, c := range map[string]int{"unpaired": covered, "paired": pairedCovered} {
		if rate := float64(c) / sims; rate < 0.88 || rate > 0.995 {
			t.Errorf("%s: the 95%% interval covered the true win rate %.3f in %.1f%% of %d simulations", name, truth, 100*rate, sims)
		}
	}
}

// TestABReportFor is the admin API's entry: params as the job takes them, the report at once.
func TestABReportFor(t *testing.T) {
	var b strings.Builder
	for i := range 6 {
		v := []string{"B", "R1"}[i%2]
		answer := "A long story that goes on and on."
		if v == "R1" {
			answer = "Short."
		}
		rec, _ := json.Marshal(map[string]any{"time": time.Unix(1700000000+int64(i), 0).UTC(), "variant": v, "model": "m:ab",
			"prompt": "Answer in under 3 words.", "answer": answer})
		b.Write(append(rec, '\n'))
	}
	path := writeFile(t, "ab.jsonl", b.String())
	rep, err := ABReportFor(context.Background(), ABReportParams{ABLog: path, Judge: "scorer", Scorer: &ScorerSpec{Kind: ScorerRules}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The rule "under 3 words" holds for every R1 answer and no B answer.
	if rep.WinRate == nil || rep.WinRate.Value != 1 || rep.WinRate.Wins != 9 || rep.Paired == nil || rep.Paired.Value != 1 || rep.Latency != nil {
		t.Errorf("report %+v %+v", rep.WinRate, rep.Paired)
	}
	var pe *jobs.ParamError
	if _, err := ABReportFor(context.Background(), ABReportParams{ABLog: path, Judge: "vibes"}, Options{}); !errors.As(err, &pe) || pe.Field != "judge" {
		t.Errorf("bad judge: %v", err)
	}
}

// TestABReportRatingFailures: ratings whose requests fail leave the answers unjudged, are not stored (a resumed
// report asks again), and the report says so instead of a win rate.
func TestABReportRatingFailures(t *testing.T) {
	down := teachertest.NewProxy(t, "http://127.0.0.1:1", func(n int64, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	log := writeFile(t, "ab.jsonl", `{"variant":"B","prompt":"p","answer":"a"}`+"\n"+`{"variant":"R1","prompt":"p","answer":"b"}`+"\n")
	recs, _, err := ReadABLogFile(log)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := teacher.New(teacher.Config{BaseURL: down.URL + "/v1", Model: "m", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryRows()
	rep, err := BuildABReport(context.Background(), ABReportConfig{Records: recs, Rater: &TeacherRater{Client: cl}, Ratings: store})
	if err != nil {
		t.Fatal(err)
	}
	if store.Len() != 0 || rep.WinRate != nil || rep.Variants[0].Unjudged != 1 || rep.Variants[1].Unjudged != 1 ||
		!strings.Contains(strings.Join(rep.Warnings, "\n"), "2 ratings failed on request errors") {
		t.Errorf("stored %d, report %+v", store.Len(), rep)
	}
}
