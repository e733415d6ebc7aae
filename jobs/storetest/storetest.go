// Package storetest is the conformance suite every jobs.Store passes: packages jobs/sqlitestore and
// jobs/pgstore run it against a real database.
package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
)

// Opener opens the store of one database; called again, it reopens the same database.
type Opener func() (jobs.Store, error)

// Run runs the suite; newDB makes an empty database for one subtest.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, st jobs.Store)
	}{
		{"Files", testFiles},
		{"JobsAndEvents", testJobsAndEvents},
		{"CancelAndRetry", testCancelAndRetry},
		{"ClaimAndLease", testClaimAndLease},
		{"ClaimOneJob", testClaimOneJob},
		{"FinishAndRelease", testFinishAndRelease},
		{"ConcurrentClaims", testConcurrentClaims},
		{"PublishOutput", testPublishOutput},
		{"Models", testModels},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open := newDB(t)
			st, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			tc.f(t, st)
		})
	}
	t.Run("Reopen", func(t *testing.T) {
		open := newDB(t)
		st, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateJob(context.Background(), newJob("job-1", "a")); err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = open() // the schema is there: migration is a no-op, the data kept
		if err != nil {
			t.Fatal(err)
		}
		if j, err := st.Job(context.Background(), "job-1"); err != nil || j.Type != "a" {
			t.Errorf("after reopening: %+v %v", j, err)
		}
		// A database a newer build migrated is refused rather than misread.
		db, ok := st.(interface{ DB() *sql.DB })
		if !ok {
			st.Close()
			return
		}
		if _, err := db.DB().Exec(`UPDATE schema_version SET version = 99`); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if st, err := open(); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("opening a schema from the future: %v", err)
			if err == nil {
				st.Close()
			}
		}
	})
}

var ctx = context.Background()

func newJob(id, typ string) jobs.Job {
	return jobs.Job{ID: id, Object: "job", Type: typ, Status: jobs.StatusQueued, Params: json.RawMessage(`{"n":1}`),
		CreatedAt: time.Now().Unix()}
}

func newFile(id, purpose string) jobs.File {
	return jobs.File{ID: id, Object: "file", Filename: id + ".jsonl", Purpose: purpose, Bytes: 3, SHA256: "abc",
		CreatedAt: time.Now().Unix()}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, st jobs.Store, token string, now time.Time, types ...string) *jobs.Claim {
	t.Helper()
	c, err := st.ClaimJob(ctx, jobs.ClaimRequest{Owner: "w-" + token, Token: token, Types: types, Now: now, Lease: 10 * time.Second})
	must(t, err)
	return c
}

// testClaimOneJob: a claim naming a job (RunJob's) takes that job or nothing, however old the others are.
func testClaimOneJob(t *testing.T, st jobs.Store) {
	must(t, st.CreateJob(ctx, newJob("job-old", "a")))
	must(t, st.CreateJob(ctx, newJob("job-mine", "a")))
	req := jobs.ClaimRequest{Owner: "w", Token: "t1", Types: []string{"a"}, JobID: "job-mine", Now: time.Now(), Lease: 10 * time.Second}
	c, err := st.ClaimJob(ctx, req)
	must(t, err)
	if c == nil || c.Job.ID != "job-mine" {
		t.Fatalf("claim of job-mine: %+v", c)
	}
	req.Token = "t2"
	if c, err := st.ClaimJob(ctx, req); err != nil || c != nil {
		t.Errorf("second claim of job-mine (running under a lease): %+v %v, want none", c, err)
	}
	if j, err := st.Job(ctx, "job-old"); err != nil || j.Status != jobs.StatusQueued || j.Attempts != 0 {
		t.Errorf("job-old: %+v %v, want untouched", j, err)
	}
}

