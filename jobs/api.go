package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// This file is the contract between the platform, its HTTP API (package admin) and the job types. Field names
// and JSON tags are the /admin/v1 wire format.

// Status is a job's state; the vocabulary is that of OpenAI's fine-tuning jobs.
type Status string

// Job states. A job moves queued -> running -> succeeded | failed | cancelled; a running job whose worker died
// stays running until its lease expires and a worker reclaims it (running again, Attempts+1). Retry moves a
// failed or cancelled job back to queued.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Finished reports whether s is a final state.
func (s Status) Finished() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Progress is how far a job has come. Total 0 means unknown. ETASeconds is estimated by the platform from the
// rate of Done since the job (re)started; nil when unknown and once the attempt has ended.
type Progress struct {
	Done       int64    `json:"done"`
	Total      int64    `json:"total"`
	Unit       string   `json:"unit"`
	ETASeconds *float64 `json:"eta_s"`
}

// JobError says why a job failed. Code is stable and machine-readable, e.g. "invalid_input", "interrupted"
// (a job type that cannot resume was interrupted by a crash), "internal".
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is one job as the API shows it. Times are Unix seconds, as OpenAI's APIs give them.
type Job struct {
	ID         string          `json:"id"`
	Object     string          `json:"object"` // "job"
	Type       string          `json:"type"`
	Status     Status          `json:"status"`
	Params     json.RawMessage `json:"params"`
	CreatedAt  int64           `json:"created_at"`
	StartedAt  *int64          `json:"started_at"`
	FinishedAt *int64          `json:"finished_at"`
	Progress   Progress        `json:"progress"`
	// Metrics are the latest value of each metric the job reported (Run.Metrics); the full series is in its
	// events.
	Metrics map[string]float64 `json:"metrics"`
	// Result is what the job type set with Run.SetResult; null until then.
	Result json.RawMessage `json:"result"`
	// Outputs are the ids of the files the job published (Run.PublishFile), in publishing order.
	Outputs         []string  `json:"outputs"`
	Error           *JobError `json:"error"`
	Attempts        int       `json:"attempts"`
	CancelRequested bool      `json:"cancel_requested"`
}

