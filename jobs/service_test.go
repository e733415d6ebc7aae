package jobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// env is a data directory with a SQLite store (and an idle Service), on which tests start Services.
type env struct {
	*jobstest.Env
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := jobstest.New(t, jobs.Config{
		Types:    []jobs.Type{jobs.Count{}, copyType{}},
		Lease:    800 * time.Millisecond,
		Purposes: []jobs.Purpose{{Name: "instructions", ValidateLine: jobs.JSONObjectLine("instruction", "output")}},
		Workers:  -1,
	})
	return &env{Env: e, dir: e.Dir}
}

// service starts a Service on the env, with workers unless edit says otherwise.
func (e *env) service(edit func(*jobs.Config)) *jobs.Service {
	return e.Another(func(c *jobs.Config) {
		c.Workers = 1
		if edit != nil {
			edit(c)
		}
	})
}

func waitJob(t *testing.T, s *jobs.Service, id string) jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := s.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v (job %+v)", id, err, j)
	}
	return j
}

func submit(t *testing.T, s *jobs.Service, typ, params string) jobs.Job {
	t.Helper()
	j, err := s.Submit(context.Background(), typ, json.RawMessage(params))
	if err != nil {
		t.Fatalf("submit %s %s: %v", typ, params, err)
	}
	return j
}

func readFile(t *testing.T, s *jobs.Service, id string) ([]byte, jobs.File) {
	t.Helper()
	r, f, err := s.OpenFile(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

// expectedCountResults is the results file of a count job of n steps, computed here from the documented rule
// (value i*i, digest the first 8 bytes of sha256("count-i") in hex).
func expectedCountResults(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("count-%d", i)))
		fmt.Fprintf(&b, `{"step":%d,"value":%d,"digest":"%s"}`+"\n", i, i*i, hex.EncodeToString(sum[:8]))
	}
	return b.Bytes()
}

