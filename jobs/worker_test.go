package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

// blockType runs until its context is done, reporting progress; it cannot resume when resumable is false.
type blockType struct {
	name      string
	resumable bool
	panics    bool
	runs      *atomic.Int32
}

func (b blockType) Name() string { return b.name }

func (b blockType) Resumable() bool { return b.resumable }

func (blockType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	return nil
}

func (b blockType) Run(ctx context.Context, run *jobs.Run) error {
	if b.runs != nil {
		b.runs.Add(1)
	}
	if b.panics {
		panic("boom")
	}
	run.Progress(1, 0, "items")
	<-ctx.Done()
	return ctx.Err()
}

func TestNonResumableJobInterrupted(t *testing.T) {
	types := []jobs.Type{blockType{name: "oneshot"}}
	env := jobstest.New(t, jobs.Config{Types: types, Lease: 400 * time.Millisecond})

	// Killed: the next claim ends it failed.
	j := env.Submit("oneshot", `{}`)
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done == 1 })
	env.Crash()
	j = env.Wait(j.ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "interrupted" {
		t.Errorf("after a crash: %s %+v", j.Status, j.Error)
	}

	// Shut down: it cannot be released for another attempt, so it ends failed too.
	j = env.Submit("oneshot", `{}`)
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done == 1 })
	if err := env.Service.Close(); err != nil {
		t.Fatal(err)
	}
	j = env.Job(j.ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "interrupted" || !strings.Contains(j.Error.Message, "shut down") {
		t.Errorf("after a shutdown: %s %+v", j.Status, j.Error)
	}
}

// TestCrashLoopEnds kills the Service running a job again and again: after MaxInterruptions the job fails
// rather than being resumed forever.
func TestCrashLoopEnds(t *testing.T) {
	runs := &atomic.Int32{}
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{blockType{name: "block", resumable: true, runs: runs}},
		Lease: 300 * time.Millisecond})
	j := env.Submit("block", `{}`)
	for attempt := 1; attempt <= jobs.MaxInterruptions+1; attempt++ {
		env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Attempts == attempt && j.Progress.Done == 1 })
		env.Crash()
	}
	j = env.Wait(j.ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "interrupted" || int(runs.Load()) != jobs.MaxInterruptions+1 {
		t.Errorf("after %d crashes: %s %+v, %d runs", jobs.MaxInterruptions+1, j.Status, j.Error, runs.Load())
	}
	// Retry starts the count again.
	if _, err := env.Service.Retry(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Status == jobs.StatusRunning && j.Progress.Done == 1 })
}

func TestPanicFailsTheJob(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{blockType{name: "panics", panics: true}}})
	j := env.Wait(env.Submit("panics", `{}`).ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "internal" || !strings.Contains(j.Error.Message, "panic: boom") {
		t.Errorf("panicking job: %s %+v", j.Status, j.Error)
	}
}

func TestProgressETA(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{jobs.Count{}}})
	j := env.Submit("count", `{"steps": 60, "step_ms": 25}`)
	j = env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done >= 20 && j.Progress.ETASeconds != nil })
	// 25 ms a step: the remaining steps take about (60-done)*0.025 s; allow for a busy machine.
	want := float64(60-j.Progress.Done) * 0.025
	if eta := *j.Progress.ETASeconds; eta < want/4 || eta > want*4 {
		t.Errorf("ETA %.2fs at %d/60, want about %.2fs", eta, j.Progress.Done, want)
	}
	if j = env.Wait(j.ID); j.Status != jobs.StatusSucceeded {
		t.Errorf("job %s", j.Status)
	}
}

