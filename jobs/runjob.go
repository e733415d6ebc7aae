package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RunJob runs one job in-process, for `bestofn job run TYPE --params JSON`: a Service on cfg with one worker
// (cfg.Workers is ignored), the job submitted and watched until it is finished. watch, when not nil, is called
// with the job each time its status or progress changes (polled every 200 ms) and once at the end. When ctx is
// done the job is cancelled and RunJob returns once it has stopped. The error is nil only when the job
// succeeded; a job that ran but did not succeed comes back with an error saying why.
func RunJob(ctx context.Context, cfg Config, typ string, params json.RawMessage, watch func(Job)) (Job, error) {
	cfg.Workers = 1
	s, err := New(cfg)
	if err != nil {
		return Job{}, err
	}
	j, err := s.Submit(ctx, typ, params)
	if err != nil {
		return j, err
	}
	s.onlyJob = j.ID // other jobs in the store's queue are not this process's to run
	if err := s.Start(context.Background()); err != nil {
		return j, err
	}
	defer s.Close()
	var last Job
	report := func(j Job) {
		if watch != nil && (j.Status != last.Status || j.Progress.Done != last.Progress.Done ||
			j.Progress.Total != last.Progress.Total) {
			watch(j)
		}
		last = j
	}
	report(j)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !j.Status.Finished() {
		select {
		case <-ctx.Done():
			if _, err := s.Cancel(context.Background(), j.ID); err != nil && !errors.Is(err, ErrConflict) {
				return j, err
			}
			wctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			j, err = s.Wait(wctx, j.ID)
			cancel()
			if err != nil {
				return j, err
			}
		case <-tick.C:
			if j, err = s.Job(context.Background(), j.ID); err != nil {
				return j, err
			}
		}
		report(j)
	}
	switch {
	case j.Status == StatusSucceeded:
		return j, nil
	case j.Error != nil:
		return j, fmt.Errorf("jobs: job %s %s: %s", j.ID, j.Status, j.Error.Error())
	default:
		return j, fmt.Errorf("jobs: job %s %s", j.ID, j.Status)
	}
}
