package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// LatencyMetric is the server's end-to-end latency histogram, labelled by model and variant.
const LatencyMetric = "bestofn:e2e_request_latency_seconds"

// ABReportConfig says what to report on and how to judge.
type ABReportConfig struct {
	// Records is the A/B log (ReadABLog); Skipped the lines ReadABLog skipped, reported.
	Records []ABRecord
	Skipped int
	// Model keeps only records (and histogram series) of this model or experiment name; "" keeps all.
	Model string
	// Treatment and Control are the variants compared; "" means "R1" and "B".
	Treatment, Control string
	// Since keeps records at or after this time; zero keeps all. Limit keeps the latest Limit records of each
	// variant; 0 keeps all.
	Since time.Time
	Limit int
	// Rater judges each answer alone (a TeacherRater in single mode, or a ScorerRater).
	Rater Rater
	// Workers judge at once; 0 means 1.
	Workers int
	// MetricsURL is the server whose /metrics holds LatencyMetric (a URL without a path gets /metrics); "" reads
	// latency from the log's own fields when it has them. Metrics, when set, is used instead of fetching.
	MetricsURL string
	Metrics    func(ctx context.Context) (io.ReadCloser, error)
	// Seed seeds the bootstrap.
	Seed uint64
	// Ratings, when set, keeps each record's judgment by record index so a resumed report does not judge
	// again (a job's output); nil keeps them in memory.
	Ratings RowStore
	// Progress, when set, is told how many answers are judged.
	Progress func(done, total int)
}

// ABReport is the live A/B report: the JSON of GET /admin/v1/ab/report, the ab-report job's report.json and
// `bestofn ab report --json`. Version changes only when a field changes meaning or goes away.
type ABReport struct {
	Object    string         `json:"object"` // "ab_report"
	Version   int            `json:"version"`
	CreatedAt int64          `json:"created_at"`
	Model     string         `json:"model,omitempty"`
	Treatment string         `json:"treatment"`
	Control   string         `json:"control"`
	Judge     map[string]any `json:"judge"`
	Log       ABLogSummary   `json:"log"`
	// Variants are the treatment, then the control.
	Variants []VariantReport `json:"variants"`
	// WinRate compares every treatment answer's score with every control answer's (unpaired: prompts differ
	// in live traffic); Paired compares the two variants' answers to the same prompt where the log has both.
	// null when a side has no judged answer.
	WinRate *WinRate `json:"win_rate"`
	Paired  *WinRate `json:"paired"`
	// Latency compares the variants' latency (treatment / control); null without latency data.
	Latency  *LatencyComparison `json:"latency"`
	Warnings []string           `json:"warnings"`
}

// ABLogSummary says what of the log was used.
type ABLogSummary struct {
	Records   int            `json:"records"`
	Skipped   int            `json:"skipped_lines"`
	Used      int            `json:"used"`
	ByVariant map[string]int `json:"by_variant"`
	First     *time.Time     `json:"first,omitempty"`
	Last      *time.Time     `json:"last,omitempty"`
}

// VariantReport is one variant's answers, scores and latency.
type VariantReport struct {
	Variant string `json:"variant"`
	Answers int    `json:"answers"`
	// Judged answers have a score; Unjudged ones do not (unparseable or failed ratings).
	Judged          int           `json:"judged"`
	Unjudged        int           `json:"unjudged"`
	MeanScore       *float64      `json:"mean_score"`
	MeanScoreCI95   *[2]float64   `json:"mean_score_ci95"`
	MeanAnswerChars float64       `json:"mean_answer_chars"`
	Degraded        int           `json:"degraded"`
	Latency         *LatencyStats `json:"latency"`
}

