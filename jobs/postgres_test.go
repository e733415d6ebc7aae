package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/jobs/pgstore"
)

// countedType records which Service ran each job, to check that each job runs exactly once.
type countedType struct {
	mu   sync.Mutex
	runs map[string]int // job id -> times run
}

func (*countedType) Name() string { return "counted" }

func (*countedType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	return nil
}

func (c *countedType) Run(ctx context.Context, run *jobs.Run) error {
	c.mu.Lock()
	c.runs[run.Job().ID]++
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	out, err := run.Output("done")
	if err != nil {
		return err
	}
	return out.Append("only", map[string]string{"job": run.Job().ID})
}

// TestPostgres runs Services on a PostgreSQL cluster the test starts.
func TestPostgres(t *testing.T) {
	pg := jobstest.StartPostgres(t)
	t.Run("TwoServicesOneStore", func(t *testing.T) { testTwoServicesOneStore(t, pg.NewDatabase(t)) })
	t.Run("KillAndResume", func(t *testing.T) { testKillAndResumeOnPostgres(t, pg.NewDatabase(t)) })
}

// testTwoServicesOneStore runs N jobs on two Services (two replicas) sharing one PostgreSQL store: each job runs
// exactly once, and both replicas take part.
func testTwoServicesOneStore(t *testing.T, dsn string) {
	dataDir := t.TempDir()
	typ := &countedType{runs: map[string]int{}}
	var services []*jobs.Service
	for _, owner := range []string{"replica-a", "replica-b"} {
		st, err := pgstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := jobs.New(jobs.Config{Store: st, DataDir: dataDir, Types: []jobs.Type{typ}, Workers: 2, Owner: owner,
			Lease: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		services = append(services, s)
	}
	const n = 30
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, submit(t, services[i%2], "counted", `{}`).ID)
	}
	for _, s := range services {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	owners := map[string]int{}
	for _, id := range ids {
		j := waitJob(t, services[0], id)
		if j.Status != jobs.StatusSucceeded || j.Attempts != 1 {
			t.Errorf("%s ended %s after %d attempts", id, j.Status, j.Attempts)
		}
		events, _ := services[0].Events(context.Background(), id, 0, 0)
		for _, ev := range events {
			var owner string
			if _, err := fmt.Sscanf(ev.Message, "attempt 1 started by %s", &owner); err == nil {
				owners[owner]++
			}
		}
	}
	typ.mu.Lock()
	defer typ.mu.Unlock()
	for _, id := range ids {
		if typ.runs[id] != 1 {
			t.Errorf("%s ran %d times", id, typ.runs[id])
		}
	}
	if owners["replica-a"] == 0 || owners["replica-b"] == 0 || owners["replica-a"]+owners["replica-b"] != n {
		t.Errorf("jobs per replica: %v", owners)
	}
	t.Logf("jobs per replica: %v", owners)
}

// testKillAndResumeOnPostgres kills one replica in the middle of a job; the other reclaims the job once the
// lease expires and finishes it with the same results as an uninterrupted run.
func testKillAndResumeOnPostgres(t *testing.T, dsn string) {
	dataDir := t.TempDir()
	open := func(owner string) *jobs.Service {
		st, err := pgstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := jobs.New(jobs.Config{Store: st, DataDir: dataDir, Types: []jobs.Type{jobs.Count{}}, Owner: owner,
			Lease: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open("replica-a"), open("replica-b")
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := submit(t, a, "count", `{"steps": 25, "step_ms": 20}`)
	waitFor(t, "progress", func() bool { return jobNow(t, a, j.ID).Progress.Done >= 6 })
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	j = waitJob(t, b, j.ID)
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("job ended %s after %d attempts: %+v", j.Status, j.Attempts, j.Error)
	}
	content, _ := readFile(t, b, j.Outputs[0])
	if !bytes.Equal(content, expectedCountResults(25)) {
		t.Errorf("results:\n%s", content)
	}
	if n := len(outputLines(t, dataDir, j.ID, "rows")); n != 25 {
		t.Errorf("%d output rows, want 25", n)
	}
}
