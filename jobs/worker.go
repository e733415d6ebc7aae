package jobs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// worker claims and runs jobs until ctx is done.
func (s *Service) worker(ctx context.Context) {
	defer s.workers.Done()
	types := s.Types()
	for ctx.Err() == nil {
		changed := s.changes()
		token := randomString(24)
		claim, err := s.store.ClaimJob(ctx, ClaimRequest{
			Owner: s.cfg.Owner,
			Token: token,
			Types: types,
			JobID: s.onlyJob,
			Now:   time.Now(),
			Lease: s.cfg.Lease,
		})
		if err != nil && ctx.Err() == nil {
			s.log.Error("jobs: claim", "err", err)
		}
		if claim != nil {
			s.runClaim(ctx, claim, token)
			continue
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-time.After(s.pollInterval()):
		}
	}
}

// runClaim runs a claimed job to the end of this attempt and records how it ended.
func (s *Service) runClaim(ctx context.Context, c *Claim, token string) {
	typ := s.types[c.Job.Type]
	rs := newRunState(s, c, token)
	log := s.log.With("job", c.Job.ID, "type", c.Job.Type, "attempt", c.Job.Attempts)
	if c.Interrupted {
		if r, ok := typ.(Resumer); ok && !r.Resumable() {
			rs.finish(StatusFailed, &JobError{Code: "interrupted", Message: fmt.Sprintf(
				"the worker running this job stopped (crash, kill or lost lease) and job type %s cannot resume; retry to start it again", c.Job.Type)})
			return
		}
		if c.Interruptions > MaxInterruptions {
			rs.finish(StatusFailed, &JobError{Code: "interrupted", Message: fmt.Sprintf(
				"the worker running this job stopped %d times; not resuming it again (retry to start the count over)", c.Interruptions-1)})
			return
		}
	}
	if c.Job.CancelRequested {
		rs.finish(StatusCancelled, nil)
		return
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rs.cancel = cancel
	s.mu.Lock()
	s.running[c.Job.ID] = rs
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, c.Job.ID)
		s.mu.Unlock()
		s.notify()
	}()
	if c.Checkpoint != nil {
		rs.event("info", "resuming from the last checkpoint", nil)
	}

	heartbeatDone := make(chan struct{})
	heartbeatStop := make(chan struct{})
	go func() {
		defer close(heartbeatDone)
		rs.heartbeat(heartbeatStop)
	}()
	err := runType(jobCtx, typ, &Run{impl: rs})
	close(heartbeatStop)
	<-heartbeatDone
	rs.closeOutputs()

	cause := context.Cause(jobCtx)
	switch {
	case s.killed.Load():
		return
	case errors.Is(cause, ErrLeaseLost):
		log.Warn("jobs: lease lost; another worker owns the job now")
	case err == nil:
		rs.finish(StatusSucceeded, nil)
	case errors.Is(cause, errCancelRequested):
		rs.finish(StatusCancelled, nil)
	case errors.Is(err, errOutputBusy):
		rs.event("warn", "an output is still held by the job's previous worker; giving the job back to the queue", nil)
		rs.finish(StatusQueued, nil)
	case jobCtx.Err() != nil: // shutdown
		if r, ok := typ.(Resumer); ok && !r.Resumable() {
			rs.finish(StatusFailed, &JobError{Code: "interrupted", Message: "the server shut down while the job ran, and job type " +
				c.Job.Type + " cannot resume; retry to start it again"})
			return
		}
		rs.finish(StatusQueued, nil)
	default:
		rs.finish(StatusFailed, jobError(err))
	}
}

// runType calls typ.Run, turning a panic into an error.
func runType(ctx context.Context, typ Type, run *Run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &JobError{Code: "internal", Message: fmt.Sprintf("panic: %v\n%s", p, debug.Stack())}
		}
	}()
	return typ.Run(ctx, run)
}

// jobError is how an error returned by a job is recorded.
func jobError(err error) *JobError {
	var je *JobError
	var pe *ParamError
	switch {
	case errors.As(err, &je):
		return je
	case errors.As(err, &pe):
		return &JobError{Code: "invalid_input", Message: pe.Error()}
	default:
		return &JobError{Code: "internal", Message: err.Error()}
	}
}

// Error makes a *JobError an error, so a job can return one.
func (e *JobError) Error() string { return e.Code + ": " + e.Message }
