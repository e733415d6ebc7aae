package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
)

// TestLatencyUnderJob measures the latency of B requests (llama-gpt4, one sample of 32 tokens) on a real
// server with stories260K, without a job and while a CPU-heavy job (cpu-burn) runs with the default thread cap
// and with no cap (every core). It is a measurement, not a check: run it with
//
//	BESTOFN_LATENCY=1 go test ./cmd/bestofn -run LatencyUnderJob -v
//
// (BESTOFN_LATENCY_N sets the requests per case, default 400).
func TestLatencyUnderJob(t *testing.T) {
	if os.Getenv("BESTOFN_LATENCY") == "" {
		t.Skip("a measurement: set BESTOFN_LATENCY=1")
	}
	n := 400
	if v, err := strconv.Atoi(os.Getenv("BESTOFN_LATENCY_N")); err == nil && v > 0 {
		n = v
	}
	measure := func(url string) (p50, p99 time.Duration) {
		lat := make([]time.Duration, 0, n)
		for i := 0; i < n+20; i++ {
			body := fmt.Sprintf(`{"model":"llama-gpt4","prompt":"Once upon a time","max_tokens":32,"temperature":1,"seed":%d}`, i)
			start := time.Now()
			resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Usage struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d: %v", resp.StatusCode, err)
			}
			if i >= 20 { // the first 20 warm up
				lat = append(lat, time.Since(start))
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	}
	type row struct {
		name     string
		p50, p99 time.Duration
	}
	var rows []row
	for _, jobThreads := range []int{defaultJobThreads(), runtime.NumCPU()} {
		p := startServe(t, t.TempDir(), tokenEnv, "--job-threads", strconv.Itoa(jobThreads), "--threads", "0")
		c := p.client()
		if jobThreads == defaultJobThreads() {
			p50, p99 := measure(p.url)
			rows = append(rows, row{"no job", p50, p99})
		}
		ctx := context.Background()
		j, err := c.Submit(ctx, "cpu-burn", json.RawMessage(`{"seconds":3600}`))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the burn to run", 20*time.Second, func() bool {
			j, err = c.Job(ctx, j.ID)
			return err == nil && j.Status == jobs.StatusRunning
		})
		p50, p99 := measure(p.url)
		rows = append(rows, row{fmt.Sprintf("cpu-burn job, --job-threads %d", jobThreads), p50, p99})
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		p.kill()
	}
	t.Logf("%d B requests of 32 tokens each, sequential, %d CPUs (serving threads: one per CPU)", n, runtime.NumCPU())
	t.Logf("| case | p50 | p99 |")
	t.Logf("|---|---|---|")
	for _, r := range rows {
		t.Logf("| %s | %.1f ms | %.1f ms |", r.name, float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000)
	}
}
