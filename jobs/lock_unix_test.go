//go:build unix

package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// TestOutputHeldElsewhere holds a job's output file locked, as a stalled worker that lost its lease would: the
// worker that claimed the job gives it back to the queue instead of failing it, and finishes it once the file is
// free.
func TestOutputHeldElsewhere(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{jobs.Count{}}, Workers: -1, Lease: 300 * time.Millisecond})
	j := env.Submit("count", `{"steps": 3}`)
	dir := filepath.Join(env.Dir, "jobs", j.ID, "outputs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "rows.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	s := env.Another(func(c *jobs.Config) { c.Workers = 1 })
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Attempts >= 2 })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err = s.Wait(ctx, j.ID)
	if err != nil || j.Status != jobs.StatusSucceeded {
		t.Fatalf("job ended %s (%v): %+v", j.Status, err, j.Error)
	}
	var gaveBack bool
	for _, ev := range env.Events(j.ID) {
		gaveBack = gaveBack || strings.Contains(ev.Message, "giving the job back")
	}
	if !gaveBack {
		t.Error("no event tells that the job was given back")
	}
}
