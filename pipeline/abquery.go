package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// ParseABReportQuery reads the query of GET /admin/v1/ab/report into the params of an ab-report job: each
// parameter is a job param by its JSON name, the teacher's and the scorer's fields by their dotted names:
//
//	?ab_log=file-...&judge=scorer&scorer.kind=rules&model=llama-gpt4:ab
//	?judge=scorer&scorer.kind=reward-model&scorer.path=/models/judge-rm&since=2026-01-02T00:00:00Z&limit=500
//	?teacher.base_url=https://api.openai.com/v1&teacher.model=gpt-4&teacher.api_key_env=OPENAI_API_KEY
//
// An unknown parameter, a repeated one or a value of the wrong type is a *jobs.ParamError naming it; the
// params are checked as a job's are when the report is built (ABReportEnv.Report).
func ParseABReportQuery(q url.Values) (ABReportParams, error) {
	var p ABReportParams
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := q[k]
		if len(vs) != 1 {
			return p, paramErr(k, "is given %d times; give it once", len(vs))
		}
		set, ok := abQueryFields[k]
		if !ok {
			return p, paramErr(k, "unknown parameter (known: %s)", strings.Join(abQueryNames(), ", "))
		}
		if err := set(&p, vs[0]); err != nil {
			return p, paramErr(k, "%v", err)
		}
	}
	if p.Judge == "" && p.Scorer != nil && p.Teacher == nil {
		p.Judge = "scorer" // scorer.kind=rules alone says which judge
	}
	return p, nil
}

// abQueryFields sets each query parameter's field.
var abQueryFields = map[string]func(p *ABReportParams, v string) error{
	"ab_log":            func(p *ABReportParams, v string) error { p.ABLog = v; return nil },
	"model":             func(p *ABReportParams, v string) error { p.Model = v; return nil },
	"treatment":         func(p *ABReportParams, v string) error { p.Treatment = v; return nil },
	"control":           func(p *ABReportParams, v string) error { p.Control = v; return nil },
	"since":             func(p *ABReportParams, v string) error { p.Since = v; return nil },
	"limit":             func(p *ABReportParams, v string) error { return parseInt(v, &p.Limit) },
	"judge":             func(p *ABReportParams, v string) error { p.Judge = v; return nil },
	"metrics_url":       func(p *ABReportParams, v string) error { p.MetricsURL = v; return nil },
	"seed":              func(p *ABReportParams, v string) error { return parseUint(v, &p.Seed) },
	"rating_max_tokens": func(p *ABReportParams, v string) error { return parseInt(v, &p.RatingMaxTokens) },
	"rating_temperature": func(p *ABReportParams, v string) error {
		p.RatingTemperature = new(float64)
		return parseFloat(v, p.RatingTemperature)
	},

	"teacher.provider":                teacherField(func(c *teacher.Config, v string) error { c.Provider = v; return nil }),
	"teacher.base_url":                teacherField(func(c *teacher.Config, v string) error { c.BaseURL = v; return nil }),
	"teacher.model":                   teacherField(func(c *teacher.Config, v string) error { c.Model = v; return nil }),
	"teacher.api_key_env":             teacherField(func(c *teacher.Config, v string) error { c.APIKeyEnv = v; return nil }),
	"teacher.concurrency":             teacherField(func(c *teacher.Config, v string) error { return parseInt(v, &c.Concurrency) }),
	"teacher.requests_per_minute":     teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.RequestsPerMinute) }),
	"teacher.tokens_per_minute":       teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.TokensPerMinute) }),
	"teacher.max_retries":             teacherField(func(c *teacher.Config, v string) error { return parseInt(v, &c.MaxRetries) }),
	"teacher.timeout_s":               teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.TimeoutSeconds) }),
	"teacher.max_backoff_s":           teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.MaxBackoffSeconds) }),
	"teacher.pause_after_s":           teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.PauseAfterSeconds) }),
	"teacher.prompt_price_per_1k":     teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.PromptPricePer1K) }),
	"teacher.completion_price_per_1k": teacherField(func(c *teacher.Config, v string) error { return parseFloat(v, &c.CompletionPricePer1K) }),
	"teacher.seed":                    teacherField(func(c *teacher.Config, v string) error { return parseUint(v, &c.Seed) }),

	"scorer.kind":    scorerField(func(s *ScorerSpec, v string) error { s.Kind = v; return nil }),
	"scorer.path":    scorerField(func(s *ScorerSpec, v string) error { s.Path = v; return nil }),
	"scorer.model":   scorerField(func(s *ScorerSpec, v string) error { s.Model = v; return nil }),
	"scorer.version": scorerField(func(s *ScorerSpec, v string) error { return parseInt(v, &s.Version) }),
	"scorer.runtime": scorerField(func(s *ScorerSpec, v string) error { s.Runtime = v; return nil }),
	"scorer.params": scorerField(func(s *ScorerSpec, v string) error {
		if !json.Valid([]byte(v)) || !strings.HasPrefix(strings.TrimSpace(v), "{") {
			return fmt.Errorf("must be a JSON object, not %q", v)
		}
		s.Params = json.RawMessage(v)
		return nil
	}),
}

func abQueryNames() []string {
	names := make([]string, 0, len(abQueryFields))
	for k := range abQueryFields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func teacherField(set func(c *teacher.Config, v string) error) func(p *ABReportParams, v string) error {
	return func(p *ABReportParams, v string) error {
		if p.Teacher == nil {
			p.Teacher = &teacher.Config{}
		}
		return set(p.Teacher, v)
	}
}

func scorerField(set func(s *ScorerSpec, v string) error) func(p *ABReportParams, v string) error {
	return func(p *ABReportParams, v string) error {
		if p.Scorer == nil {
			p.Scorer = &ScorerSpec{}
		}
		return set(p.Scorer, v)
	}
}

func parseInt(v string, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("must be an integer, not %q", v)
	}
	*dst = n
	return nil
}

