package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// runState is the platform's side of a Run: one attempt of a job on this Service. Progress, metrics and events
// are kept in memory and written by the heartbeat at most about once a second; checkpoints, results and the
// final state are written at once.
type runState struct {
	s      *Service
	claim  *Claim
	token  string
	cancel context.CancelCauseFunc
	lost   atomic.Bool // the lease was found lost

	writeMu   sync.Mutex // serializes writes to the store
	lastWrite time.Time  // under writeMu

	mu        sync.Mutex
	progressV Progress
	base      *progressBase // the first progress report of this attempt, for the ETA
	metricsV  map[string]float64
	dirty     bool // progress or metrics changed since the last write
	events    []Event
	ckpt      json.RawMessage // the last checkpoint saved
	outputs   map[string]*Output
	outFiles  []*outputFile
}

type progressBase struct {
	done int64
	at   time.Time
}

func newRunState(s *Service, c *Claim, token string) *runState {
	metrics := map[string]float64{}
	for k, v := range c.Job.Metrics {
		metrics[k] = v
	}
	return &runState{
		s:         s,
		claim:     c,
		token:     token,
		cancel:    func(error) {},
		lastWrite: time.Now(),
		progressV: c.Job.Progress,
		metricsV:  metrics,
		ckpt:      c.Checkpoint,
		outputs:   map[string]*Output{},
	}
}

// dead reports whether nothing may be written any more: the Service was killed, or the heartbeat found the
// lease lost (another worker owns the job; its output rows are the other worker's to append).
func (rs *runState) dead() bool { return rs.s.killed.Load() || rs.lost.Load() }

var errDead = errors.New("jobs: service killed or lease lost; nothing is written")

// heartbeat renews the lease every Lease/4 and writes progress at most about once a second, until stop is
// closed. A cancel request or a lost lease cancels the job.
func (rs *runState) heartbeat(stop <-chan struct{}) {
	lease := rs.s.cfg.Lease
	tick := time.NewTicker(min(time.Second, lease/4))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		rs.mu.Lock()
		dirty := rs.dirty || len(rs.events) > 0
		rs.mu.Unlock()
		rs.writeMu.Lock()
		due := time.Since(rs.lastWrite) >= lease/4
		rs.writeMu.Unlock()
		if !dirty && !due {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), lease/2)
		err := rs.write(ctx, RunUpdate{}, nil)
		cancel()
		switch {
		case errors.Is(err, errDead):
			return
		case errors.Is(err, ErrLeaseLost):
			rs.lost.Store(true)
			rs.cancel(err)
			return
		case err != nil:
			rs.s.log.Warn("jobs: heartbeat", "job", rs.claim.Job.ID, "err", err)
			rs.writeMu.Lock()
			expired := time.Since(rs.lastWrite) > lease
			rs.writeMu.Unlock()
			if expired { // no renewal got through for a whole lease: another worker may own the job by now
				rs.lost.Store(true)
				rs.cancel(fmt.Errorf("%w: no heartbeat got through for %s: %v", ErrLeaseLost, lease, err))
				return
			}
		}
	}
}

// write sends the pending progress, metrics and events with u to the store: with the lease renewal when
// finish is nil, else as the final write of this attempt.
func (rs *runState) write(ctx context.Context, u RunUpdate, finish func(context.Context, RunUpdate) error) error {
	if rs.dead() {
		return errDead
	}
	rs.writeMu.Lock()
	defer rs.writeMu.Unlock()
	rs.mu.Lock()
	p := rs.progressV
	u.Progress = &p
	u.Metrics = copyMetrics(rs.metricsV)
	u.Events = append(rs.events, u.Events...)
	rs.events = nil
	rs.dirty = false
	rs.mu.Unlock()
	var err error
	if finish != nil {
		err = finish(ctx, u)
	} else {
		u.LeaseUntil = time.Now().Add(rs.s.cfg.Lease)
		var cancelRequested bool
		cancelRequested, err = rs.s.store.UpdateRun(ctx, rs.claim.Job.ID, rs.token, u)
		if cancelRequested {
			rs.cancel(errCancelRequested)
		}
	}
	if err != nil && !errors.Is(err, ErrLeaseLost) { // keep the events for the next write
		rs.mu.Lock()
		rs.events = append(u.Events, rs.events...)
		rs.dirty = true
		rs.mu.Unlock()
		return err
	}
	if err == nil {
		rs.lastWrite = time.Now()
	}
	return err
}