// WinRate is how often the treatment's answer scores above the control's, ties counting half, with a 95%
// percentile bootstrap interval (2000 resamples).
type WinRate struct {
	// Method is "unpaired" (all treatment x control answer pairs) or "paired" (answers to the same prompt).
	Method string     `json:"method"`
	Value  float64    `json:"value"`
	CI95   [2]float64 `json:"ci95"`
	// N is the comparisons' unit count: prompts (paired) or treatment x control answer pairs (unpaired).
	N      int64 `json:"n"`
	Wins   int64 `json:"wins"`
	Ties   int64 `json:"ties"`
	Losses int64 `json:"losses"`
}

// LatencyStats are one variant's end-to-end latency, from the server's histogram (quantiles estimated as
// PromQL's histogram_quantile does) or from the log's latency fields (exact sample quantiles).
type LatencyStats struct {
	Source string  `json:"source"` // "metrics" or "log"
	Count  int64   `json:"count"`
	MeanS  float64 `json:"mean_s"`
	P50S   float64 `json:"p50_s"`
	P95S   float64 `json:"p95_s"`
	P99S   float64 `json:"p99_s"`
}

// LatencyComparison is the latency cost of the treatment: treatment / control ratios.
type LatencyComparison struct {
	Source    string  `json:"source"`
	RatioMean float64 `json:"ratio_mean"`
	RatioP50  float64 `json:"ratio_p50"`
	RatioP95  float64 `json:"ratio_p95"`
	RatioP99  float64 `json:"ratio_p99"`
}

// abRating is a judged record, as stored.
type abRating struct {
	Record  int       `json:"record"`
	Variant string    `json:"variant"`
	Score   *float64  `json:"score"`
	Ratings RatingSet `json:"ratings"`
}