func parseUint(v string, dst *uint64) error {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return fmt.Errorf("must be a non-negative integer, not %q", v)
	}
	*dst = n
	return nil
}

func parseFloat(v string, dst *float64) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("must be a number, not %q", v)
	}
	*dst = f
	return nil
}

// ABReportEnv is what the server lends GET /admin/v1/ab/report: its stored files and registered models (the
// job platform), its own A/B log and its own metrics. Every field is optional.
type ABReportEnv struct {
	// DefaultLog is the A/B log read when the params name none (the server's --ab-log).
	DefaultLog string
	// OpenFile opens a stored file by id: ab_log may name one. Without it ab_log is a path.
	OpenFile func(ctx context.Context, id string) (io.ReadCloser, jobs.File, error)
	// ModelPath finds a registered reward model (scorer.model).
	ModelPath func(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error)
	// Metrics scrapes the server's own metrics (the text exposition format); used when the params give no
	// metrics_url, so the latency is the serving process's own histograms.
	Metrics func(ctx context.Context) (io.ReadCloser, error)
}

// Report builds the A/B report for p at once, as an ab-report job would with the same params (ratings are
// kept in memory only). Bad params are *jobs.ParamError, as a job's are.
func (env ABReportEnv) Report(ctx context.Context, p ABReportParams, opts Options) (*ABReport, error) {
	if p.ABLog == "" {
		if env.DefaultLog == "" {
			return nil, paramErr("ab_log", "is required: this server writes no A/B log (serve --ab-log FILE), so name a file id or a path")
		}
		p.ABLog = env.DefaultLog
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Judge == "scorer" {
		if err := opts.checkScorer("scorer", *p.Scorer); err != nil {
			return nil, err
		}
		if p.Scorer.Model != "" {
			if env.ModelPath == nil {
				return nil, paramErr("scorer.model", "this server has no model registry; give scorer.path")
			}
			if _, _, err := env.ModelPath(ctx, p.Scorer.Model, p.Scorer.Version); errors.Is(err, jobs.ErrNotFound) {
				return nil, paramErr("scorer.model", "no registered reward model %q version %d (0: the latest)", p.Scorer.Model, p.Scorer.Version)
			} else if err != nil {
				return nil, err
			}
		}
	}
	rc, err := env.openLog(ctx, p.ABLog)
	if err != nil {
		return nil, err
	}
	recs, skipped, err := ReadABLog(rc)
	rc.Close()
	if err != nil {
		return nil, paramErr("ab_log", "%v", err)
	}
	cfg, closeRater, err := p.config(ctx, envRunner{env}, opts, recs, skipped, nil)
	if err != nil {
		var pe *jobs.ParamError
		if errors.As(err, &pe) {
			return nil, err
		}
		field := "teacher"
		if p.Judge == "scorer" {
			field = "scorer"
		}
		return nil, paramErr(field, "the judge does not open: %v", err)
	}
	defer closeRater()
	if p.MetricsURL == "" && env.Metrics != nil {
		cfg.Metrics = env.Metrics
	}
	return BuildABReport(ctx, cfg)
}

// openLog opens the log by file id, else as a path.
func (env ABReportEnv) openLog(ctx context.Context, ref string) (io.ReadCloser, error) {
	if env.OpenFile != nil {
		rc, _, err := env.OpenFile(ctx, ref)
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, jobs.ErrNotFound) {
			return nil, err
		}
	}
	rc, err := os.Open(ref)
	if err != nil {
		return nil, paramErr("ab_log", "%q is neither a file id nor a readable path", ref)
	}
	return rc, nil
}

// envRunner lends openRater the env's model registry (a registered reward model as judge); nothing else of a
// runner is used while the rater opens.
type envRunner struct{ env ABReportEnv }

func (r envRunner) Job() jobs.Job                                 { return jobs.Job{} }
func (r envRunner) Progress(done, total int64, unit string)       {}
func (r envRunner) Metrics(step int64, values map[string]float64) {}
func (r envRunner) Event(level, msg string, data any)             {}
func (r envRunner) Output(name string) (RowStore, error) {
	return nil, fmt.Errorf("pipeline: the A/B report route keeps no outputs")
}
func (r envRunner) OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error) {
	if r.env.OpenFile == nil {
		return nil, jobs.File{}, jobs.ErrNotFound
	}
	return r.env.OpenFile(ctx, id)
}
func (r envRunner) PublishFile(ctx context.Context, name, purpose string, content io.Reader) (jobs.File, error) {
	return jobs.File{}, fmt.Errorf("pipeline: the A/B report route publishes no files")
}
func (r envRunner) SetResult(v any) error { return nil }
func (r envRunner) ModelPath(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error) {
	if r.env.ModelPath == nil {
		return "", jobs.ModelVersion{}, fmt.Errorf("no model registry here")
	}
	return r.env.ModelPath(ctx, name, version)
}

// GatheredMetrics is ABReportEnv.Metrics for a server in this process: its registry's latency histograms
// (LatencyMetric) in the text exposition format, as its /metrics would serve them.
func GatheredMetrics(g prometheus.Gatherer) func(ctx context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		fams, err := g.Gather()
		if err != nil {
			return nil, fmt.Errorf("pipeline: gathering the server's metrics: %w", err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range fams {
			if f.GetName() != LatencyMetric {
				continue
			}
			if err := enc.Encode(f); err != nil {
				return nil, fmt.Errorf("pipeline: encoding the server's metrics: %w", err)
			}
		}
		return io.NopCloser(&buf), nil
	}
}
