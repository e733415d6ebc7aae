package jobs_test

import (
	"fmt"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// BenchmarkCountStep is the platform's cost of one step of a job that appends one output row (fsynced) and
// saves a checkpoint (a committed SQLite transaction, synchronous=FULL) per step: the count type with step_ms 0.
func BenchmarkCountStep(b *testing.B) {
	env := jobstest.New(b, jobs.Config{Types: []jobs.Type{jobs.Count{}}})
	b.ResetTimer()
	j := env.Run("count", fmt.Sprintf(`{"steps": %d}`, b.N))
	b.StopTimer()
	if j.Progress.Done != int64(b.N) {
		b.Fatalf("done %d of %d", j.Progress.Done, b.N)
	}
}