func copyMetrics(m map[string]float64) map[string]float64 {
	c := make(map[string]float64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// finish records the end of this attempt: a final status, or StatusQueued to release the job.
func (rs *runState) finish(status Status, jobErr *JobError) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs.mu.Lock()
	rs.progressV.ETASeconds = nil // the attempt is over: nothing to estimate until one runs again
	rs.mu.Unlock()
	err := rs.write(ctx, RunUpdate{}, func(ctx context.Context, u RunUpdate) error {
		return rs.s.store.FinishRun(ctx, rs.claim.Job.ID, rs.token, u, status, jobErr)
	})
	if err != nil && !errors.Is(err, errDead) {
		rs.s.log.Error("jobs: finish", "job", rs.claim.Job.ID, "status", status, "err", err)
	}
}

func (rs *runState) job() Job     { return rs.claim.Job }
func (rs *runState) threads() int { return rs.s.cfg.Threads }

func (rs *runState) dir() string {
	dir := filepath.Join(rs.s.dirs.jobs, rs.claim.Job.ID, "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		rs.s.log.Error("jobs: job dir", "job", rs.claim.Job.ID, "err", err)
	}
	return dir
}

func (rs *runState) progress(done, total int64, unit string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := time.Now()
	if rs.base == nil || done < rs.base.done {
		rs.base = &progressBase{done: done, at: now}
	}
	p := Progress{Done: done, Total: total, Unit: unit}
	if elapsed := now.Sub(rs.base.at).Seconds(); total > 0 && done > rs.base.done && elapsed > 0 {
		eta := float64(total-done) / (float64(done-rs.base.done) / elapsed)
		p.ETASeconds = &eta
	}
	rs.progressV = p
	rs.dirty = true
}

func (rs *runState) metrics(step int64, values map[string]float64) {
	data, err := json.Marshal(map[string]any{"step": step, "values": values})
	if err != nil { // NaN or Inf
		rs.event("warn", "metrics not recorded: "+err.Error(), nil)
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, v := range values {
		rs.metricsV[k] = v
	}
	rs.events = append(rs.events, Event{Level: "metrics", Message: "metrics", Data: data, CreatedAt: time.Now().Unix()})
	rs.dirty = true
}

func (rs *runState) event(level, msg string, data any) {
	switch level {
	case "info", "warn", "error":
	default:
		level = "info"
	}
	e := Event{Level: level, Message: msg, CreatedAt: time.Now().Unix()}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			b, _ = json.Marshal(map[string]string{"unencodable_data": err.Error()})
		}
		e.Data = b
	}
	rs.mu.Lock()
	rs.events = append(rs.events, e)
	rs.mu.Unlock()
}

func (rs *runState) checkpoint() json.RawMessage {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.ckpt
}

func (rs *runState) saveCheckpoint(ctx context.Context, state any) error {
	b, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("jobs: checkpoint of %s: %w", rs.claim.Job.ID, err)
	}
	if err := rs.write(ctx, RunUpdate{Checkpoint: b}, nil); err != nil {
		return fmt.Errorf("jobs: checkpoint of %s: %w", rs.claim.Job.ID, err)
	}
	rs.mu.Lock()
	rs.ckpt = b
	rs.mu.Unlock()
	return nil
}

func (rs *runState) setResult(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("jobs: result of %s: %w", rs.claim.Job.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.write(ctx, RunUpdate{Result: b}, nil); err != nil {
		return fmt.Errorf("jobs: result of %s: %w", rs.claim.Job.ID, err)
	}
	return nil
}

var outputName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

func (rs *runState) output(name string) (*Output, error) {
	if !outputName.MatchString(name) {
		return nil, fmt.Errorf("jobs: output name %q: want letters, digits, '.', '_' or '-'", name)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if o, ok := rs.outputs[name]; ok {
		return o, nil
	}
	dir := filepath.Join(rs.s.dirs.jobs, rs.claim.Job.ID, "outputs")
	f, err := openOutputFile(dir, name+".jsonl", rs.dead, 2*rs.s.cfg.Lease)
	if err != nil {
		return nil, fmt.Errorf("jobs: output %s of %s: %w", name, rs.claim.Job.ID, err)
	}
	o := &Output{impl: f}
	rs.outputs[name] = o
	rs.outFiles = append(rs.outFiles, f)
	return o, nil
}

func (rs *runState) closeOutputs() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, f := range rs.outFiles {
		f.close()
	}
}

func (rs *runState) openFile(ctx context.Context, id string) (io.ReadCloser, File, error) {
	return rs.s.OpenFile(ctx, id)
}

func (rs *runState) filePath(ctx context.Context, id string) (string, error) {
	return rs.s.FilePath(ctx, id)
}

func (rs *runState) publishFile(ctx context.Context, name, purpose string, content io.Reader) (File, error) {
	if rs.dead() {
		return File{}, errDead
	}
	if err := checkFilename("name", name); err != nil {
		return File{}, err
	}
	f, path, err := rs.s.storeContent(ctx, "purpose", purpose, content)
	if err != nil {
		return File{}, fmt.Errorf("jobs: publish %s: %w", name, err)
	}
	f.Filename = name
	f.JobID = rs.claim.Job.ID
	if rs.dead() {
		os.Remove(path)
		return File{}, errDead
	}
	kept, removed, err := rs.s.store.PublishOutput(ctx, rs.claim.Job.ID, rs.token, f)
	if err != nil {
		os.Remove(path)
		return File{}, fmt.Errorf("jobs: publish %s: %w", name, err)
	}
	if kept.ID != f.ID {
		os.Remove(path)
	}
	if removed != "" {
		rs.s.removeContent(removed)
	}
	return kept, nil
}

func (rs *runState) publishDir(ctx context.Context, name, purpose, dir string) (File, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, dir)) }()
	f, err := rs.publishFile(ctx, name, purpose, pr)
	pr.CloseWithError(errors.New("publish ended")) // unblocks the tar writer if publishing stopped early
	return f, err
}

func (rs *runState) registerModel(ctx context.Context, spec ModelSpec) (ModelVersion, error) {
	if rs.dead() {
		return ModelVersion{}, errDead
	}
	if spec.FileID == "" {
		return ModelVersion{}, &ParamError{Field: "file_id", Message: "is required (a file this job published)"}
	}
	return rs.s.registerModel(ctx, spec, rs.claim.Job.ID)
}

func (rs *runState) modelPath(ctx context.Context, name string, version int) (string, ModelVersion, error) {
	return rs.s.ModelPath(ctx, name, version)
}