func testFiles(t *testing.T, st jobs.Store) {
	a, b := newFile("file-a", "results"), newFile("file-b", "model")
	must(t, st.CreateFile(ctx, a))
	must(t, st.CreateFile(ctx, b))
	if err := st.CreateFile(ctx, a); err == nil {
		t.Error("creating a file id twice succeeded")
	}
	if got, err := st.File(ctx, "file-a"); err != nil || got != a {
		t.Errorf("File: %+v %v, want %+v", got, err, a)
	}
	if _, err := st.File(ctx, "file-x"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("unknown file: %v", err)
	}
	all, err := st.Files(ctx, "")
	must(t, err)
	if len(all) != 2 || all[0].ID != "file-b" {
		t.Errorf("Files newest first: %+v", all)
	}
	if models, _ := st.Files(ctx, "model"); len(models) != 1 || models[0].ID != "file-b" {
		t.Errorf("Files of purpose model: %+v", models)
	}
	j := newJob("job-1", "t")
	j.Params = json.RawMessage(`{"input_file":"file-a"}`)
	must(t, st.CreateJob(ctx, j))
	if err := st.DeleteFile(ctx, "file-a"); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("delete the input of a queued job: %v", err)
	}
	_, err = st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "m", Kind: jobs.KindGenerator, FileID: "file-b", SHA256: "abc"})
	must(t, err)
	if err := st.DeleteFile(ctx, "file-b"); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("delete a registered model's file: %v", err)
	}
	_, err = st.CancelJob(ctx, "job-1", time.Now())
	must(t, err)
	must(t, st.DeleteFile(ctx, "file-a"))
	if err := st.DeleteFile(ctx, "file-a"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func testJobsAndEvents(t *testing.T, st jobs.Store) {
	must(t, st.CreateJob(ctx, newJob("job-1", "a")))
	must(t, st.CreateJob(ctx, newJob("job-2", "b")))
	if err := st.CreateJob(ctx, newJob("job-1", "a")); err == nil {
		t.Error("creating a job id twice succeeded")
	}
	j, err := st.Job(ctx, "job-1")
	must(t, err)
	if j.Status != jobs.StatusQueued || string(j.Params) != `{"n":1}` || j.Object != "job" || j.Metrics == nil ||
		j.Outputs == nil || j.StartedAt != nil || j.Attempts != 0 {
		t.Errorf("new job: %+v", j)
	}
	if _, err := st.Job(ctx, "job-x"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	list, err := st.Jobs(ctx, jobs.JobFilter{})
	must(t, err)
	if len(list) != 2 || list[0].ID != "job-2" {
		t.Errorf("Jobs newest first: %v", ids(list))
	}
	if list, _ := st.Jobs(ctx, jobs.JobFilter{Type: "a"}); len(list) != 1 || list[0].ID != "job-1" {
		t.Errorf("Jobs of type a: %v", ids(list))
	}
	if list, _ := st.Jobs(ctx, jobs.JobFilter{Status: jobs.StatusRunning}); len(list) != 0 {
		t.Errorf("running jobs: %v", ids(list))
	}
	claim(t, st, "tok", time.Now(), "a")
	_, err = st.UpdateRun(ctx, "job-1", "tok", jobs.RunUpdate{Events: []jobs.Event{
		{Level: "info", Message: "one"}, {Level: "metrics", Message: "m", Data: json.RawMessage(`{"step":1}`)}}})
	must(t, err)
	events, err := st.Events(ctx, "job-1", 0, 0)
	must(t, err)
	var msgs []string
	for i, e := range events {
		if e.Seq != int64(i+1) || e.JobID != "job-1" || e.CreatedAt == 0 {
			t.Errorf("event %d: %+v", i, e)
		}
		msgs = append(msgs, e.Message)
	}
	if len(events) != 4 || msgs[0] != "job queued" || msgs[2] != "one" || string(events[3].Data) != `{"step":1}` {
		t.Errorf("events: %q", msgs)
	}
	if after, _ := st.Events(ctx, "job-1", 2, 1); len(after) != 1 || after[0].Seq != 3 {
		t.Errorf("events after 2, limit 1: %+v", after)
	}
	if _, err := st.Events(ctx, "job-x", 0, 0); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("events of an unknown job: %v", err)
	}
}

func ids(list []jobs.Job) []string {
	var out []string
	for _, j := range list {
		out = append(out, j.ID)
	}
	return out
}

func testCancelAndRetry(t *testing.T, st jobs.Store) {
	now := time.Now()
	must(t, st.CreateJob(ctx, newJob("job-q", "t")))
	j, err := st.CancelJob(ctx, "job-q", now)
	if err != nil || j.Status != jobs.StatusCancelled || j.FinishedAt == nil {
		t.Errorf("cancel queued: %+v %v", j, err)
	}
	if _, err := st.CancelJob(ctx, "job-q", now); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("cancel cancelled: %v", err)
	}
	if _, err := st.CancelJob(ctx, "job-x", now); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("cancel unknown: %v", err)
	}

	must(t, st.CreateJob(ctx, newJob("job-r", "t")))
	claim(t, st, "tok", now, "t")
	j, err = st.CancelJob(ctx, "job-r", now)
	if err != nil || j.Status != jobs.StatusRunning || !j.CancelRequested {
		t.Errorf("cancel running: %+v %v", j, err)
	}
	cancel, err := st.UpdateRun(ctx, "job-r", "tok", jobs.RunUpdate{})
	if err != nil || !cancel {
		t.Errorf("heartbeat after cancel: %v %v", cancel, err)
	}
	must(t, st.FinishRun(ctx, "job-r", "tok", jobs.RunUpdate{}, jobs.StatusCancelled, nil))

	// A running job whose lease expired (its worker died) is cancelled at once.
	must(t, st.CreateJob(ctx, newJob("job-d", "t")))
	claim(t, st, "dead", now, "t")
	j, err = st.CancelJob(ctx, "job-d", now.Add(11*time.Second))
	if err != nil || j.Status != jobs.StatusCancelled {
		t.Errorf("cancel a job whose lease expired: %+v %v", j, err)
	}

	must(t, st.CreateJob(ctx, newJob("job-f", "t")))
	claim(t, st, "tok2", now, "t")
	must(t, st.FinishRun(ctx, "job-f", "tok2", jobs.RunUpdate{Checkpoint: json.RawMessage(`{"at":3}`)},
		jobs.StatusFailed, &jobs.JobError{Code: "internal", Message: "boom"}))
	j, _ = st.Job(ctx, "job-f")
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "internal" || j.FinishedAt == nil {
		t.Errorf("failed job: %+v", j)
	}
	for _, id := range []string{"job-f", "job-q"} {
		j, err = st.RetryJob(ctx, id)
		if err != nil || j.Status != jobs.StatusQueued || j.Error != nil || j.FinishedAt != nil || j.CancelRequested || j.Attempts != 0 {
			t.Errorf("retry %s: %+v %v", id, j, err)
		}
	}
	c := claim(t, st, "tok3", now, "t")
	if c == nil || c.Job.ID != "job-f" && c.Job.ID != "job-q" {
		t.Fatalf("claim after retry: %+v", c)
	}
	if c.Job.ID == "job-f" && string(c.Checkpoint) != `{"at":3}` {
		t.Errorf("retried job's checkpoint: %s", c.Checkpoint)
	}
	if _, err := st.RetryJob(ctx, c.Job.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("retry running: %v", err)
	}
	if _, err := st.RetryJob(ctx, "job-x"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("retry unknown: %v", err)
	}
}