// BuildABReport judges the selected records of both variants and reports win rates, scores and latency.
func BuildABReport(ctx context.Context, cfg ABReportConfig) (*ABReport, error) {
	if cfg.Treatment == "" {
		cfg.Treatment = "R1"
	}
	if cfg.Control == "" {
		cfg.Control = "B"
	}
	if cfg.Rater == nil {
		return nil, fmt.Errorf("pipeline: A/B report needs a rater")
	}
	rep := &ABReport{Object: "ab_report", Version: 1, CreatedAt: time.Now().Unix(), Model: cfg.Model,
		Treatment: cfg.Treatment, Control: cfg.Control, Judge: cfg.Rater.Describe(), Warnings: []string{},
		Log: ABLogSummary{Records: len(cfg.Records), Skipped: cfg.Skipped, ByVariant: map[string]int{}}}
	sel := selectRecords(cfg)
	for _, i := range sel {
		rec := cfg.Records[i]
		rep.Log.ByVariant[rec.Variant]++
		t := rec.Time
		if rep.Log.First == nil || t.Before(*rep.Log.First) {
			rep.Log.First = &t
		}
		if rep.Log.Last == nil || t.After(*rep.Log.Last) {
			rep.Log.Last = &t
		}
	}
	rep.Log.Used = len(sel)
	store := cfg.Ratings
	if store == nil {
		store = NewMemoryRows()
	}
	var done atomic.Int64
	var pending []int
	for _, i := range sel {
		if store.Has(strconv.Itoa(i)) {
			done.Add(1)
		} else {
			pending = append(pending, i)
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(int(done.Load()), len(sel))
	}
	var failedMu sync.Mutex
	failed := map[string]json.RawMessage{} // ratings whose request failed
	judge := func(ctx context.Context, pi int) error {
		i := pending[pi]
		rec := cfg.Records[i]
		set, err := cfg.Rater.Rate(ctx, rec.Prompt, []string{rec.Answer})
		if err != nil {
			return err
		}
		rating := abRating{Record: i, Variant: rec.Variant, Score: set.Scores[0], Ratings: set}
		if len(set.Judgments) > 0 && set.Judgments[0].Failure == "request" {
			// Not stored: a resumed report asks again. This report counts the answer unjudged.
			b, _ := json.Marshal(rating)
			failedMu.Lock()
			failed[strconv.Itoa(i)] = b
			failedMu.Unlock()
		} else if err := store.Append(strconv.Itoa(i), rating); err != nil {
			return err
		}
		n := done.Add(1)
		if cfg.Progress != nil {
			cfg.Progress(int(n), len(sel))
		}
		return nil
	}
	if err := runPool(ctx, max(1, cfg.Workers), len(pending), judge); err != nil {
		return nil, err
	}

	// Scores by variant, and by prompt for the paired comparison.
	scores := map[string][]float64{}
	byPrompt := map[string]map[string][]float64{}
	for _, v := range []string{cfg.Treatment, cfg.Control} {
		rep.Variants = append(rep.Variants, VariantReport{Variant: v})
	}
	vr := func(v string) *VariantReport {
		for i := range rep.Variants {
			if rep.Variants[i].Variant == v {
				return &rep.Variants[i]
			}
		}
		return nil
	}
	var latencies = map[string][]float64{}
	for _, i := range sel {
		rec := cfg.Records[i]
		raw, ok := store.Get(strconv.Itoa(i))
		if !ok {
			raw = failed[strconv.Itoa(i)]
		}
		var r abRating
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("pipeline: stored rating %d: %w", i, err)
		}
		v := vr(rec.Variant)
		v.Answers++
		v.MeanAnswerChars += float64(len([]rune(rec.Answer)))
		if rec.Degraded {
			v.Degraded++
		}
		if l, ok := rec.Latency(); ok {
			latencies[rec.Variant] = append(latencies[rec.Variant], l)
		}
		if r.Score == nil {
			v.Unjudged++
			continue
		}
		v.Judged++
		scores[rec.Variant] = append(scores[rec.Variant], *r.Score)
		k := promptKey(rec.Prompt)
		if byPrompt[k] == nil {
			byPrompt[k] = map[string][]float64{}
		}
		byPrompt[k][rec.Variant] = append(byPrompt[k][rec.Variant], *r.Score)
	}
	for i := range rep.Variants {
		v := &rep.Variants[i]
		if v.Answers > 0 {
			v.MeanAnswerChars /= float64(v.Answers)
		}
		if s := scores[v.Variant]; len(s) > 0 {
			m, ci := meanCI(s)
			v.MeanScore, v.MeanScoreCI95 = &m, ci
		}
		if v.Unjudged > 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d %s answers could not be judged (see the ratings for the raw judgments)", v.Unjudged, v.Variant))
		}
	}
	if len(failed) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d ratings failed on request errors (the job's events say why); resuming or retrying the report asks them again", len(failed)))
	}
	t, c := scores[cfg.Treatment], scores[cfg.Control]
	if len(t) > 0 && len(c) > 0 {
		w := &WinRate{Method: "unpaired", Value: WinRateUnpaired(t, c), CI95: BootstrapUnpairedCI(t, c, cfg.Seed), N: int64(len(t)) * int64(len(c))}
		w.Wins, w.Ties, w.Losses = countOutcomes(t, c)
		rep.WinRate = w
	} else {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no win rate: %d judged %s answers, %d judged %s answers", len(t), cfg.Treatment, len(c), cfg.Control))
	}
	rep.Paired = pairedWinRate(byPrompt, cfg.Treatment, cfg.Control, cfg.Seed)

	if err := addLatency(ctx, rep, cfg, latencies, vr); err != nil {
		rep.Warnings = append(rep.Warnings, "latency: "+err.Error())
	}
	return rep, nil
}

