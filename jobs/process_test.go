package jobs_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

const workerDirEnv = "BESTOFN_JOBS_TEST_WORKER_DIR"

// TestHelperWorkerProcess is not a test: run by TestKill9WorkerProcess as a child process (the test binary
// itself), it runs a Service on the data directory it is given until it is killed.
func TestHelperWorkerProcess(t *testing.T) {
	dir := os.Getenv(workerDirEnv)
	if dir == "" {
		t.Skip("a worker process for TestKill9WorkerProcess")
	}
	st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, sqlitestore.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jobs.New(jobs.Config{Store: st, DataDir: dir, Types: []jobs.Type{jobs.Count{}}, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {} // until kill -9
}

// TestKill9WorkerProcess runs a job in a child process, kills it with SIGKILL twice in the middle of the job
// (while it appends rows and commits checkpoints as fast as it can), and lets a third process finish it on the
// same SQLite file and data directory: the results are those of an uninterrupted run, no row is duplicated.
func TestKill9WorkerProcess(t *testing.T) {
	if os.Getenv(workerDirEnv) != "" {
		t.Skip("in the worker process")
	}
	dir := t.TempDir()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, sqlitestore.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := jobs.New(jobs.Config{Store: st, DataDir: dir, Types: []jobs.Type{jobs.Count{}}, Workers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const steps = 600
	j := submit(t, s, "count", `{"steps": 600}`)

	startWorker := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$")
		cmd.Env = append(os.Environ(), workerDirEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("worker output:\n%s", out.String())
			}
		})
		return cmd
	}
	for _, at := range []int64{100, 300} {
		w := startWorker()
		waitFor(t, "progress", func() bool { return jobNow(t, s, j.ID).Progress.Done >= at })
		if err := w.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		w.Wait()
		t.Logf("killed the worker at %d/%d steps", jobNow(t, s, j.ID).Progress.Done, steps)
	}
	startWorker()
	j = waitJob(t, s, j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 3 {
		t.Fatalf("job ended %s after %d attempts: %+v", j.Status, j.Attempts, j.Error)
	}
	content, _ := readFile(t, s, j.Outputs[0])
	if !bytes.Equal(content, expectedCountResults(steps)) {
		t.Errorf("results differ from an uninterrupted run's (%d bytes)", len(content))
	}
	lines := outputLines(t, dir, j.ID, "rows")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("duplicated row %s", l)
		}
		seen[l] = true
	}
	if len(lines) != steps {
		t.Errorf("%d rows, want %d", len(lines), steps)
	}
}