func TestRunJob(t *testing.T) {
	dir := t.TempDir()
	cfg := func() jobs.Config {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, sqlitestore.DefaultFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return jobs.Config{Store: st, DataDir: dir, Types: []jobs.Type{jobs.Count{}}}
	}
	var seen []int64
	j, err := jobs.RunJob(context.Background(), cfg(), "count", json.RawMessage(`{"steps": 8, "step_ms": 60}`),
		func(j jobs.Job) { seen = append(seen, j.Progress.Done) })
	if err != nil || j.Status != jobs.StatusSucceeded {
		t.Fatalf("RunJob: %s %v", j.Status, err)
	}
	if len(seen) < 3 || seen[len(seen)-1] != 8 {
		t.Errorf("progress seen: %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("progress went back: %v", seen)
		}
	}

	dir = t.TempDir()
	j, err = jobs.RunJob(context.Background(), cfg(), "count", json.RawMessage(`{"steps": 4, "fail_at": 2}`), nil)
	if err == nil || j.Status != jobs.StatusFailed || !strings.Contains(err.Error(), "simulated_failure") {
		t.Errorf("failing job: %s %v", j.Status, err)
	}

	dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	j, err = jobs.RunJob(ctx, cfg(), "count", json.RawMessage(`{"steps": 1000, "step_ms": 20}`), nil)
	if err == nil || j.Status != jobs.StatusCancelled {
		t.Errorf("interrupted RunJob: %s %v", j.Status, err)
	}

	if _, err := jobs.RunJob(context.Background(), cfg(), "nope", nil, nil); !errors.Is(err, jobs.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

// TestLeaseLost takes a running job's lease away (as when its worker stalls past the lease) so that a second
// Service claims it: the first stops at its next heartbeat and writes nothing more, the second finishes the job
// without duplicated rows.
func TestLeaseLost(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{jobs.Count{}}, Lease: time.Second})
	first := env.Service
	j := env.Submit("count", `{"steps": 60, "step_ms": 15}`)
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done >= 5 })
	// The lease expires and its token is no longer the first worker's, as after a claim by a worker that then
	// went away too: the first's next heartbeat cannot renew it. (Expiring the lease alone lets that heartbeat
	// renew it unless the second Service claims within the heartbeat's 250 ms: on a loaded machine it does
	// not, and the first finishes the job in one attempt.)
	db := env.Store.(interface{ DB() *sql.DB }).DB()
	if _, err := db.Exec(`UPDATE jobs SET lease_until = 0, lease_token = 'taken' WHERE id = ?`, j.ID); err != nil {
		t.Fatal(err)
	}
	second, err := jobs.New(jobs.Config{Store: env.Store, DataDir: env.Dir, Types: []jobs.Type{jobs.Count{}}, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	j = env.Wait(j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("job ended %s after %d attempts: %+v", j.Status, j.Attempts, j.Error)
	}
	rows := env.OutputRows(j.ID, "rows")
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Key] {
			t.Errorf("row %s appended twice", r.Key)
		}
		seen[r.Key] = true
	}
	if len(rows) != 60 {
		t.Errorf("%d rows, want 60", len(rows))
	}
	first.Close()
}

// republishType publishes "out.txt" on every attempt and, on the first, waits to be killed; the content is the
// same on every attempt unless change is set.
type republishType struct{ change bool }

func (r republishType) Name() string {
	if r.change {
		return "republish-changed"
	}
	return "republish"
}

func (republishType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	return nil
}

func (r republishType) Run(ctx context.Context, run *jobs.Run) error {
	content := "same"
	if r.change {
		content = "attempt " + strconv.Itoa(run.Job().Attempts)
	}
	if _, err := run.PublishFile(ctx, "out.txt", jobs.PurposeResults, strings.NewReader(content)); err != nil {
		return err
	}
	if run.Job().Attempts == 1 {
		run.Progress(1, 1, "files")
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func TestPublishIsIdempotentAcrossAttempts(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{republishType{}, republishType{change: true}}, Lease: 400 * time.Millisecond})
	for _, typ := range []string{"republish", "republish-changed"} {
		j := env.Submit(typ, `{}`)
		first := env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done == 1 && len(j.Outputs) == 1 })
		env.Crash()
		j = env.Wait(j.ID)
		if j.Status != jobs.StatusSucceeded || len(j.Outputs) != 1 {
			t.Fatalf("%s: %s, outputs %v", typ, j.Status, j.Outputs)
		}
		files, _ := env.Service.Files(context.Background(), jobs.PurposeResults)
		var mine int
		for _, f := range files {
			if f.JobID == j.ID {
				mine++
			}
		}
		got := string(env.ReadFile(j.Outputs[0]))
		switch typ {
		case "republish":
			if j.Outputs[0] != first.Outputs[0] || got != "same" || mine != 1 {
				t.Errorf("same content republished: outputs %v then %v, %q, %d files", first.Outputs, j.Outputs, got, mine)
			}
		default:
			if j.Outputs[0] == first.Outputs[0] || got != "attempt 2" || mine != 1 {
				t.Errorf("new content republished: outputs %v then %v, %q, %d files", first.Outputs, j.Outputs, got, mine)
			}
			if _, err := os.Stat(filepath.Join(env.Dir, "files", first.Outputs[0])); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the replaced output's content is still there: %v", err)
			}
		}
	}
}
