package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// Two `bestofn serve` replicas on one PostgreSQL store and one data directory share the job queue: N jobs
// submitted to either run exactly once each (one attempt, one start event), spread over both replicas.
func TestProcessTwoReplicasOnPostgres(t *testing.T) {
	bestofnBinary(t)
	pg := jobstest.StartPostgres(t)
	dsn := pg.NewDatabase(t)
	dir := t.TempDir()
	p1 := startServe(t, dir, tokenEnv, "--store", dsn, "--reward-model", serveTestReward)
	p2 := startServe(t, dir, tokenEnv, "--store", dsn, "--reward-model", serveTestReward)
	clients := []*admin.Client{p1.client(), p2.client()}
	ctx := context.Background()
	const n, steps = 8, 4
	var ids []string
	for i := 0; i < n; i++ {
		j, err := clients[i%2].Submit(ctx, "count", json.RawMessage(`{"steps":4,"step_ms":100}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	owners := map[string]int{}
	for i, id := range ids {
		j := waitJobDone(t, clients[(i+1)%2], id, 60*time.Second)
		if j.Status != jobs.StatusSucceeded || j.Attempts != 1 || len(j.Outputs) != 1 {
			t.Errorf("job %s: status %s, %d attempts, %d outputs", id, j.Status, j.Attempts, len(j.Outputs))
			continue
		}
		evs, err := clients[i%2].Events(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		starts := 0
		for _, ev := range evs {
			if owner, ok := strings.CutPrefix(ev.Message, "attempt 1 started by "); ok {
				starts++
				owners[owner]++
			} else if strings.Contains(ev.Message, "started by") {
				starts++
			}
		}
		if starts != 1 {
			t.Errorf("job %s started %d times", id, starts)
		}
		b, _ := downloadFile(t, clients[0], j.Outputs[0])
		checkCountRows(t, b, steps)
	}
	if len(owners) != 2 {
		t.Errorf("jobs ran on %d replicas (%v), want both", len(owners), owners)
	}
	t.Logf("%d jobs on two replicas: %v", n, owners)

	// A model activated on one replica is picked up by the other from the shared registry.
	synth := filepath.Join(t.TempDir(), "synth.gguf")
	if out, err := runCmd(bestofnBinary(t), "synth", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
		"--ffn", "128", "--vocab", "320", "--ctx", "256", "--type", "F32", synth); err != nil {
		t.Fatalf("synth: %v\n%s", err, out)
	}
	f, err := uploadPath(ctx, clients[0], synth, "", jobs.PurposeModel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients[0].RegisterModel(ctx, jobs.ModelSpec{Name: "synth", Kind: jobs.KindGenerator, FileID: f.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[0].Activate(ctx, "synth", admin.ActivateRequest{ServeAs: []string{"llama-gpt4"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, "the other replica to serve the activated model", 30*time.Second, func() bool {
		return !strings.HasPrefix(greedyStory, greedyText(t, p2.url, "llama-gpt4"))
	})
	t.Logf("the other replica switched %v after the activation", time.Since(start).Round(100*time.Millisecond))
	if text := greedyText(t, p2.url, "llama-gpt4:r1"); !strings.HasPrefix(greedyStory, text) {
		t.Errorf("llama-gpt4:r1 was not activated but switched: %q", text)
	}
}