func testClaimAndLease(t *testing.T, st jobs.Store) {
	now := time.Now()
	if c := claim(t, st, "t0", now, "a"); c != nil {
		t.Fatalf("claim from an empty store: %+v", c)
	}
	must(t, st.CreateJob(ctx, newJob("job-1", "a")))
	must(t, st.CreateJob(ctx, newJob("job-2", "b")))
	must(t, st.CreateJob(ctx, newJob("job-3", "a")))
	if c := claim(t, st, "t0", now, "c"); c != nil {
		t.Errorf("claim of another type: %+v", c)
	}
	c1 := claim(t, st, "t1", now, "a", "b")
	if c1 == nil || c1.Job.ID != "job-1" || c1.Job.Status != jobs.StatusRunning || c1.Job.Attempts != 1 ||
		c1.Interrupted || c1.Checkpoint != nil || c1.Job.StartedAt == nil {
		t.Fatalf("first claim: %+v", c1)
	}
	c2 := claim(t, st, "t2", now, "b")
	if c2 == nil || c2.Job.ID != "job-2" {
		t.Fatalf("claim of type b: %+v", c2)
	}
	c3 := claim(t, st, "t3", now, "a")
	if c3 == nil || c3.Job.ID != "job-3" {
		t.Fatalf("third claim: %+v", c3)
	}
	if c := claim(t, st, "t4", now.Add(9*time.Second), "a", "b"); c != nil {
		t.Errorf("claimed a job under a live lease: %+v", c)
	}
	// job-1 renews its lease; job-3 does not.
	prog := jobs.Progress{Done: 2, Total: 5, Unit: "steps"}
	_, err := st.UpdateRun(ctx, "job-1", "t1", jobs.RunUpdate{LeaseUntil: now.Add(20 * time.Second), Progress: &prog,
		Metrics: map[string]float64{"loss": 0.5}, Checkpoint: json.RawMessage(`{"next":2}`), Result: json.RawMessage(`{"r":1}`)})
	must(t, err)
	j, _ := st.Job(ctx, "job-1")
	if j.Progress != prog || j.Metrics["loss"] != 0.5 || string(j.Result) != `{"r":1}` {
		t.Errorf("after UpdateRun: %+v", j)
	}
	later := now.Add(15 * time.Second)
	c4 := claim(t, st, "t4", later, "a", "b")
	if c4 == nil || c4.Job.ID != "job-2" && c4.Job.ID != "job-3" || !c4.Interrupted || c4.Interruptions != 1 || c4.Job.Attempts != 2 {
		t.Fatalf("reclaim after expiry: %+v", c4)
	}
	c5 := claim(t, st, "t5", later, "a", "b")
	if c5 == nil || c5.Job.ID == c4.Job.ID || c5.Job.ID == "job-1" {
		t.Fatalf("second reclaim: %+v", c5)
	}
	if c := claim(t, st, "t6", later, "a", "b"); c != nil {
		t.Errorf("claimed job-1 under its renewed lease: %+v", c)
	}
	// The old token of a reclaimed job is fenced off.
	old := map[string]string{"job-2": "t2", "job-3": "t3"}[c4.Job.ID]
	if _, err := st.UpdateRun(ctx, c4.Job.ID, old, jobs.RunUpdate{}); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("heartbeat with a stale token: %v", err)
	}
	if err := st.FinishRun(ctx, c4.Job.ID, old, jobs.RunUpdate{}, jobs.StatusSucceeded, nil); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("finish with a stale token: %v", err)
	}
	if _, _, err := st.PublishOutput(ctx, c4.Job.ID, old, newFile("file-z", "results")); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("publish with a stale token: %v", err)
	}
	// job-1 expires too: its checkpoint comes with the reclaim.
	c6 := claim(t, st, "t6", now.Add(21*time.Second), "a")
	if c6 == nil || c6.Job.ID != "job-1" || string(c6.Checkpoint) != `{"next":2}` || c6.Job.Progress != prog {
		t.Errorf("reclaim of job-1: %+v", c6)
	}
	c7 := claim(t, st, "t7", now.Add(40*time.Second), "a")
	if c7 == nil || c7.Interruptions != 2 {
		t.Errorf("second interruption: %+v", c7)
	}
}