// Event is one entry of a job's log. Seq increases by one per job from 1. Level is "info", "warn", "error" or
// "metrics" (Data then holds {"step": n, "values": {...}}).
type Event struct {
	Seq       int64           `json:"seq"`
	JobID     string          `json:"job_id"`
	CreatedAt int64           `json:"created_at"`
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// File is an uploaded or job-produced file, as OpenAI's Files API describes one.
type File struct {
	ID        string `json:"id"`
	Object    string `json:"object"` // "file"
	Bytes     int64  `json:"bytes"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	SHA256    string `json:"sha256"`
	CreatedAt int64  `json:"created_at"`
	// JobID is the job that published the file; "" for uploads.
	JobID string `json:"job_id,omitempty"`
}

// ModelKind says what a registered model is for.
type ModelKind string

// Model kinds: a generator is one GGUF file; a reward model is a directory (model.onnx, tokenizer.json,
// config.json) stored as one tar file.
const (
	KindGenerator ModelKind = "generator"
	KindReward    ModelKind = "reward"
)

// ModelVersion is one registered version of a named model. Versions of a name count up from 1.
type ModelVersion struct {
	Name      string         `json:"name"`
	Kind      ModelKind      `json:"kind"`
	Version   int            `json:"version"`
	FileID    string         `json:"file_id"`
	JobID     string         `json:"job_id,omitempty"`
	SHA256    string         `json:"sha256"`
	CreatedAt int64          `json:"created_at"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// Activation records that a model version serves under some served model names (hot swap). The latest
// activation of each served name wins; activations survive restarts.
type Activation struct {
	Model       string   `json:"model"`
	Version     int      `json:"version"`
	ServeAs     []string `json:"serve_as"`
	ActivatedAt int64    `json:"activated_at"`
}

// ModelSpec asks to register a model version from an uploaded file (FileID) or from a job's output (JobID and
// Output, the output file's name; Output "" means the job's only output of a model purpose).
type ModelSpec struct {
	Name     string         `json:"name"`
	Kind     ModelKind      `json:"kind"`
	FileID   string         `json:"file_id,omitempty"`
	JobID    string         `json:"job_id,omitempty"`
	Output   string         `json:"output,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// JobFilter selects jobs; zero fields match all.
type JobFilter struct {
	Type   string
	Status Status
}

// Errors callers map to HTTP statuses.
var (
	ErrNotFound    = errors.New("jobs: not found")                   // 404
	ErrConflict    = errors.New("jobs: conflict with current state") // 409: cancel a finished job, delete a file in use
	ErrTooLarge    = errors.New("jobs: file is too large")           // 413
	ErrUnknownType = errors.New("jobs: unknown job type")            // 400, param "type"
	ErrLeaseLost   = errors.New("jobs: lease lost")                  // internal: another worker owns the job
)

// ParamError reports a bad request field (400). Field is a dotted path such as "params.input_file" or
// "filename"; for a bad row of an uploaded file, Line is its 1-based line number.
type ParamError struct {
	Field   string
	Line    int
	Message string
}

func (e *ParamError) Error() string {
	if e.Line > 0 {
		return "jobs: " + e.Field + " line " + itoa(e.Line) + ": " + e.Message
	}
	return "jobs: " + e.Field + ": " + e.Message
}

// Type is one kind of job. Implementations are stateless: all state of a job lives in its *Run.
type Type interface {
	// Name is the type's name in POST /admin/v1/jobs, e.g. "generate-data".
	Name() string
	// Validate checks params before anything is queued: a *ParamError naming the field (Field relative to
	// params, e.g. "input_file") for a bad value. It may not do I/O beyond cheap checks; use ctx for file
	// lookups (a FileChecker is passed so an input file id can be checked to exist).
	Validate(ctx context.Context, params json.RawMessage, files FileChecker) error
	// Run does the work. It is called again on the same job after a crash, a restart or a retry: it must resume
	// from what run holds (Checkpoint, Output rows) rather than start over. It returns nil on success, the
	// context's error when ctx is done (after flushing: the platform then records cancelled, or leaves the job
	// for another worker on shutdown), or an error (a *JobError, or any error, recorded as code "internal").
	Run(ctx context.Context, run *Run) error
}

// Resumer is implemented by types that cannot resume: when Resumable returns false, a job interrupted by a
// crash ends failed with code "interrupted" instead of running again.
type Resumer interface {
	Resumable() bool
}

// FileChecker looks up files during Validate.
type FileChecker interface {
	File(ctx context.Context, id string) (File, error)
}

// Purpose describes a file purpose accepted on upload. ValidateLine, when not nil, is called on each non-empty
// line of an upload of this purpose (a JSONL file) and rejects it with a message naming what is wrong; nil
// means any content (e.g. a model file).
type Purpose struct {
	Name         string
	Description  string
	ValidateLine func(line []byte) error
}

// Config configures a Service.
type Config struct {
	// Store holds jobs, files, models and events; required.
	Store Store
	// DataDir holds file contents, job working directories and extracted models; required. Replicas sharing a
	// Postgres store must share it too.
	DataDir string
	// Types are the job types this Service runs and accepts.
	Types []Type
	// Purposes are the accepted file purposes besides the built-in ones ("model", "reward-model", "results").
	Purposes []Purpose
	// Workers bounds the jobs running at once on this Service; 0 means 1. Negative means none (submit only).
	Workers int
	// Threads is the number of CPU threads one job may use (Run.Threads); 0 means 1.
	Threads int
	// Lease is how long a claim lasts without a heartbeat; 0 means 10 s. Heartbeats run every Lease/4.
	Lease time.Duration
	// MaxFileBytes bounds uploads; 0 means 1 GiB.
	MaxFileBytes int64
	// Owner names this Service in leases; "" means hostname-pid-random.
	Owner string
	// Logger receives the platform's logs; nil means slog.Default().
	Logger *slog.Logger
}

// itoa avoids strconv in this contract file.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
