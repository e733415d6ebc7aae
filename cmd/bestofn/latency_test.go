package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
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

// latencyHH is ../shared's HH-RLHF harmless-base test split, the training data of the job under which the
// latency is measured.
const latencyHH = "../../../shared/data/hh_rlhf_harmless_base_test.jsonl.gz"

// TestLatencyUnderJob measures the latency of B requests (llama-gpt4, one sample of 32 tokens) on a real
// server with stories260K, without a job and while a real training job runs: train-reward on stories260K
// (the served model as the backbone) with 400 HH-RLHF pairs, batch 8, up to 256 tokens, first with
// --job-threads 1 (the default on 2 cores), then with --job-threads 2 (every core). The job must be training
// (a loss reported) before the requests start and still running when they end, else the test fails. It is
// a measurement, not a check: run it with
//
//	BESTOFN_LATENCY=1 go test ./cmd/bestofn -run LatencyUnderJob -v -timeout 30m
//
// (BESTOFN_LATENCY_N sets the requests per case, default 400). It logs the load average before and after.
func TestLatencyUnderJob(t *testing.T) {
	if os.Getenv("BESTOFN_LATENCY") == "" {
		t.Skip("a measurement: set BESTOFN_LATENCY=1")
	}
	n := 400
	if v, err := strconv.Atoi(os.Getenv("BESTOFN_LATENCY_N")); err == nil && v > 0 {
		n = v
	}
	model, err := os.ReadFile(serveTestModel)
	if err != nil {
		t.Skip("shared model missing: ", err)
	}
	hh := hhPairs(t, 400)
	t.Logf("load average before: %s", loadAvg())

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
	for _, jobThreads := range []int{1, 2} {
		p := startServe(t, t.TempDir(), tokenEnv, "--job-threads", strconv.Itoa(jobThreads), "--threads", "0")
		c := p.client()
		ctx := context.Background()
		if jobThreads == 1 {
			p50, p99 := measure(p.url)
			rows = append(rows, row{"no job", p50, p99})
		}
		base, err := c.UploadFile(ctx, "stories260K.gguf", jobs.PurposeModel, bytes.NewReader(model))
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.UploadFile(ctx, "hh.jsonl", "preference-data", bytes.NewReader(hh))
		if err != nil {
			t.Fatal(err)
		}
		params, _ := json.Marshal(map[string]any{"base_file": base.ID, "training_files": []string{data.ID}, "epochs": 1000,
			"batch_size": 8, "max_length": 256, "learning_rate": 1e-4, "eval_fraction": 0, "seed": 1})
		j, err := c.Submit(ctx, "train-reward", params)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the training job's first step", 3*time.Minute, func() bool {
			j, err = c.Job(ctx, j.ID)
			if err == nil && j.Status != jobs.StatusQueued && j.Status != jobs.StatusRunning {
				t.Fatalf("job ended %s: %+v", j.Status, j.Error)
			}
			_, trains := j.Metrics["loss"]
			return err == nil && trains
		})
		before := j.Progress.Done
		start := time.Now()
		p50, p99 := measure(p.url)
		elapsed := time.Since(start)
		if j, err = c.Job(ctx, j.ID); err != nil || j.Status != jobs.StatusRunning {
			t.Fatalf("the job is not running at the end of the measurement: %+v %v", j, err)
		}
		t.Logf("--job-threads %d: the job trained %d steps (%.0f tokens/s at its last step) during the %.0f s of requests",
			jobThreads, j.Progress.Done-before, j.Metrics["tokens_per_second"], elapsed.Seconds())
		rows = append(rows, row{fmt.Sprintf("train-reward job, --job-threads %d", jobThreads), p50, p99})
		if _, err := c.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		p.kill()
	}
	t.Logf("load average after: %s", loadAvg())
	t.Logf("%d B requests of 32 tokens each, sequential, %d CPUs (serving threads: one per CPU)", n, runtime.NumCPU())
	t.Logf("| case | p50 | p99 |")
	t.Logf("|---|---|---|")
	for _, r := range rows {
		t.Logf("| %s | %.1f ms | %.1f ms |", r.name, float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000)
	}
}

// hhPairs returns the first n rows of ../shared's HH-RLHF file as JSONL ({chosen, rejected} dialogues).
func hhPairs(t *testing.T, n int) []byte {
	t.Helper()
	f, err := os.Open(latencyHH)
	if err != nil {
		t.Skip("shared data missing: ", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	var out bytes.Buffer
	for i := 0; i < n && sc.Scan(); i++ {
		out.Write(sc.Bytes())
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// loadAvg is /proc/loadavg's first three fields ("" where there is none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