func testFinishAndRelease(t *testing.T, st jobs.Store) {
	now := time.Now()
	must(t, st.CreateJob(ctx, newJob("job-1", "a")))
	claim(t, st, "t1", now, "a")
	must(t, st.FinishRun(ctx, "job-1", "t1", jobs.RunUpdate{Checkpoint: json.RawMessage(`{"next":4}`)}, jobs.StatusQueued, nil))
	j, _ := st.Job(ctx, "job-1")
	if j.Status != jobs.StatusQueued || j.FinishedAt != nil {
		t.Errorf("released job: %+v", j)
	}
	c := claim(t, st, "t2", now, "a")
	if c == nil || c.Interrupted || string(c.Checkpoint) != `{"next":4}` || c.Job.Attempts != 2 {
		t.Fatalf("claim after release: %+v", c)
	}
	if err := st.FinishRun(ctx, "job-1", "t2", jobs.RunUpdate{}, jobs.StatusRunning, nil); err == nil {
		t.Error("FinishRun with status running succeeded")
	}
	must(t, st.FinishRun(ctx, "job-1", "t2", jobs.RunUpdate{Result: json.RawMessage(`{"ok":true}`)}, jobs.StatusSucceeded, nil))
	j, _ = st.Job(ctx, "job-1")
	if j.Status != jobs.StatusSucceeded || j.FinishedAt == nil || string(j.Result) != `{"ok":true}` || j.Error != nil {
		t.Errorf("succeeded job: %+v", j)
	}
	if c := claim(t, st, "t3", now.Add(time.Hour), "a"); c != nil {
		t.Errorf("claimed a finished job: %+v", c)
	}
	if _, err := st.UpdateRun(ctx, "job-1", "t2", jobs.RunUpdate{}); !errors.Is(err, jobs.ErrLeaseLost) {
		t.Errorf("heartbeat of a finished job: %v", err)
	}
}

