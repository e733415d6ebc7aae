package jobs_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// RunJob (`bestofn job run`) runs its one job: pointed at a data directory whose queue holds other jobs (a
// server's, e.g. one with --job-workers 0), it must neither run them in this process nor wait behind them.
func TestRunJobRunsOnlyItsJob(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{jobs.Count{}}, Workers: -1}) // a replica that runs nothing
	other := env.Submit("count", `{"steps": 5, "step_ms": 10}`)
	j, err := jobs.RunJob(context.Background(), jobs.Config{Store: env.Store, DataDir: env.Dir, Types: []jobs.Type{jobs.Count{}}},
		"count", json.RawMessage(`{"steps": 2}`), nil)
	if err != nil || j.Status != jobs.StatusSucceeded {
		t.Fatalf("RunJob: %s %v", j.Status, err)
	}
	if o := env.Job(other.ID); o.Status != jobs.StatusQueued || o.Attempts != 0 {
		t.Errorf("the queue's other job was touched by RunJob: %s after %d attempts", o.Status, o.Attempts)
	}
}
