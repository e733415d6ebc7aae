package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Service is the job platform: files, jobs and their workers, the model registry. Create it with New, Start its
// workers, Close it on shutdown (running jobs are interrupted and left for the next claim, never lost).
//
// The method set below is the contract package admin and cmd/bestofn are written against.
type Service struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	types    map[string]Type
	purposes map[string]Purpose
	dirs     dataDirs

	mu       sync.Mutex
	started  bool
	closed   bool
	stop     context.CancelCauseFunc // cancels the workers' context
	running  map[string]*runState    // jobs running on this Service, by id
	changed  chan struct{}           // closed and replaced whenever a job changes here
	workers  sync.WaitGroup
	extracts sync.Mutex  // serializes reward-model extractions in this process
	killed   atomic.Bool // Kill was called: write nothing more
	onlyJob  string      // when set (RunJob), the workers claim this job and no other
}

// MaxInterruptions bounds how often a job is resumed after its worker died (a crash loop, e.g. a job that runs
// out of memory every time): the claim after that many ends it failed with code "interrupted". Retry starts the
// count again.
const MaxInterruptions = 5

// shutdownTimeout bounds how long Close waits for running jobs to stop.
const shutdownTimeout = 30 * time.Second

// Reasons a running job's context is cancelled (its context.Cause).
var (
	errCancelRequested = errors.New("jobs: cancel requested")
	errShutdown        = errors.New("jobs: service shutting down")
	errKilled          = errors.New("jobs: service killed")
)

// dataDirs are the directories under Config.DataDir.
type dataDirs struct {
	files  string // file contents, by file id
	jobs   string // per job: work/ (Run.Dir) and outputs/ (Run.Output)
	models string // extracted reward models, by file id
}

var typeName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// New checks cfg and opens the data directory.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: Config.Store is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("jobs: Config.DataDir is required")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 1 << 30
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomString(6))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("jobs: data dir: %w", err)
	}
	cfg.DataDir = abs
	s := &Service{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		types:    map[string]Type{},
		purposes: map[string]Purpose{},
		running:  map[string]*runState{},
		changed:  make(chan struct{}),
		dirs: dataDirs{
			files:  filepath.Join(abs, "files"),
			jobs:   filepath.Join(abs, "jobs"),
			models: filepath.Join(abs, "models"),
		},
	}
	for _, t := range cfg.Types {
		name := t.Name()
		if !typeName.MatchString(name) {
			return nil, fmt.Errorf("jobs: job type name %q: want lowercase letters, digits, '.', '_' or '-'", name)
		}
		if _, dup := s.types[name]; dup {
			return nil, fmt.Errorf("jobs: job type %q registered twice", name)
		}
		s.types[name] = t
	}
	for _, p := range builtinPurposes() {
		s.purposes[p.Name] = p
	}
	for _, p := range cfg.Purposes {
		if p.Name == "" {
			return nil, errors.New("jobs: a Purpose needs a Name")
		}
		if _, dup := s.purposes[p.Name]; dup {
			return nil, fmt.Errorf("jobs: file purpose %q defined twice", p.Name)
		}
		s.purposes[p.Name] = p
	}
	for _, dir := range []string{s.dirs.files, s.dirs.jobs, s.dirs.models} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("jobs: data dir: %w", err)
		}
	}
	s.removeStaleTemps()
	return s, nil
}

// Start starts the workers; they stop when ctx is done or Close is called.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("jobs: Start after Close")
	case s.started:
		return errors.New("jobs: Start called twice")
	}
	s.started = true
	ctx, s.stop = context.WithCancelCause(ctx)
	for i := 0; i < s.cfg.Workers; i++ {
		s.workers.Add(1)
		go s.worker(ctx)
	}
	return nil
}

// Close stops the workers (their jobs' contexts are cancelled; interrupted jobs keep their checkpoint and are
// released for the next claim) and closes nothing it did not open (the Store is the caller's).
func (s *Service) Close() error { return s.shutdown(errShutdown) }

// Kill stops the Service as a crash would, for tests of crash recovery: the workers stop and running jobs'
// contexts are cancelled, but from this call on nothing of theirs is written (no heartbeat, progress, output row
// or final state), so they stay running in the store until their leases expire and another Service reclaims
// them. It returns when the jobs have returned.
func (s *Service) Kill() { s.shutdown(errKilled) }