// testConcurrentClaims has several workers claim and finish jobs at once: each job is claimed exactly once.
func testConcurrentClaims(t *testing.T, st jobs.Store) {
	const n, workers = 40, 6
	for i := 0; i < n; i++ {
		must(t, st.CreateJob(ctx, newJob(fmt.Sprintf("job-%02d", i), "a")))
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				token := fmt.Sprintf("w%d-%d", w, i)
				c, err := st.ClaimJob(ctx, jobs.ClaimRequest{Owner: "w", Token: token, Types: []string{"a"}, Now: time.Now(), Lease: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if c == nil {
					return
				}
				mu.Lock()
				claimed[c.Job.ID]++
				mu.Unlock()
				if err := st.FinishRun(ctx, c.Job.ID, token, jobs.RunUpdate{}, jobs.StatusSucceeded, nil); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(claimed) != n {
		t.Errorf("%d jobs claimed, want %d", len(claimed), n)
	}
	for id, k := range claimed {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

func testPublishOutput(t *testing.T, st jobs.Store) {
	now := time.Now()
	must(t, st.CreateJob(ctx, newJob("job-1", "a")))
	claim(t, st, "t1", now, "a")
	out := func(id, name, sha string) jobs.File {
		f := newFile(id, "results")
		f.Filename, f.SHA256, f.JobID = name, sha, "job-1"
		return f
	}
	kept, removed, err := st.PublishOutput(ctx, "job-1", "t1", out("file-1", "a.txt", "s1"))
	if err != nil || kept.ID != "file-1" || removed != "" {
		t.Fatalf("first publish: %+v %q %v", kept, removed, err)
	}
	_, _, err = st.PublishOutput(ctx, "job-1", "t1", out("file-2", "b.txt", "s2"))
	must(t, err)
	kept, removed, err = st.PublishOutput(ctx, "job-1", "t1", out("file-3", "a.txt", "s1"))
	if err != nil || kept.ID != "file-1" || removed != "" {
		t.Errorf("same name and content again: %+v %q %v", kept, removed, err)
	}
	if _, err := st.File(ctx, "file-3"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the duplicate was recorded: %v", err)
	}
	kept, removed, err = st.PublishOutput(ctx, "job-1", "t1", out("file-4", "a.txt", "s4"))
	if err != nil || kept.ID != "file-4" || removed != "file-1" {
		t.Errorf("same name, new content: %+v %q %v", kept, removed, err)
	}
	j, _ := st.Job(ctx, "job-1")
	if fmt.Sprint(j.Outputs) != "[file-2 file-4]" {
		t.Errorf("outputs %v", j.Outputs)
	}
	if _, err := st.File(ctx, "file-1"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the replaced output is still a file: %v", err)
	}
	// An output registered as a model stays a file when replaced.
	_, err = st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "m", Kind: jobs.KindReward, FileID: "file-4", SHA256: "s4"})
	must(t, err)
	kept, removed, err = st.PublishOutput(ctx, "job-1", "t1", out("file-5", "a.txt", "s5"))
	if err != nil || kept.ID != "file-5" || removed != "" {
		t.Errorf("replacing a registered output: %+v %q %v", kept, removed, err)
	}
	if _, err := st.File(ctx, "file-4"); err != nil {
		t.Errorf("the registered model's file is gone: %v", err)
	}
	j, _ = st.Job(ctx, "job-1")
	if fmt.Sprint(j.Outputs) != "[file-2 file-5]" {
		t.Errorf("outputs %v", j.Outputs)
	}
}

func testModels(t *testing.T, st jobs.Store) {
	v1, err := st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "rm", Kind: jobs.KindReward, FileID: "file-1", SHA256: "s1",
		CreatedAt: 100, Metadata: map[string]any{"acc": 0.75}})
	must(t, err)
	v2, err := st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "rm", Kind: jobs.KindReward, FileID: "file-2", JobID: "job-1", SHA256: "s2"})
	must(t, err)
	again, err := st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "rm", Kind: jobs.KindReward, FileID: "file-1", SHA256: "s1"})
	must(t, err)
	if v1.Version != 1 || v2.Version != 2 || again.Version != 1 {
		t.Errorf("versions %d %d, again %d", v1.Version, v2.Version, again.Version)
	}
	if _, err := st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "rm", Kind: jobs.KindGenerator, FileID: "file-3"}); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("another kind under the same name: %v", err)
	}
	_, err = st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "gen", Kind: jobs.KindGenerator, FileID: "file-3"})
	must(t, err)
	latest, err := st.ModelVersion(ctx, "rm", 0)
	if err != nil || latest.Version != 2 || latest.JobID != "job-1" || latest.FileID != "file-2" {
		t.Errorf("latest: %+v %v", latest, err)
	}
	first, err := st.ModelVersion(ctx, "rm", 1)
	if err != nil || first.Metadata["acc"] != 0.75 || first.CreatedAt != 100 || first.Kind != jobs.KindReward {
		t.Errorf("version 1: %+v %v", first, err)
	}
	if _, err := st.ModelVersion(ctx, "rm", 3); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("version 3: %v", err)
	}
	if _, err := st.ModelVersion(ctx, "nope", 0); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("unknown model: %v", err)
	}
	all, err := st.ModelVersions(ctx)
	must(t, err)
	if len(all) != 3 || all[0].Name != "gen" || all[1].Version != 1 || all[2].Version != 2 {
		t.Errorf("ModelVersions: %+v", all)
	}
	// Concurrent registrations of one name get distinct versions.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := st.CreateModelVersion(ctx, jobs.ModelVersion{Name: "many", Kind: jobs.KindGenerator, FileID: fmt.Sprintf("file-m%d", i)})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if v, err := st.ModelVersion(ctx, "many", 0); err != nil || v.Version != 8 {
		t.Errorf("after 8 concurrent registrations: %+v %v", v, err)
	}

	must(t, st.AddActivation(ctx, jobs.Activation{Model: "rm", Version: 1, ServeAs: []string{"a", "b"}, ActivatedAt: 10}))
	must(t, st.AddActivation(ctx, jobs.Activation{Model: "rm", Version: 2, ServeAs: []string{"a"}, ActivatedAt: 10}))
	acts, err := st.Activations(ctx)
	must(t, err)
	if len(acts) != 2 || acts[0].Version != 1 || fmt.Sprint(acts[0].ServeAs) != "[a b]" || acts[1].Version != 2 {
		t.Errorf("activations in order: %+v", acts)
	}
}
