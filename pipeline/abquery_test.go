package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// TestParseABReportQuery: every parameter lands in its field with its type; bad ones name themselves.
func TestParseABReportQuery(t *testing.T) {
	q, _ := url.ParseQuery("ab_log=file-1&model=m:ab&treatment=R2&control=B&since=2026-01-02T00:00:00Z&limit=7&seed=9" +
		"&rating_max_tokens=16&rating_temperature=0.5&metrics_url=http://127.0.0.1:1" +
		"&teacher.provider=ollama&teacher.base_url=http://h:11434&teacher.model=llama3&teacher.api_key_env=K&teacher.concurrency=3" +
		"&teacher.requests_per_minute=60.5&teacher.tokens_per_minute=1000&teacher.max_retries=2&teacher.timeout_s=5&teacher.max_backoff_s=9" +
		"&teacher.pause_after_s=30&teacher.prompt_price_per_1k=0.03&teacher.completion_price_per_1k=0.06&teacher.seed=4")
	p, err := ParseABReportQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	temp := 0.5
	want := ABReportParams{ABLog: "file-1", Model: "m:ab", Treatment: "R2", Control: "B", Since: "2026-01-02T00:00:00Z", Limit: 7, Seed: 9,
		RatingMaxTokens: 16, RatingTemperature: &temp, MetricsURL: "http://127.0.0.1:1",
		Teacher: &teacher.Config{Provider: "ollama", BaseURL: "http://h:11434", Model: "llama3", APIKeyEnv: "K", Concurrency: 3,
			RequestsPerMinute: 60.5, TokensPerMinute: 1000, MaxRetries: 2, TimeoutSeconds: 5, MaxBackoffSeconds: 9, PauseAfterSeconds: 30,
			PromptPricePer1K: 0.03, CompletionPricePer1K: 0.06, Seed: 4}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v %+v\nwant %+v %+v", p, *p.Teacher, want, *want.Teacher)
	}
	// The JSON names are the job's: the same params through the job's decoder.
	js, _ := json.Marshal(want)
	var viaJob ABReportParams
	if err := jobs.DecodeParams(js, &viaJob); err != nil || !reflect.DeepEqual(viaJob, want) {
		t.Errorf("job params %s: %v", js, err)
	}

	q, _ = url.ParseQuery("scorer.kind=reward-model&scorer.model=judge&scorer.version=2&scorer.runtime=go&scorer.path=/x&scorer.params=%7B%22a%22%3A1%7D")
	if p, err = ParseABReportQuery(q); err != nil {
		t.Fatal(err)
	}
	if p.Judge != "scorer" || !reflect.DeepEqual(*p.Scorer, ScorerSpec{Kind: "reward-model", Model: "judge", Version: 2, Runtime: "go", Path: "/x",
		Params: json.RawMessage(`{"a":1}`)}) {
		t.Errorf("scorer: %+v %+v", p, p.Scorer)
	}
	// With a teacher too, judge is not guessed: check() then asks for it to be said.
	q, _ = url.ParseQuery("scorer.kind=rules&teacher.model=m")
	if p, _ = ParseABReportQuery(q); p.Judge != "" {
		t.Errorf("judge %q guessed with both a scorer and a teacher", p.Judge)
	}

	for query, field := range map[string]string{
		"limit=x": "limit", "seed=-1": "seed", "limit=1&limit=2": "limit", "nope=1": "nope", "rating_temperature=hot": "rating_temperature",
		"teacher.timeout_s=soon": "teacher.timeout_s", "scorer.version=v2": "scorer.version", "scorer.params=1": "scorer.params",
		"teacher.colour=red": "teacher.colour",
	} {
		q, _ := url.ParseQuery(query)
		_, err := ParseABReportQuery(q)
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Field != field {
			t.Errorf("%s: %v, want a ParamError on %s", query, err, field)
		}
	}
}

// TestABReportEnv: the default log, a stored file by id, a path, and latency from an in-process registry's
// histogram (GatheredMetrics), whose count and mean are the observations'.
func TestABReportEnv(t *testing.T) {
	var b strings.Builder
	for i := range 6 {
		v := []string{"B", "R1"}[i%2]
		answer := "A long story that goes on and on."
		if v == "R1" {
			answer = "Short."
		}
		rec, _ := json.Marshal(map[string]any{"variant": v, "model": "m:ab", "prompt": "Answer in under 3 words.", "answer": answer})
		b.Write(append(rec, '\n'))
	}
	path := writeFile(t, "ab.jsonl", b.String())
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: LatencyMetric, Buckets: []float64{0.1, 0.2, 0.5, 1}},
		[]string{"model", "variant", "backend"})
	reg.MustRegister(h)
	obs := map[string][]float64{"R1": {0.3, 0.4, 0.45}, "B": {0.05, 0.15}}
	for v, xs := range obs {
		for _, x := range xs {
			h.WithLabelValues("m:ab", v, "local").Observe(x)
		}
	}
	h.WithLabelValues("other", "R1", "local").Observe(9) // another model: not counted
	opened := ""
	env := ABReportEnv{DefaultLog: path, Metrics: GatheredMetrics(reg),
		OpenFile: func(ctx context.Context, id string) (io.ReadCloser, jobs.File, error) {
			if id != "file-log" {
				return nil, jobs.File{}, jobs.ErrNotFound
			}
			opened = id
			return io.NopCloser(strings.NewReader(b.String())), jobs.File{ID: id}, nil
		}}
	rules := &ScorerSpec{Kind: ScorerRules}
	for _, ref := range []string{"", "file-log", path} {
		rep, err := env.Report(context.Background(), ABReportParams{ABLog: ref, Model: "m:ab", Judge: "scorer", Scorer: rules}, Options{})
		if err != nil {
			t.Fatalf("%q: %v", ref, err)
		}
		if rep.WinRate == nil || rep.WinRate.Value != 1 || rep.Log.Used != 6 {
			t.Errorf("%q: %+v", ref, rep.WinRate)
		}
		if rep.Latency == nil || rep.Latency.Source != "metrics" {
			t.Fatalf("%q: latency %+v %q", ref, rep.Latency, rep.Warnings)
		}
		for _, v := range rep.Variants {
			xs := obs[v.Variant]
			sum := 0.0
			for _, x := range xs {
				sum += x
			}
			if v.Latency.Count != int64(len(xs)) || math.Abs(v.Latency.MeanS-sum/float64(len(xs))) > 1e-12 {
				t.Errorf("%q %s: latency %+v, want %d observations of mean %v", ref, v.Variant, v.Latency, len(xs), sum/float64(len(xs)))
			}
		}
	}
	if opened != "file-log" {
		t.Error("the stored file was not opened by id")
	}
	var pe *jobs.ParamError
	if _, err := (ABReportEnv{}).Report(context.Background(), ABReportParams{Judge: "scorer", Scorer: rules}, Options{}); !errors.As(err, &pe) ||
		pe.Field != "ab_log" {
		t.Errorf("no log: %v", err)
	}
	if _, err := env.Report(context.Background(), ABReportParams{Judge: "scorer", Scorer: &ScorerSpec{Kind: ScorerRewardModel, Model: "rm"}}, Options{}); !errors.As(err, &pe) ||
		pe.Field != "scorer.model" {
		t.Errorf("registered model without a registry: %v", err)
	}
}