func (s *Service) shutdown(cause error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if cause == errKilled {
		s.killed.Store(true)
	}
	stop := s.stop
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop(cause)
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(shutdownTimeout):
		return fmt.Errorf("jobs: %d jobs did not stop within %s; their leases will expire", s.runningCount(), shutdownTimeout)
	}
}

func (s *Service) runningCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// notify wakes the workers and Wait calls.
func (s *Service) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns a channel closed at the next notify.
func (s *Service) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// pollInterval is how often idle workers and Wait look at the store for changes made elsewhere (another
// replica, an expired lease).
func (s *Service) pollInterval() time.Duration {
	return min(max(s.cfg.Lease/8, 20*time.Millisecond), time.Second)
}

// Types returns the names of the job types this Service accepts.
func (s *Service) Types() []string {
	names := make([]string, 0, len(s.types))
	for name := range s.types {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Submit validates params with the type's Validate and queues a job. Errors: ErrUnknownType, *ParamError.
func (s *Service) Submit(ctx context.Context, typ string, params json.RawMessage) (Job, error) {
	t, ok := s.types[typ]
	if !ok {
		return Job{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownType, typ, strings.Join(s.Types(), ", "))
	}
	if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" {
		params = json.RawMessage("{}")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, params); err != nil || compact.Bytes()[0] != '{' {
		return Job{}, &ParamError{Field: "params", Message: "must be a JSON object"}
	}
	if err := t.Validate(ctx, compact.Bytes(), s); err != nil {
		var pe *ParamError
		switch {
		case errors.As(err, &pe):
			p := *pe
			if p.Field == "" {
				p.Field = "params"
			} else if p.Field != "params" && !strings.HasPrefix(p.Field, "params.") {
				p.Field = "params." + p.Field
			}
			return Job{}, &p
		case errors.Is(err, ErrNotFound):
			return Job{}, &ParamError{Field: "params", Message: err.Error()}
		default:
			return Job{}, fmt.Errorf("jobs: validate %s params: %w", typ, err)
		}
	}
	j := Job{
		ID:        "job-" + randomString(24),
		Object:    "job",
		Type:      typ,
		Status:    StatusQueued,
		Params:    compact.Bytes(),
		CreatedAt: time.Now().Unix(),
		Metrics:   map[string]float64{},
		Outputs:   []string{},
	}
	if err := s.store.CreateJob(ctx, j); err != nil {
		return Job{}, fmt.Errorf("jobs: submit %s: %w", typ, err)
	}
	s.notify()
	return j, nil
}

// Job returns a job (ErrNotFound).
func (s *Service) Job(ctx context.Context, id string) (Job, error) { return s.store.Job(ctx, id) }

// Jobs lists jobs, newest first.
func (s *Service) Jobs(ctx context.Context, f JobFilter) ([]Job, error) { return s.store.Jobs(ctx, f) }

// Events returns a job's events with Seq > after, oldest first, at most limit (0 means all).
func (s *Service) Events(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	return s.store.Events(ctx, id, after, limit)
}

// Cancel cancels a queued job at once, or asks a running one to stop (it ends cancelled within a few seconds).
// ErrConflict for a finished job.
func (s *Service) Cancel(ctx context.Context, id string) (Job, error) {
	j, err := s.store.CancelJob(ctx, id, time.Now())
	if err != nil {
		return j, err
	}
	s.mu.Lock()
	rs := s.running[id]
	s.mu.Unlock()
	if rs != nil { // running here: no need to wait for the next heartbeat
		rs.cancel(errCancelRequested)
	}
	s.notify()
	return j, nil
}

// Retry queues a failed or cancelled job again; it resumes from its last checkpoint. ErrConflict otherwise.
func (s *Service) Retry(ctx context.Context, id string) (Job, error) {
	j, err := s.store.RetryJob(ctx, id)
	if err == nil {
		s.notify()
	}
	return j, err
}

// Wait blocks until the job is finished or ctx is done, and returns it.
func (s *Service) Wait(ctx context.Context, id string) (Job, error) {
	for {
		changed := s.changes()
		j, err := s.store.Job(ctx, id)
		if err != nil || j.Status.Finished() {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-changed:
		case <-time.After(s.pollInterval()):
		}
	}
}
