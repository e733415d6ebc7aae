package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstore"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestProcessKill9GenerateData is issue 12's crash test on real processes: generate-data runs on a `bestofn
// serve` whose teacher is a second bestofn server (behind a proxy of the test that records every question and
// slows each answer by 30 ms, so the job lasts seconds); the worker is killed with SIGKILL a quarter of the way
// and restarted on the same data directory. The resumed job must finish with alpaca_gpt4_data.json
// byte-identical (sha256) to an uninterrupted `bestofn job run` against the same teacher, every instruction
// once in it, and no instruction asked twice except the one in flight at the kill (concurrency 1).
func TestProcessKill9GenerateData(t *testing.T) {
	teacherProc := startServe(t, t.TempDir(), nil)
	var mu sync.Mutex
	asked := map[string]int{}
	proxy := teachertest.NewProxy(t, teacherProc.url, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.Unmarshal(b, &req)
		if len(req.Messages) > 0 {
			mu.Lock()
			asked[req.Messages[len(req.Messages)-1].Content]++
			mu.Unlock()
		}
		time.Sleep(30 * time.Millisecond)
		return false
	})

	const total = 60
	var in strings.Builder
	for i := range total {
		fmt.Fprintf(&in, `{"instruction":"Tell a story number %d."}`+"\n", i)
	}
	inPath := filepath.Join(t.TempDir(), "instructions.jsonl")
	if err := os.WriteFile(inPath, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	params := func(input map[string]any, baseURL string) json.RawMessage {
		m := map[string]any{"seed": 1, "max_tokens": 24,
			"teacher": map[string]any{"base_url": baseURL + "/v1", "model": "llama-gpt4", "concurrency": 1}}
		for k, v := range input {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}

	dir := t.TempDir()
	p1 := startServe(t, dir, tokenEnv)
	c := p1.client()
	ctx := context.Background()
	f, err := c.UploadFile(ctx, "instructions.jsonl", "instructions", strings.NewReader(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Submit(ctx, "generate-data", params(map[string]any{"input_file": f.ID}, proxy.URL))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a quarter of the answers", 60*time.Second, func() bool {
		j, err = c.Job(ctx, j.ID)
		return err == nil && j.Progress.Done >= total/4
	})
	p1.kill()
	doneAtKill := j.Progress.Done

	p2 := startServe(t, dir, tokenEnv)
	c = p2.client()
	j = waitJobDone(t, c, j.ID, 3*time.Minute)
	if j.Status != jobs.StatusSucceeded || j.Attempts < 2 {
		t.Fatalf("after restart: %s after %d attempts: %+v\n%s", j.Status, j.Attempts, j.Error, p2.stderr)
	}
	var data []byte
	for _, id := range j.Outputs {
		of, err := c.File(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if of.Filename == "alpaca_gpt4_data.json" {
			data, _ = downloadFile(t, c, id)
		}
	}
	var rows []struct{ Instruction, Input, Output string }
	if err := json.Unmarshal(data, &rows); err != nil || len(rows) != total {
		t.Fatalf("alpaca_gpt4_data.json: %d rows (%v), want %d", len(rows), err, total)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Instruction] || r.Output == "" {
			t.Errorf("row %q duplicated or empty", r.Instruction)
		}
		seen[r.Instruction] = true
	}
	mu.Lock()
	twice := 0
	for q, n := range asked {
		if n > 2 {
			t.Errorf("asked %d times: %q", n, q)
		}
		if n == 2 {
			twice++
		}
	}
	if len(asked) != total || twice > 1 {
		t.Errorf("%d instructions asked, %d of them twice; want %d, at most one (the one in flight at the kill)", len(asked), twice, total)
	}
	mu.Unlock()
	t.Logf("killed at %d/%d answers; %d instruction(s) asked twice (in flight at the kill)", doneAtKill, total, twice)

	// The uninterrupted reference: the same params run in-process by the CLI, straight to the teacher.
	refDir := t.TempDir()
	out, err := exec.Command(bestofnBinary(t), "job", "run", "generate-data", "--params", string(params(map[string]any{"input_path": inPath}, teacherProc.url)),
		"--data-dir", refDir).Output()
	if err != nil {
		t.Fatalf("job run: %v", err)
	}
	var ref jobs.Job
	if err := json.Unmarshal(out, &ref); err != nil || ref.Status != jobs.StatusSucceeded {
		t.Fatalf("job run printed %s (%v)", out, err)
	}
	st, err := jobstore.Open(ctx, "sqlite", refDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	refSHA := ""
	for _, id := range ref.Outputs {
		rf, err := st.File(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rf.Filename == "alpaca_gpt4_data.json" {
			refSHA = rf.SHA256
		}
	}
	if refSHA != sha256Hex(data) {
		t.Errorf("resumed alpaca_gpt4_data.json sha256 %s, uninterrupted %q", sha256Hex(data), refSHA)
	}
}
