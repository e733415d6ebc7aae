// Package jobstest runs job types end to end in their tests: a jobs.Service on a real SQLite store in a
// temporary directory, with helpers to upload inputs, run a job to its end, read its files and output rows, and
// interrupt it the way a crash (kill -9) would, then resume it on a new Service. It also starts PostgreSQL
// clusters for store tests (StartPostgres).
//
//	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{myType{}}})
//	in := env.Upload("data.jsonl", "instructions", data)
//	job := env.Run("my-type", map[string]any{"input_file": in.ID})  // fails the test unless it succeeded
//	out := env.ReadFile(job.Outputs[0])
package jobstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

// Timeout bounds how long Wait and Run wait for a job.
const Timeout = 5 * time.Minute

// Env is a data directory and a SQLite store with a running Service on them.
type Env struct {
	T       testing.TB
	Dir     string
	Store   jobs.Store
	Service *jobs.Service
	cfg     jobs.Config
}

// New starts a Service with cfg (its Types, Purposes, Threads, ...) on a new SQLite store in a temporary data
// directory. Store and DataDir are filled in; Lease defaults to 1 s so that a crashed job is reclaimed soon.
func New(t testing.TB, cfg jobs.Config) *Env {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Store == nil {
		st, err := sqlitestore.Open(context.Background(), filepath.Join(cfg.DataDir, sqlitestore.DefaultFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg.Store = st
	}
	if cfg.Lease == 0 {
		cfg.Lease = time.Second
	}
	e := &Env{T: t, Dir: cfg.DataDir, Store: cfg.Store, cfg: cfg}
	e.Service = e.Another(nil)
	return e
}

// Another starts another Service (a replica) on the same store and data directory, with the Config of New as
// edit changes it (edit may be nil).
func (e *Env) Another(edit func(*jobs.Config)) *jobs.Service {
	e.T.Helper()
	cfg := e.cfg
	if edit != nil {
		edit(&cfg)
	}
	s, err := jobs.New(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { s.Close() })
	return s
}

// Upload stores content as a file of purpose.
func (e *Env) Upload(filename, purpose string, content []byte) jobs.File {
	e.T.Helper()
	f, err := e.Service.UploadFile(context.Background(), filename, purpose, bytes.NewReader(content))
	if err != nil {
		e.T.Fatalf("upload %s: %v", filename, err)
	}
	return f
}

// Submit queues a job; params is JSON text (string, []byte, json.RawMessage) or a value to encode.
func (e *Env) Submit(typ string, params any) jobs.Job {
	e.T.Helper()
	var raw json.RawMessage
	switch p := params.(type) {
	case string:
		raw = json.RawMessage(p)
	case []byte:
		raw = p
	case json.RawMessage:
		raw = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			e.T.Fatal(err)
		}
		raw = b
	}
	j, err := e.Service.Submit(context.Background(), typ, raw)
	if err != nil {
		e.T.Fatalf("submit %s: %v", typ, err)
	}
	return j
}

// Wait waits (at most Timeout) for a job to finish and returns it.
func (e *Env) Wait(id string) jobs.Job {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	j, err := e.Service.Wait(ctx, id)
	if err != nil {
		e.T.Fatalf("wait for %s: %v (last seen %s at %+v)", id, err, j.Status, j.Progress)
	}
	return j
}

// Run submits a job, waits for it and fails the test unless it succeeded.
func (e *Env) Run(typ string, params any) jobs.Job {
	e.T.Helper()
	j := e.Wait(e.Submit(typ, params).ID)
	if j.Status != jobs.StatusSucceeded {
		e.T.Fatalf("job %s (%s) ended %s: %+v", j.ID, typ, j.Status, j.Error)
	}
	return j
}

// Job returns a job as it is now.
func (e *Env) Job(id string) jobs.Job {
	e.T.Helper()
	j, err := e.Service.Job(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	return j
}

// WaitUntil polls a job until cond holds (e.g. on its progress) and returns it; it fails the test if the job
// finishes first or Timeout passes.
func (e *Env) WaitUntil(id string, cond func(jobs.Job) bool) jobs.Job {
	e.T.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		j := e.Job(id)
		if cond(j) {
			return j
		}
		if j.Status.Finished() {
			e.T.Fatalf("job %s ended %s (%+v) before the condition held", id, j.Status, j.Error)
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("job %s: condition not met within %s", id, Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Crash kills the Service as kill -9 would (nothing more is written; running jobs keep their expired-to-be
// leases) and starts a new one on the same store and data directory, which reclaims them once the lease
// expires.
func (e *Env) Crash() {
	e.T.Helper()
	e.Service.Kill()
	e.Service = e.Another(nil)
}

// RunWithCrash submits a job, crashes the Service once the job satisfies when (e.g. its progress passed half),
// and waits for the new Service to finish it; it fails the test unless the job succeeded after two attempts.
func (e *Env) RunWithCrash(typ string, params any, when func(jobs.Job) bool) jobs.Job {
	e.T.Helper()
	j := e.Submit(typ, params)
	e.WaitUntil(j.ID, when)
	e.Crash()
	j = e.Wait(j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		e.T.Fatalf("job %s (%s) ended %s after %d attempts: %+v", j.ID, typ, j.Status, j.Attempts, j.Error)
	}
	return j
}

// ReadFile returns a stored file's content.
func (e *Env) ReadFile(id string) []byte {
	e.T.Helper()
	r, _, err := e.Service.OpenFile(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.T.Fatal(err)
	}
	return b
}

// OutputRow is one row of a job's Output as stored.
type OutputRow struct {
	Key string          `json:"key"`
	Row json.RawMessage `json:"row"`
}

// OutputRows reads every row a job appended to its output name, in order, duplicates included (a correct job
// type has none, even across crashes).
func (e *Env) OutputRows(jobID, name string) []OutputRow {
	e.T.Helper()
	f, err := os.Open(filepath.Join(e.Dir, "jobs", jobID, "outputs", name+".jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.T.Fatal(err)
	}
	defer f.Close()
	var rows []OutputRow
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var r OutputRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.T.Fatalf("output %s of %s: %v", name, jobID, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		e.T.Fatal(err)
	}
	return rows
}

// Events returns all of a job's events.
func (e *Env) Events(id string) []jobs.Event {
	e.T.Helper()
	ev, err := e.Service.Events(context.Background(), id, 0, 0)
	if err != nil {
		e.T.Fatal(err)
	}
	return ev
}
