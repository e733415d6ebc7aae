package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Run is a job's handle on the platform while it runs: its parameters, progress, events, checkpoints, outputs
// and files. It is safe for concurrent use by the job's goroutines.
//
// The method set below is the contract job types are written against; the platform implements it.
type Run struct {
	impl runImpl
}

// runImpl is the platform's side of a Run (defined with the Service).
type runImpl interface {
	job() Job
	threads() int
	dir() string
	progress(done, total int64, unit string)
	metrics(step int64, values map[string]float64)
	event(level, msg string, data any)
	checkpoint() json.RawMessage
	saveCheckpoint(ctx context.Context, state any) error
	output(name string) (*Output, error)
	openFile(ctx context.Context, id string) (io.ReadCloser, File, error)
	filePath(ctx context.Context, id string) (string, error)
	publishFile(ctx context.Context, name, purpose string, content io.Reader) (File, error)
	publishDir(ctx context.Context, name, purpose, dir string) (File, error)
	setResult(v any) error
	registerModel(ctx context.Context, spec ModelSpec) (ModelVersion, error)
	modelPath(ctx context.Context, name string, version int) (string, ModelVersion, error)
}

// Job returns the job as it was when this attempt started (ID, Type, Params, Attempts).
func (r *Run) Job() Job { return r.impl.job() }

// DecodeParams decodes the job's params into v, rejecting unknown fields.
func (r *Run) DecodeParams(v any) error { return DecodeParams(r.impl.job().Params, v) }

// Threads is the number of CPU threads the job may use (the training thread cap, Config.Threads).
func (r *Run) Threads() int { return r.impl.threads() }

// Dir is the job's working directory: the same path on every attempt, on the data directory, removed when the
// job is deleted. Files a job writes there survive a crash only if it fsyncs them.
func (r *Run) Dir() string { return r.impl.dir() }

// Progress reports how far the job is (done of total, in unit such as "items", "steps", "tokens"). It is cheap:
// the platform persists it at most about once a second and at every checkpoint.
func (r *Run) Progress(done, total int64, unit string) { r.impl.progress(done, total, unit) }

// Metrics reports metric values at a step (e.g. "loss", "eval_accuracy"): they become the job's latest metrics
// and a "metrics" event, so the series (a loss curve) can be read back from the events.
func (r *Run) Metrics(step int64, values map[string]float64) { r.impl.metrics(step, values) }

// Event appends an entry to the job's log; level is "info", "warn" or "error". data may be nil.
func (r *Run) Event(level, msg string, data any) { r.impl.event(level, msg, data) }

// Checkpoint returns the state the job last saved with SaveCheckpoint, or nil on a fresh start.
func (r *Run) Checkpoint() json.RawMessage { return r.impl.checkpoint() }

// SaveCheckpoint durably records state (JSON-encoded) as the job's checkpoint, with the current progress,
// before it returns. Large state (optimizer moments, weights) belongs in files under Dir, written to a temporary
// name, fsynced and renamed before the checkpoint that names them is saved.
func (r *Run) SaveCheckpoint(ctx context.Context, state any) error {
	return r.impl.saveCheckpoint(ctx, state)
}

// Output opens the job's append-only per-item output of that name (created empty on first use). Rows appended
// before a crash are there on the next attempt.
func (r *Run) Output(name string) (*Output, error) { return r.impl.output(name) }

// OpenFile opens a stored file's content.
func (r *Run) OpenFile(ctx context.Context, id string) (io.ReadCloser, File, error) {
	return r.impl.openFile(ctx, id)
}

// FilePath is the local path of a stored file's content, for libraries that need a path; read only.
func (r *Run) FilePath(ctx context.Context, id string) (string, error) {
	return r.impl.filePath(ctx, id)
}

// PublishFile stores content as a file of the job (temporary name, fsync, rename, sha256) and adds it to the
// job's outputs. Publishing the same name again on a later attempt replaces the earlier output of that name.
func (r *Run) PublishFile(ctx context.Context, name, purpose string, content io.Reader) (File, error) {
	return r.impl.publishFile(ctx, name, purpose, content)
}

// PublishDir publishes a directory (e.g. a reward model: model.onnx, tokenizer.json, config.json) as one tar
// file, as PublishFile does.
func (r *Run) PublishDir(ctx context.Context, name, purpose, dir string) (File, error) {
	return r.impl.publishDir(ctx, name, purpose, dir)
}

// SetResult sets the job's result (JSON-encoded), shown in the API; the last call wins.
func (r *Run) SetResult(v any) error { return r.impl.setResult(v) }

// RegisterModel registers a model version from a file the job published (spec.FileID) in the model registry.
func (r *Run) RegisterModel(ctx context.Context, spec ModelSpec) (ModelVersion, error) {
	return r.impl.registerModel(ctx, spec)
}

// ModelPath returns the local path of a registered model version (a GGUF file, or an extracted reward model
// directory); version 0 means the latest.
func (r *Run) ModelPath(ctx context.Context, name string, version int) (string, ModelVersion, error) {
	return r.impl.modelPath(ctx, name, version)
}

// Output is an append-only, crash-safe set of rows keyed by item (e.g. the index of an instruction). Each
// Append is written and fsynced before it returns; a row torn by a crash is discarded when the output is
// reopened. Keys are unique: appending a key that is already there returns an error (callers check Has first).
//
// The method set below is the contract; the platform implements it.
type Output struct {
	impl outputImpl
}

type outputImpl interface {
	has(key string) bool
	get(key string) (json.RawMessage, bool)
	keys() []string
	appendRow(key string, row any) error
}

// Has reports whether key has a row.
func (o *Output) Has(key string) bool { return o.impl.has(key) }

// Get returns key's row as JSON.
func (o *Output) Get(key string) (json.RawMessage, bool) { return o.impl.get(key) }

// Keys returns the keys in the order they were appended.
func (o *Output) Keys() []string { return o.impl.keys() }

// Len is the number of rows.
func (o *Output) Len() int { return len(o.impl.keys()) }

// Append durably adds row (JSON-encoded) under key.
func (o *Output) Append(key string, row any) error { return o.impl.appendRow(key, row) }

// DecodeParams decodes JSON params strictly (unknown fields are an error) into v, as every Type's Validate and
// Run should; a type error becomes a *ParamError naming the field.
func DecodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return &ParamError{Field: typeErr.Field, Message: "must be " + typeErr.Type.String() + ", not " + typeErr.Value}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return &ParamError{Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Message: "unknown field"}
		default:
			return &ParamError{Field: "params", Message: err.Error()}
		}
	}
	if dec.More() {
		return &ParamError{Field: "params", Message: "trailing data after the JSON object"}
	}
	return nil
}
