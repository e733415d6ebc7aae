package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM while a client follows a running job's events (`curl -N .../events?stream=true`, the README's
// walkthrough): the stream ends and the server exits cleanly within seconds. The stream never ends by itself
// while the job runs, so it used to hold the shutdown for its whole drain timeout (30 s) and make serve exit
// with "shutdown: context deadline exceeded".
func TestProcessShutdownEndsEventStreams(t *testing.T) {
	p := startServe(t, t.TempDir(), tokenEnv)
	j, err := p.client().Submit(context.Background(), "count", json.RawMessage(`{"steps":1000,"step_ms":100}`))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", p.adminURL+"/admin/v1/jobs/"+j.ID+"/events?stream=true", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	streamEnded := make(chan struct{})
	lines := bufio.NewScanner(resp.Body)
	firstEvent := make(chan struct{})
	go func() {
		defer close(streamEnded)
		seen := false
		for lines.Scan() {
			if !seen && strings.HasPrefix(lines.Text(), "data: ") {
				seen = true
				close(firstEvent)
			}
		}
	}()
	select {
	case <-firstEvent:
	case <-time.After(30 * time.Second):
		t.Fatal("no event on the stream")
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still running %v after SIGTERM with an event stream open", time.Since(start))
	}
	if p.exitErr != nil {
		t.Errorf("serve exited with %v after SIGTERM:\n%s", p.exitErr, p.stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("shutdown took %v with an event stream open", took)
	}
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Error("the event stream did not end with the server")
	}
}