// outputLines reads a job's output file as the platform stored it, one JSON line per row.
func outputLines(t *testing.T, dir, jobID, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "jobs", jobID, "outputs", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestCountJobEndToEnd(t *testing.T) {
	e := newEnv(t)
	s := e.service(nil)
	j := submit(t, s, "count", `{"steps": 5}`)
	if j.Status != jobs.StatusQueued || !strings.HasPrefix(j.ID, "job-") || len(j.ID) != len("job-")+24 {
		t.Fatalf("submitted job: %+v", j)
	}
	j = waitJob(t, s, j.ID)
	if j.Status != jobs.StatusSucceeded {
		t.Fatalf("job ended %s: %+v", j.Status, j.Error)
	}
	if j.Progress.Done != 5 || j.Progress.Total != 5 || j.Progress.Unit != "steps" {
		t.Errorf("progress %+v, want 5/5 steps", j.Progress)
	}
	if j.Metrics["value"] != 16 {
		t.Errorf("metrics %v, want value 16 (the last step's)", j.Metrics)
	}
	if string(j.Result) != `{"steps":5,"sum":30}` {
		t.Errorf("result %s", j.Result)
	}
	if j.StartedAt == nil || j.FinishedAt == nil || j.Attempts != 1 {
		t.Errorf("started %v finished %v attempts %d", j.StartedAt, j.FinishedAt, j.Attempts)
	}
	if len(j.Outputs) != 1 {
		t.Fatalf("outputs %v, want one", j.Outputs)
	}
	content, f := readFile(t, s, j.Outputs[0])
	want := expectedCountResults(5)
	if !bytes.Equal(content, want) {
		t.Errorf("results file:\n%s\nwant:\n%s", content, want)
	}
	sum := sha256.Sum256(want)
	if f.SHA256 != hex.EncodeToString(sum[:]) || f.Bytes != int64(len(want)) || f.Filename != "count-results.jsonl" ||
		f.Purpose != "results" || f.JobID != j.ID {
		t.Errorf("file record %+v", f)
	}
	events, err := s.Events(context.Background(), j.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var metrics []float64
	for i, ev := range events {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		if ev.Level == "metrics" {
			var d struct {
				Step   int64
				Values map[string]float64
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			metrics = append(metrics, d.Values["value"])
		}
	}
	if fmt.Sprint(metrics) != "[0 1 4 9 16]" {
		t.Errorf("metrics series %v", metrics)
	}
	if first, last := events[0].Message, events[len(events)-1].Message; first != "job queued" || last != "job succeeded" {
		t.Errorf("events run from %q to %q", first, last)
	}
	after, err := s.Events(context.Background(), j.ID, 2, 3)
	if err != nil || len(after) != 3 || after[0].Seq != 3 {
		t.Errorf("events after 2, limit 3: %v %v", after, err)
	}
}

func TestSubmitRejects(t *testing.T) {
	s := newEnv(t).service(func(c *jobs.Config) { c.Workers = -1 })
	ctx := context.Background()
	if _, err := s.Submit(ctx, "nope", nil); !errors.Is(err, jobs.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	for params, field := range map[string]string{
		`{"steps": "ten"}`:  "params.steps",
		`{"steps": -1}`:     "params.steps",
		`{"stepz": 1}`:      "params.stepz",
		`[1]`:               "params",
		`{"steps": 1} {}`:   "params",
		`{"step_ms": 1e9}`:  "params.step_ms",
		`not json`:          "params",
		`{"fail_at": -3.5}`: "params.fail_at",
	} {
		_, err := s.Submit(ctx, "count", json.RawMessage(params))
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Field != field {
			t.Errorf("params %s: error %v, want a ParamError on %s", params, err, field)
		}
	}
	list, err := s.Jobs(ctx, jobs.JobFilter{})
	if err != nil || len(list) != 0 {
		t.Errorf("rejected submissions queued jobs: %v %v", list, err)
	}
}

func TestUploads(t *testing.T) {
	e := newEnv(t)
	s := e.service(func(c *jobs.Config) { c.Workers = -1; c.MaxFileBytes = 100 })
	ctx := context.Background()
	content := "{\"instruction\":\"a\",\"output\":\"b\"}\n\n{\"instruction\":\"c\",\"output\":\"d\"}"
	f, err := s.UploadFile(ctx, "data.jsonl", "instructions", strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	if !strings.HasPrefix(f.ID, "file-") || f.SHA256 != hex.EncodeToString(sum[:]) || f.Bytes != int64(len(content)) ||
		f.Filename != "data.jsonl" || f.Purpose != "instructions" || f.Object != "file" {
		t.Errorf("uploaded %+v", f)
	}
	if got, _ := readFile(t, s, f.ID); string(got) != content {
		t.Errorf("content %q", got)
	}
	got, err := s.File(ctx, f.ID)
	if err != nil || got != f {
		t.Errorf("File: %+v %v, want %+v", got, err, f)
	}

	bad := []struct {
		name, filename, purpose, content string
		field                            string
		line                             int
	}{
		{"path", "../etc/passwd", "results", "x", "filename", 0},
		{"subdir", "a/b.jsonl", "results", "x", "filename", 0},
		{"backslash", `a\b`, "results", "x", "filename", 0},
		{"dotdot", "..", "results", "x", "filename", 0},
		{"empty name", "", "results", "x", "filename", 0},
		{"control", "a\nb", "results", "x", "filename", 0},
		{"purpose", "x.jsonl", "nope", "x", "purpose", 0},
		{"not json", "x.jsonl", "instructions", "{\"instruction\":\"a\",\"output\":\"b\"}\nnot json\n", "file", 2},
		{"missing field", "x.jsonl", "instructions", "\n\n{\"instruction\":\"a\"}", "file", 3},
		{"empty field", "x.jsonl", "instructions", "{\"instruction\":\"\",\"output\":\"b\"}", "file", 1},
	}
	for _, c := range bad {
		_, err := s.UploadFile(ctx, c.filename, c.purpose, strings.NewReader(c.content))
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Field != c.field || pe.Line != c.line {
			t.Errorf("%s: %v, want a ParamError on %s line %d", c.name, err, c.field, c.line)
		}
	}
	if _, err := s.UploadFile(ctx, "big.bin", "results", strings.NewReader(strings.Repeat("x", 101))); !errors.Is(err, jobs.ErrTooLarge) {
		t.Errorf("101 bytes with a limit of 100: %v", err)
	}
	if _, err := s.UploadFile(ctx, "fits.bin", "results", strings.NewReader(strings.Repeat("x", 100))); err != nil {
		t.Errorf("100 bytes with a limit of 100: %v", err)
	}
	files, err := s.Files(ctx, "")
	if err != nil || len(files) != 2 || files[0].Filename != "fits.bin" {
		t.Errorf("files (newest first): %+v %v", files, err)
	}
	if only, _ := s.Files(ctx, "instructions"); len(only) != 1 || only[0].ID != f.ID {
		t.Errorf("files of purpose instructions: %+v", only)
	}
	// Nothing but the two stored files is left in the data directory.
	entries, _ := os.ReadDir(filepath.Join(e.dir, "files"))
	if len(entries) != 2 {
		t.Errorf("files/ holds %d entries, want 2", len(entries))
	}

	// A queued job naming the file keeps it from being deleted; a cancelled one does not.
	j := submit(t, s, "copy", fmt.Sprintf(`{"input_file": %q}`, f.ID))
	if err := s.DeleteFile(ctx, f.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("delete a queued job's input: %v", err)
	}
	if _, err := s.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFile(ctx, f.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := s.File(ctx, f.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deleted file: %v", err)
	}
	if err := s.DeleteFile(ctx, f.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "files", f.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file's content: %v", err)
	}
	var pe *jobs.ParamError
	if _, err := s.Submit(ctx, "copy", json.RawMessage(fmt.Sprintf(`{"input_file": %q}`, f.ID))); !errors.As(err, &pe) || pe.Field != "params.input_file" {
		t.Errorf("submit naming a deleted file: %v", err)
	}
}

// copyType is a job type for tests: it publishes the content of its input file as "copy.out".
type copyType struct{}

type copyParams struct {
	InputFile string `json:"input_file"`
}

func (copyType) Name() string { return "copy" }

func (copyType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p copyParams
	if err := jobs.DecodeParams(params, &p); err != nil {
		return err
	}
	if _, err := files.File(ctx, p.InputFile); err != nil {
		return &jobs.ParamError{Field: "input_file", Message: err.Error()}
	}
	return nil
}

func (copyType) Run(ctx context.Context, run *jobs.Run) error {
	var p copyParams
	if err := run.DecodeParams(&p); err != nil {
		return err
	}
	r, _, err := run.OpenFile(ctx, p.InputFile)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = run.PublishFile(ctx, "copy.out", jobs.PurposeResults, r)
	return err
}

// waitFor polls f until it returns true (or fails the test after 30 s).
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jobNow(t *testing.T, s *jobs.Service, id string) jobs.Job {
	t.Helper()
	j, err := s.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idle := e.service(func(c *jobs.Config) { c.Workers = -1 })
	queued := submit(t, idle, "count", `{}`)
	j, err := idle.Cancel(ctx, queued.ID)
	if err != nil || j.Status != jobs.StatusCancelled || j.FinishedAt == nil {
		t.Fatalf("cancel queued: %+v %v", j, err)
	}
	if _, err := idle.Cancel(ctx, queued.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("cancel a cancelled job: %v", err)
	}
	if _, err := idle.Cancel(ctx, "job-nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("cancel an unknown job: %v", err)
	}

	// A running job is cancelled by another Service (as by another replica): the worker learns of it at its
	// next heartbeat.
	s := e.service(nil)
	running := submit(t, s, "count", `{"steps": 100000, "step_ms": 5}`)
	waitFor(t, "progress", func() bool { return jobNow(t, s, running.ID).Progress.Done >= 3 })
	start := time.Now()
	if j, err := idle.Cancel(ctx, running.ID); err != nil || j.Status != jobs.StatusRunning || !j.CancelRequested {
		t.Fatalf("cancel running: %+v %v", j, err)
	}
	j = waitJob(t, s, running.ID)
	took := time.Since(start)
	if j.Status != jobs.StatusCancelled || j.Progress.Done >= 100000 {
		t.Errorf("cancelled job ended %s at %+v", j.Status, j.Progress)
	}
	if took > 2*time.Second {
		t.Errorf("cancel took %v with a lease of 800ms (heartbeat 200ms)", took)
	}
	t.Logf("cancel through the store reached the job in %v", took)
	if _, err := s.Retry(ctx, queued.ID); err != nil {
		t.Fatal(err)
	}
	if j := waitJob(t, s, queued.ID); j.Status != jobs.StatusSucceeded {
		t.Errorf("retried cancelled job: %s %+v", j.Status, j.Error)
	}
}

func TestRetryResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	s := e.service(nil)
	ctx := context.Background()
	j := waitJob(t, s, submit(t, s, "count", `{"steps": 6, "fail_at": 3}`).ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "simulated_failure" || j.Progress.Done != 3 {
		t.Fatalf("job ended %s %+v at %+v", j.Status, j.Error, j.Progress)
	}
	if _, err := s.Retry(ctx, "job-nope"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("retry unknown: %v", err)
	}
	r, err := s.Retry(ctx, j.ID)
	if err != nil || r.Status != jobs.StatusQueued || r.Error != nil || r.FinishedAt != nil {
		t.Fatalf("retry: %+v %v", r, err)
	}
	j = waitJob(t, s, j.ID)
	if j.Status != jobs.StatusSucceeded {
		t.Fatalf("retried job ended %s %+v", j.Status, j.Error)
	}
	if _, err := s.Retry(ctx, j.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("retry a succeeded job: %v", err)
	}
	if content, _ := readFile(t, s, j.Outputs[0]); !bytes.Equal(content, expectedCountResults(6)) {
		t.Errorf("results after retry:\n%s", content)
	}
	if n := len(outputLines(t, e.dir, j.ID, "rows")); n != 6 {
		t.Errorf("%d output rows, want 6", n)
	}
}

// TestKillAndResume kills a Service in the middle of a job (as kill -9 would: no more writes, the lease left to
// expire) and lets a second Service on the same store and data directory finish it.
func TestKillAndResume(t *testing.T) {
	e := newEnv(t)
	first := e.service(nil)
	j := submit(t, first, "count", `{"steps": 30, "step_ms": 20}`)
	waitFor(t, "progress", func() bool { return jobNow(t, first, j.ID).Progress.Done >= 8 })
	first.Kill()
	killed := time.Now()
	if j := jobNow(t, first, j.ID); j.Status != jobs.StatusRunning {
		t.Fatalf("after the kill the job is %s", j.Status)
	}
	second := e.service(nil)
	waitFor(t, "the reclaim", func() bool { return jobNow(t, second, j.ID).Attempts == 2 })
	t.Logf("reclaimed %v after the kill (lease 800ms)", time.Since(killed))
	if took := time.Since(killed); took > 3*time.Second {
		t.Errorf("reclaim took %v", took)
	}
	j = waitJob(t, second, j.ID)
	if j.Status != jobs.StatusSucceeded {
		t.Fatalf("resumed job ended %s %+v", j.Status, j.Error)
	}
	content, _ := readFile(t, second, j.Outputs[0])
	if !bytes.Equal(content, expectedCountResults(30)) {
		t.Errorf("results after the kill:\n%s", content)
	}
	lines := outputLines(t, e.dir, j.ID, "rows")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("duplicated output row %s", l)
		}
		seen[l] = true
	}
	if len(lines) != 30 {
		t.Errorf("%d output rows, want 30", len(lines))
	}
	events, _ := second.Events(context.Background(), j.ID, 0, 0)
	var resumed bool
	for _, ev := range events {
		resumed = resumed || strings.Contains(ev.Message, "lease expired")
	}
	if !resumed {
		t.Errorf("no event tells of the expired lease: %+v", events)
	}
}

func TestCloseReleasesTheJob(t *testing.T) {
	e := newEnv(t)
	first := e.service(nil)
	j := submit(t, first, "count", `{"steps": 40, "step_ms": 10}`)
	waitFor(t, "progress", func() bool { return jobNow(t, first, j.ID).Progress.Done >= 5 })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	released := jobNow(t, first, j.ID)
	if released.Status != jobs.StatusQueued || released.Progress.Done < 5 {
		t.Fatalf("after Close the job is %s at %+v", released.Status, released.Progress)
	}
	second := e.service(nil)
	j = waitJob(t, second, j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("job ended %s after %d attempts", j.Status, j.Attempts)
	}
	if content, _ := readFile(t, second, j.Outputs[0]); !bytes.Equal(content, expectedCountResults(40)) {
		t.Errorf("results:\n%s", content)
	}
	if n := len(outputLines(t, e.dir, j.ID, "rows")); n != 40 {
		t.Errorf("%d output rows, want 40", n)
	}
}
