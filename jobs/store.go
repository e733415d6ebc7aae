package jobs

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// Store is the persistence the Service needs; see packages jobs/sqlitestore and jobs/pgstore, both checked by
// the conformance tests of package jobs/storetest. Every method is one transaction, so every state change is
// atomic: a crash leaves a job either before or after it.
//
// Methods a worker calls on a job it runs (UpdateRun, FinishRun, PublishOutput) carry the lease token of its
// claim and fail with ErrLeaseLost when another worker has claimed the job since (or it is no longer running).
type Store interface {
	io.Closer

	// CreateFile records an uploaded file whose content is already stored.
	CreateFile(ctx context.Context, f File) error
	// File returns a file (ErrNotFound).
	File(ctx context.Context, id string) (File, error)
	// Files lists files, newest first; purpose "" means all.
	Files(ctx context.Context, purpose string) ([]File, error)
	// DeleteFile deletes a file's record: ErrNotFound, or ErrConflict while a model version uses it or the
	// params of a queued or running job name it.
	DeleteFile(ctx context.Context, id string) error

	// CreateJob records a new queued job (and its "queued" event).
	CreateJob(ctx context.Context, j Job) error
	// Job returns a job (ErrNotFound).
	Job(ctx context.Context, id string) (Job, error)
	// Jobs lists jobs, newest first.
	Jobs(ctx context.Context, f JobFilter) ([]Job, error)
	// Events returns a job's events with Seq > after, oldest first, at most limit (0: all). ErrNotFound for an
	// unknown job.
	Events(ctx context.Context, id string, after int64, limit int) ([]Event, error)
	// CancelJob ends a queued job (or a running one whose lease expired at now) cancelled at once, and sets
	// CancelRequested on a live running one. ErrConflict for a finished job.
	CancelJob(ctx context.Context, id string, now time.Time) (Job, error)
	// RetryJob moves a failed or cancelled job back to queued, keeping its checkpoint; Attempts and the count
	// of interruptions start again from 0. ErrConflict otherwise.
	RetryJob(ctx context.Context, id string) (Job, error)

	// ClaimJob claims the oldest job of one of req.Types that is queued or running with a lease expired at
	// req.Now: it becomes running with a new lease (token) until req.Now+req.Lease and Attempts+1. It returns
	// nil, nil when there is none.
	ClaimJob(ctx context.Context, req ClaimRequest) (*Claim, error)
	// UpdateRun renews the lease of a running job and applies u; it reports whether a cancel was requested.
	UpdateRun(ctx context.Context, id, token string, u RunUpdate) (cancelRequested bool, err error)
	// FinishRun applies u and ends the claim: status queued releases the job for the next claim (keeping its
	// checkpoint), a final status finishes it with jobErr (nil unless failed).
	FinishRun(ctx context.Context, id, token string, u RunUpdate, status Status, jobErr *JobError) error
	// PublishOutput records f (content stored, f.JobID set) as an output of the running job. An earlier output
	// of the job with the same filename and sha256 is kept instead (kept is it, and the caller removes f's
	// content); one with other content is replaced: it leaves the outputs and, unless a model version uses it,
	// the files (removed names it, so the caller removes its content).
	PublishOutput(ctx context.Context, id, token string, f File) (kept File, removed string, err error)

	// CreateModelVersion registers v as the next version of v.Name (v.Version is ignored) and returns it; a
	// version of the name with the same FileID already registered is returned instead. ErrConflict when the
	// name is registered with another kind.
	CreateModelVersion(ctx context.Context, v ModelVersion) (ModelVersion, error)
	// ModelVersion returns a version of a model, version 0 the latest (ErrNotFound).
	ModelVersion(ctx context.Context, name string, version int) (ModelVersion, error)
	// ModelVersions lists every version, by name then version.
	ModelVersions(ctx context.Context) ([]ModelVersion, error)
	// AddActivation records an activation.
	AddActivation(ctx context.Context, a Activation) error
	// Activations lists every activation recorded, oldest first.
	Activations(ctx context.Context) ([]Activation, error)
}

// ClaimRequest asks Store.ClaimJob for a job.
type ClaimRequest struct {
	Owner string   // who claims (Config.Owner)
	Token string   // the new lease's token, unique per claim
	Types []string // the job types the claimer runs
	JobID string   // when set, only this job may be claimed (RunJob's one job)
	Now   time.Time
	Lease time.Duration
}

// Claim is a job a worker claimed.
type Claim struct {
	Job        Job
	Checkpoint json.RawMessage
	// Interrupted is set when the job was running under an expired lease: its last worker died.
	Interrupted bool
	// Interruptions counts the claims of this job that found it Interrupted, this one included.
	Interruptions int
}

// RunUpdate is what a worker writes about a running job; nil fields are left as they are.
type RunUpdate struct {
	LeaseUntil time.Time // the renewed lease; zero leaves it
	Progress   *Progress
	Metrics    map[string]float64 // the latest values, replacing the stored ones
	Result     json.RawMessage
	Checkpoint json.RawMessage
	Events     []Event // appended with the next Seq numbers (Seq and JobID are set by the store)
}
