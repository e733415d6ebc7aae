package jobs_test

import (
	"context"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// A job that is no longer running has no ETA: a cancelled (or failed) job used to keep the estimate it had
// when it stopped, "eta_s": 10 on a job that will never finish.
func TestNoETAOnceFinished(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{jobs.Count{}}})
	cancelled := env.Submit("count", `{"steps": 200, "step_ms": 20}`)
	env.WaitUntil(cancelled.ID, func(j jobs.Job) bool { return j.Progress.ETASeconds != nil })
	if _, err := env.Service.Cancel(context.Background(), cancelled.ID); err != nil {
		t.Fatal(err)
	}
	failed := env.Submit("count", `{"steps": 200, "step_ms": 5, "fail_at": 50}`)
	succeeded := env.Submit("count", `{"steps": 20, "step_ms": 5}`)
	for _, id := range []string{cancelled.ID, failed.ID, succeeded.ID} {
		j := env.Wait(id)
		if !j.Status.Finished() {
			t.Fatalf("job %s is %s", id, j.Status)
		}
		if j.Progress.ETASeconds != nil {
			t.Errorf("%s job at %d/%d has eta_s %v, want none", j.Status, j.Progress.Done, j.Progress.Total, *j.Progress.ETASeconds)
		}
	}
}
