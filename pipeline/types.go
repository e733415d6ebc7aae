package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// Scorer scores candidate answers to a prompt, higher is better: a reward model, or rule checks of verifiable
// instructions. *reward.Model implements it.
type Scorer interface {
	Score(ctx context.Context, prompt string, candidates []string) ([]float32, error)
}

// ScorerSpec names a scorer in job params: a kind, and what that kind needs.
type ScorerSpec struct {
	// Kind is "reward-model" (built in: an ONNX reward model directory, or a registered reward model) or a kind
	// registered in Options.Scorers (e.g. "rules").
	Kind string `json:"kind"`
	// Path is a reward model directory; Model a registered reward model's name (Version 0: the latest).
	Path    string `json:"path,omitempty"`
	Model   string `json:"model,omitempty"`
	Version int    `json:"version,omitempty"`
	// Runtime is the reward model runtime: "auto" (default), "go" or "ort".
	Runtime string `json:"runtime,omitempty"`
	// Params are passed to a registered kind.
	Params json.RawMessage `json:"params,omitempty"`
}

// ScorerFunc opens a scorer of a registered kind from its spec; close is called when the job is done.
type ScorerFunc func(ctx context.Context, spec ScorerSpec) (s Scorer, close func() error, err error)

// Options configure the job types.
type Options struct {
	// Scorers are scorer kinds besides the built-in "reward-model", by kind name.
	Scorers map[string]ScorerFunc
}

// Type names.
const (
	TypeGenerateData = "generate-data"
	TypeFeedback     = "feedback"
	TypeABReport     = "ab-report"
)

// Types returns the job types of this package, for cmd/bestofn to register with the platform.
func Types(opts Options) []jobs.Type {
	return []jobs.Type{generateType{opts}, feedbackType{opts}, abReportType{opts}}
}

// runner is what the job types use of a *jobs.Run; jobRun adapts one. It lets the types' logic be driven by
// the platform and, in tests of the logic alone, by a file-backed runner.
type runner interface {
	Job() jobs.Job
	Progress(done, total int64, unit string)
	Metrics(step int64, values map[string]float64)
	Event(level, msg string, data any)
	Output(name string) (RowStore, error)
	OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error)
	PublishFile(ctx context.Context, name, purpose string, content io.Reader) (jobs.File, error)
	SetResult(v any) error
	ModelPath(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error)
}

// RowStore is an append-only set of rows by key: a job's per-item output (*jobs.Output), or MemoryRows.
type RowStore interface {
	Has(key string) bool
	Get(key string) (json.RawMessage, bool)
	Keys() []string
	Len() int
	Append(key string, row any) error
}

type jobRun struct{ *jobs.Run }

func (r jobRun) Output(name string) (RowStore, error) { return r.Run.Output(name) }

// decodeParams decodes strictly into v and applies its defaults and checks.
type checker interface{ check() error }

func decode(raw json.RawMessage, v checker) error {
	if err := jobs.DecodeParams(raw, v); err != nil {
		return err
	}
	return v.check()
}

// paramErr is a *jobs.ParamError for field.
func paramErr(field, format string, args ...any) error {
	return &jobs.ParamError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// teacherParamErr turns a teacher.ConfigError into a ParamError under prefix ("teacher", "judge", ...).
func teacherParamErr(prefix string, err error) error {
	var ce *teacher.ConfigError
	if errors.As(err, &ce) {
		return paramErr(prefix+"."+ce.Field, "%s", ce.Message)
	}
	return err
}

// checkTeacher validates a teacher config field, including that its API key variable is set on this server.
func checkTeacher(prefix string, c *teacher.Config) error {
	if c == nil {
		return paramErr(prefix, "is required")
	}
	if err := c.Validate(); err != nil {
		return teacherParamErr(prefix, err)
	}
	if c.APIKeyEnv != "" {
		if v, ok := os.LookupEnv(c.APIKeyEnv); !ok || v == "" {
			return paramErr(prefix+".api_key_env", "environment variable %s is not set on the server", c.APIKeyEnv)
		}
	}
	return nil
}

// checkSampling checks optional sampling values against the ranges generate-data and the OpenAI API accept:
// temperatures (by field name) in [0, 2], top_p in (0, 1].
func checkSampling(temperatures map[string]*float64, topP *float64) error {
	for _, f := range sortedNames(temperatures) {
		if v := temperatures[f]; v != nil && !(*v >= 0 && *v <= 2) {
			return paramErr(f, "must be in [0, 2]")
		}
	}
	if topP != nil && !(*topP > 0 && *topP <= 1) {
		return paramErr("top_p", "must be in (0, 1]")
	}
	return nil
}

// checkNonNegative refuses the first negative count, by field name.
func checkNonNegative(counts map[string]int) error {
	for _, f := range sortedNames(counts) {
		if counts[f] < 0 {
			return paramErr(f, "must be >= 0")
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// jobEvents sends a teacher client's pause and retry events to the job's log.
func jobEvents(r runner) teacher.EventFunc {
	return func(level, msg string, data map[string]any) { r.Event(level, msg, data) }
}

// newTeacher builds the job's client, sending its events to the job's log.
func newTeacher(r runner, prefix string, c teacher.Config) (*teacher.Client, error) {
	cl, err := teacher.New(c, teacher.WithEvents(jobEvents(r)))
	if err != nil {
		return nil, jobFailed("invalid_input", "%v", teacherParamErr(prefix, err))
	}
	return cl, nil
}

// checkFileRef checks that exactly one of a file id and a path is given, and that the id names a file.
func checkFileRef(ctx context.Context, files jobs.FileChecker, idField, id, pathField, path string, required bool) error {
	switch {
	case id != "" && path != "":
		return paramErr(idField, "give %s or %s, not both", idField, pathField)
	case id == "" && path == "":
		if required {
			return paramErr(idField, "is required (or %s)", pathField)
		}
		return nil
	case id != "" && files != nil:
		if _, err := files.File(ctx, id); err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return paramErr(idField, "no file %q", id)
			}
			return err
		}
	case path != "":
		if _, err := os.Stat(path); err != nil {
			return paramErr(pathField, "%v", err)
		}
	}
	return nil
}

// openRef opens a stored file by id, or a local path.
func openRef(ctx context.Context, r runner, id, path string) (io.ReadCloser, error) {
	if id != "" {
		rc, _, err := r.OpenFile(ctx, id)
		return rc, err
	}
	return os.Open(path)
}

// jobFailed is the error a job ends with, with a stable code ("invalid_input", "teacher_failed").
func jobFailed(code, format string, args ...any) error {
	return &jobs.JobError{Code: code, Message: fmt.Sprintf(format, args...)}
}