// selectRecords returns the indices of the records to judge: both variants, the model, since, the latest
// Limit of each variant; in log order.
func selectRecords(cfg ABReportConfig) []int {
	var idx []int
	count := map[string]int{}
	for i := len(cfg.Records) - 1; i >= 0; i-- {
		rec := cfg.Records[i]
		if rec.Variant != cfg.Treatment && rec.Variant != cfg.Control {
			continue
		}
		if cfg.Model != "" && rec.Model != cfg.Model {
			continue
		}
		if !cfg.Since.IsZero() && rec.Time.Before(cfg.Since) {
			continue
		}
		if cfg.Limit > 0 && count[rec.Variant] >= cfg.Limit {
			continue
		}
		count[rec.Variant]++
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

func countOutcomes(t, c []float64) (wins, ties, losses int64) {
	sc := append([]float64(nil), c...)
	sort.Float64s(sc)
	for _, x := range t {
		lo := sort.SearchFloat64s(sc, x)
		hi := sort.Search(len(sc), func(i int) bool { return sc[i] > x })
		wins += int64(lo)
		ties += int64(hi - lo)
		losses += int64(len(sc) - hi)
	}
	return wins, ties, losses
}

// pairedWinRate compares the mean treatment and control scores of each prompt both variants answered.
func pairedWinRate(byPrompt map[string]map[string][]float64, treatment, control string, seed uint64) *WinRate {
	keys := make([]string, 0, len(byPrompt))
	for k := range byPrompt {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var outcomes []float64
	w := &WinRate{Method: "paired"}
	for _, k := range keys {
		t, c := byPrompt[k][treatment], byPrompt[k][control]
		if len(t) == 0 || len(c) == 0 {
			continue
		}
		mt, mc := mean(t), mean(c)
		switch {
		case mt > mc:
			w.Wins++
			outcomes = append(outcomes, 1)
		case mt < mc:
			w.Losses++
			outcomes = append(outcomes, 0)
		default:
			w.Ties++
			outcomes = append(outcomes, 0.5)
		}
	}
	if len(outcomes) == 0 {
		return nil
	}
	w.N = int64(len(outcomes))
	w.Value = mean(outcomes)
	w.CI95 = BootstrapMeanCI(outcomes, seed)
	return w
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// addLatency fills each variant's latency from the server's histogram, else from the log.
func addLatency(ctx context.Context, rep *ABReport, cfg ABReportConfig, fromLog map[string][]float64, vr func(string) *VariantReport) error {
	source := ""
	if cfg.MetricsURL != "" || cfg.Metrics != nil {
		hists, err := scrapeLatency(ctx, cfg)
		if err != nil {
			return err
		}
		for _, v := range []string{cfg.Treatment, cfg.Control} {
			h, ok := hists[v]
			if !ok || h.count == 0 {
				continue
			}
			st := &LatencyStats{Source: "metrics", Count: int64(h.count), MeanS: h.sum / h.count,
				P50S: HistogramQuantile(0.5, h.buckets), P95S: HistogramQuantile(0.95, h.buckets), P99S: HistogramQuantile(0.99, h.buckets)}
			vr(v).Latency = st
			source = "metrics"
		}
		if source == "" {
			return fmt.Errorf("%s has no %s series for variants %s and %s", metricsLabel(cfg), LatencyMetric, cfg.Treatment, cfg.Control)
		}
	} else {
		for _, v := range []string{cfg.Treatment, cfg.Control} {
			ls := fromLog[v]
			if len(ls) == 0 {
				continue
			}
			vr(v).Latency = &LatencyStats{Source: "log", Count: int64(len(ls)), MeanS: mean(ls),
				P50S: sampleQuantile(ls, 0.5), P95S: sampleQuantile(ls, 0.95), P99S: sampleQuantile(ls, 0.99)}
			source = "log"
		}
		if source == "" {
			return nil // nothing to report: neither metrics nor latency fields
		}
	}
	t, c := vr(cfg.Treatment).Latency, vr(cfg.Control).Latency
	if t == nil || c == nil {
		return fmt.Errorf("latency of only one variant is known")
	}
	ratio := func(a, b float64) float64 {
		if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
			return 0
		}
		return a / b
	}
	rep.Latency = &LatencyComparison{Source: source, RatioMean: ratio(t.MeanS, c.MeanS), RatioP50: ratio(t.P50S, c.P50S),
		RatioP95: ratio(t.P95S, c.P95S), RatioP99: ratio(t.P99S, c.P99S)}
	return nil
}

func metricsLabel(cfg ABReportConfig) string {
	if cfg.MetricsURL != "" {
		return metricsURL(cfg.MetricsURL)
	}
	return "the metrics"
}

// metricsURL appends /metrics to a URL without a path.
func metricsURL(u string) string {
	pu, err := url.Parse(u)
	if err == nil && (pu.Path == "" || pu.Path == "/") {
		pu.Path = "/metrics"
		return pu.String()
	}
	return u
}

// histogram is one variant's latency histogram summed over the selected series.
type histogram struct {
	buckets    []Bucket
	sum, count float64
}

// scrapeLatency reads LatencyMetric by variant, summing the series of cfg.Model (all models when "").
func scrapeLatency(ctx context.Context, cfg ABReportConfig) (map[string]*histogram, error) {
	var body io.ReadCloser
	var err error
	if cfg.Metrics != nil {
		body, err = cfg.Metrics(ctx)
	} else {
		body, err = fetchMetrics(ctx, metricsURL(cfg.MetricsURL))
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", metricsLabel(cfg), err)
	}
	fam, ok := fams[LatencyMetric]
	if !ok {
		return nil, fmt.Errorf("%s has no %s", metricsLabel(cfg), LatencyMetric)
	}
	if fam.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("%s is a %v, not a histogram", LatencyMetric, fam.GetType())
	}
	out := map[string]*histogram{}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if cfg.Model != "" && labels["model"] != cfg.Model {
			continue
		}
		v := labels["variant"]
		h := out[v]
		if h == nil {
			h = &histogram{}
			out[v] = h
		}
		hm := m.GetHistogram()
		h.sum += hm.GetSampleSum()
		h.count += float64(hm.GetSampleCount())
		add := func(upper, count float64) {
			for i := range h.buckets {
				if h.buckets[i].Upper == upper {
					h.buckets[i].Count += count
					return
				}
			}
			h.buckets = append(h.buckets, Bucket{Upper: upper, Count: count})
		}
		hasInf := false
		for _, b := range hm.GetBucket() {
			add(b.GetUpperBound(), float64(b.GetCumulativeCount()))
			hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !hasInf {
			add(math.Inf(1), float64(hm.GetSampleCount())) // the +Inf bucket is the count
		}
	}
	return out, nil
}

func fetchMetrics(ctx context.Context, u string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("scrape %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// ABReportMarkdown renders the report as a short Markdown summary.
func ABReportMarkdown(rep *ABReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# A/B report: %s vs %s\n\n", rep.Treatment, rep.Control)
	fmt.Fprintf(&b, "Judge: %v. Log: %d records used of %d (%d lines skipped).\n\n", describe(rep.Judge), rep.Log.Used, rep.Log.Records, rep.Log.Skipped)
	if w := rep.WinRate; w != nil {
		fmt.Fprintf(&b, "**Win rate of %s over %s: %.1f%% (95%% CI %.1f-%.1f%%)**, %s over %d answer pairs (%d wins, %d ties, %d losses).\n\n",
			rep.Treatment, rep.Control, 100*w.Value, 100*w.CI95[0], 100*w.CI95[1], w.Method, w.N, w.Wins, w.Ties, w.Losses)
	}
	if w := rep.Paired; w != nil {
		fmt.Fprintf(&b, "Paired on %d prompts answered by both: %.1f%% (95%% CI %.1f-%.1f%%).\n\n", w.N, 100*w.Value, 100*w.CI95[0], 100*w.CI95[1])
	}
	b.WriteString("| variant | answers | judged | mean score (95% CI) | mean chars | latency p50 / p95 / p99 (s) |\n|---|---|---|---|---|---|\n")
	for _, v := range rep.Variants {
		score := "-"
		if v.MeanScore != nil {
			score = fmt.Sprintf("%.2f", *v.MeanScore)
			if v.MeanScoreCI95 != nil {
				score += fmt.Sprintf(" (%.2f-%.2f)", v.MeanScoreCI95[0], v.MeanScoreCI95[1])
			}
		}
		lat := "-"
		if l := v.Latency; l != nil {
			lat = fmt.Sprintf("%.4g / %.4g / %.4g (%s, n=%d)", l.P50S, l.P95S, l.P99S, l.Source, l.Count)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %.0f | %s |\n", v.Variant, v.Answers, v.Judged, score, v.MeanAnswerChars, lat)
	}
	if l := rep.Latency; l != nil {
		fmt.Fprintf(&b, "\nLatency cost of %s: %.2fx the mean, %.2fx p50, %.2fx p95, %.2fx p99 of %s.\n", rep.Treatment, l.RatioMean, l.RatioP50, l.RatioP95, l.RatioP99, rep.Control)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s\n", w)
	}
	return b.String()
}

func describe(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// MemoryRows is an in-memory RowStore.
type MemoryRows struct {
	mu   sync.Mutex
	keys []string
	rows map[string]json.RawMessage
}

// NewMemoryRows returns an empty MemoryRows.
func NewMemoryRows() *MemoryRows { return &MemoryRows{rows: map[string]json.RawMessage{}} }

func (m *MemoryRows) Has(key string) bool { _, ok := m.Get(key); return ok }

func (m *MemoryRows) Get(key string) (json.RawMessage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[key]
	return r, ok
}

func (m *MemoryRows) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.keys...)
}

func (m *MemoryRows) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

func (m *MemoryRows) Append(key string, row any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[key]; ok {
		return fmt.Errorf("pipeline: row %q exists", key)
	}
	m.rows[key] = b
	m.keys = append(m.keys, key)
	return nil
}

// ABReportParams are the params of an ab-report job.
type ABReportParams struct {
	// ABLog is the server's A/B log: a file id, or a path on the server.
	ABLog string `json:"ab_log"`
	// Model, Treatment ("R1"), Control ("B"), Since (RFC 3339) and Limit select records (see ABReportConfig).
	Model     string `json:"model,omitempty"`
	Treatment string `json:"treatment,omitempty"`
	Control   string `json:"control,omitempty"`
	Since     string `json:"since,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	// Judge is "teacher" (default: Teacher rates each answer 1-10) or "scorer" (Scorer, e.g. a reward model
	// other than the one that ranked).
	Judge   string          `json:"judge,omitempty"`
	Teacher *teacher.Config `json:"teacher,omitempty"`
	Scorer  *ScorerSpec     `json:"scorer,omitempty"`
	// RatingTemperature (nil: 0) and RatingMaxTokens (0: 256) of the teacher's ratings.
	RatingTemperature *float64 `json:"rating_temperature,omitempty"`
	RatingMaxTokens   int      `json:"rating_max_tokens,omitempty"`
	// MetricsURL is the server to scrape for latency histograms; "" uses the log's latency fields, if any.
	MetricsURL string `json:"metrics_url,omitempty"`
	// Seed seeds the bootstrap.
	Seed uint64 `json:"seed,omitempty"`
}

func (p *ABReportParams) check() error {
	if p.ABLog == "" {
		return paramErr("ab_log", "is required")
	}
	if p.Since != "" {
		if _, err := time.Parse(time.RFC3339, p.Since); err != nil {
			return paramErr("since", "must be an RFC 3339 time: %v", err)
		}
	}
	if err := checkNonNegative(map[string]int{"limit": p.Limit, "rating_max_tokens": p.RatingMaxTokens}); err != nil {
		return err
	}
	if err := checkSampling(map[string]*float64{"rating_temperature": p.RatingTemperature}, nil); err != nil {
		return err
	}
	if treatment, control := cmp.Or(p.Treatment, "R1"), cmp.Or(p.Control, "B"); treatment == control {
		return paramErr("control", "must differ from the treatment (%q)", treatment)
	}
	if p.MetricsURL != "" {
		if u, err := url.Parse(p.MetricsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return paramErr("metrics_url", "must be an http(s) URL")
		}
	}
	switch p.Judge {
	case "", "teacher":
		return checkTeacher("teacher", p.Teacher)
	case "scorer":
		if p.Scorer == nil || p.Scorer.Kind == "" {
			return paramErr("scorer.kind", "is required with judge \"scorer\"")
		}
	default:
		return paramErr("judge", `must be "teacher" or "scorer", not %q`, p.Judge)
	}
	return nil
}

type abReportType struct{ opts Options }

func (abReportType) Name() string { return TypeABReport }

func (t abReportType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p ABReportParams
	if err := decode(params, &p); err != nil {
		return err
	}
	if err := checkFileOrPath(ctx, files, "ab_log", p.ABLog); err != nil {
		return err
	}
	if p.Judge == "scorer" {
		return t.opts.checkScorer("scorer", *p.Scorer)
	}
	return nil
}

func (t abReportType) Run(ctx context.Context, run *jobs.Run) error {
	return abReportJob(ctx, jobRun{run}, t.opts)
}

// ABReportFor is the A/B report for p at once, as an ab-report job with the same params would give it (its
// ab_log a path); ABReportEnv.Report is the same with a server's files, models and metrics, as GET
// /admin/v1/ab/report serves it. The ratings are kept in memory only.
func ABReportFor(ctx context.Context, p ABReportParams, opts Options) (*ABReport, error) {
	return ABReportEnv{}.Report(ctx, p, opts)
}

// config is the report's configuration from the params, with the rater opened (close it after).
func (p ABReportParams) config(ctx context.Context, r runner, opts Options, recs []ABRecord, skipped int, events teacher.EventFunc) (ABReportConfig, func() error, error) {
	cfg := ABReportConfig{Records: recs, Skipped: skipped, Model: p.Model, Treatment: p.Treatment, Control: p.Control,
		Limit: p.Limit, MetricsURL: p.MetricsURL, Seed: p.Seed}
	if p.Since != "" {
		cfg.Since, _ = time.Parse(time.RFC3339, p.Since)
	}
	rater, closeRater, workers, err := openRater(ctx, r, RaterSpec{Judge: p.Judge, Teacher: p.Teacher, Scorer: p.Scorer,
		RatingTemperature: p.RatingTemperature, RatingMaxTokens: p.RatingMaxTokens}, opts, events)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Rater, cfg.Workers = rater, workers
	return cfg, closeRater, nil
}

func abReportJob(ctx context.Context, r runner, opts Options) error {
	var p ABReportParams
	if err := decode(r.Job().Params, &p); err != nil {
		return jobFailed("invalid_input", "%v", err)
	}
	rc, err := openFileOrPath(ctx, r, p.ABLog)
	if err != nil {
		return jobFailed("invalid_input", "open ab_log: %v", err)
	}
	recs, skipped, err := ReadABLog(rc)
	rc.Close()
	if err != nil {
		return jobFailed("invalid_input", "ab_log: %v", err)
	}
	cfg, closeRater, err := p.config(ctx, r, opts, recs, skipped, jobEvents(r))
	if err != nil {
		return jobFailed("invalid_input", "%v", err)
	}
	defer closeRater()
	if cfg.Ratings, err = r.Output("ratings"); err != nil {
		return err
	}
	cfg.Progress = func(done, total int) { r.Progress(int64(done), int64(total), "answers") }
	rep, err := BuildABReport(ctx, cfg)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	fig, err := ABReportPlot(rep)
	if err != nil {
		return err
	}
	var ratings bytes.Buffer
	for _, k := range cfg.Ratings.Keys() {
		raw, _ := cfg.Ratings.Get(k)
		ratings.Write(raw)
		ratings.WriteByte('\n')
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{"report.json", append(js, '\n')}, {"report.md", []byte(ABReportMarkdown(rep))}, {"report.svg", fig.SVG}, {"report.png", fig.PNG},
		{"ratings.jsonl", ratings.Bytes()}} {
		if _, err := r.PublishFile(ctx, f.name, "results", bytes.NewReader(f.body)); err != nil {
			return fmt.Errorf("pipeline: publish %s: %w", f.name, err)
		}
	}
	return r.SetResult(rep)
}
