package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
)

// Service is the job platform: files, jobs and their workers, the model registry. Create it with New, Start its
// workers, Close it on shutdown (running jobs are interrupted and left for the next claim, never lost).
//
// The method set below is the contract package admin and cmd/bestofn are written against.
type Service struct {
	cfg Config
}

var errNotImplemented = errors.New("jobs: not implemented yet")

// New checks cfg and opens the data directory.
func New(cfg Config) (*Service, error) { return nil, errNotImplemented }

// Start starts the workers; they stop when ctx is done or Close is called.
func (s *Service) Start(ctx context.Context) error { return errNotImplemented }

// Close stops the workers (their jobs' contexts are cancelled; interrupted jobs keep their checkpoint and are
// released for the next claim) and closes nothing it did not open (the Store is the caller's).
func (s *Service) Close() error { return errNotImplemented }

// Types returns the names of the job types this Service accepts.
func (s *Service) Types() []string { return nil }

// UploadFile stores an uploaded file. filename is kept as metadata only (never a path); purpose must be known;
// a purpose with a ValidateLine rejects the file with a *ParamError (Field "file", Line set) naming the first
// bad row. Errors: *ParamError, ErrTooLarge.
func (s *Service) UploadFile(ctx context.Context, filename, purpose string, content io.Reader) (File, error) {
	return File{}, errNotImplemented
}

// File returns a file's metadata (ErrNotFound).
func (s *Service) File(ctx context.Context, id string) (File, error) {
	return File{}, errNotImplemented
}

// Files lists files, newest first; purpose "" means all.
func (s *Service) Files(ctx context.Context, purpose string) ([]File, error) {
	return nil, errNotImplemented
}

// OpenFile opens a file's content.
func (s *Service) OpenFile(ctx context.Context, id string) (io.ReadCloser, File, error) {
	return nil, File{}, errNotImplemented
}

// DeleteFile deletes a file (ErrConflict while a queued or running job or a registered model uses it).
func (s *Service) DeleteFile(ctx context.Context, id string) error { return errNotImplemented }

// Submit validates params with the type's Validate and queues a job. Errors: ErrUnknownType, *ParamError.
func (s *Service) Submit(ctx context.Context, typ string, params json.RawMessage) (Job, error) {
	return Job{}, errNotImplemented
}

// Job returns a job (ErrNotFound).
func (s *Service) Job(ctx context.Context, id string) (Job, error) { return Job{}, errNotImplemented }

// Jobs lists jobs, newest first.
func (s *Service) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	return nil, errNotImplemented
}

// Events returns a job's events with Seq > after, oldest first, at most limit (0 means all).
func (s *Service) Events(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	return nil, errNotImplemented
}

// Cancel cancels a queued job at once, or asks a running one to stop (it ends cancelled within a few seconds).
// ErrConflict for a finished job.
func (s *Service) Cancel(ctx context.Context, id string) (Job, error) {
	return Job{}, errNotImplemented
}

// Retry queues a failed or cancelled job again; it resumes from its last checkpoint. ErrConflict otherwise.
func (s *Service) Retry(ctx context.Context, id string) (Job, error) { return Job{}, errNotImplemented }

// Wait blocks until the job is finished or ctx is done, and returns it.
func (s *Service) Wait(ctx context.Context, id string) (Job, error) { return Job{}, errNotImplemented }

// RegisterModel registers a new version of spec.Name from a file or a job output. Errors: *ParamError,
// ErrNotFound.
func (s *Service) RegisterModel(ctx context.Context, spec ModelSpec) (ModelVersion, error) {
	return ModelVersion{}, errNotImplemented
}

// Models lists every registered version and the current activations.
func (s *Service) Models(ctx context.Context) ([]ModelVersion, []Activation, error) {
	return nil, nil, errNotImplemented
}

// ModelPath returns the local path of a version (version 0: the latest): the GGUF file of a generator, the
// extracted directory of a reward model.
func (s *Service) ModelPath(ctx context.Context, name string, version int) (string, ModelVersion, error) {
	return "", ModelVersion{}, errNotImplemented
}

// RecordActivation remembers that version serves as serveAs (after the caller has loaded it successfully).
func (s *Service) RecordActivation(ctx context.Context, a Activation) error { return errNotImplemented }

// Activations returns the latest activation of each served name, for re-applying them at start-up.
func (s *Service) Activations(ctx context.Context) ([]Activation, error) {
	return nil, errNotImplemented
}
