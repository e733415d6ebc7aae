package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promResult is the part of a Prometheus instant-query answer the test reads.
type promResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func promQuery(ctx context.Context, base, q string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var pr promResult
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		return nil, err
	}
	if pr.Status != "success" {
		return nil, fmt.Errorf("query %q: status %q", q, pr.Status)
	}
	out := map[string]float64{}
	for _, r := range pr.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		out[r.Metric["variant"]] = v
	}
	return out, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPrometheusScrape starts a real Prometheus (the Debian package's /usr/bin/prometheus, or $PROMETHEUS) on a
// loopback port, lets it scrape a running server, and checks with PromQL that the e2e latency histogram is
// there by variant and that the dashboard's p50/p95/p99 query answers for both variants.
func TestPrometheusScrape(t *testing.T) {
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		bin = "prometheus"
	}
	bin, err := exec.LookPath(bin)
	if err != nil {
		t.Skip("prometheus binary not found (apt-get install prometheus; .ci/run installs it): ", err)
	}
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	e := newEnv(t, nil)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	target := strings.TrimPrefix(ts.URL, "http://")

	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: bestofn\n    static_configs:\n      - targets: ['%s']\n", target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	base := "http://" + promAddr

	send := func(k int) {
		for i := 0; i < k; i++ {
			for _, v := range []string{"B", "R1"} {
				if w := e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, v); w.Code != 200 {
					t.Fatalf("request: %d %s", w.Code, w.Body)
				}
			}
		}
	}
	// wait polls q until ok accepts its result.
	wait := func(q string, ok func(map[string]float64) bool) map[string]float64 {
		t.Helper()
		var last map[string]float64
		var lastErr error
		for ctx.Err() == nil {
			last, lastErr = promQuery(ctx, base, q)
			if lastErr == nil && ok(last) {
				return last
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("query %q: last result %v, err %v\nprometheus log:\n%s", q, last, lastErr, logs.String())
		return nil
	}

	send(3)
	count := `sum by (variant) (bestofn:e2e_request_latency_seconds_count{job="bestofn"})`
	wait(count, func(m map[string]float64) bool { return m["B"] == 3 && m["R1"] == 3 })
	send(4) // a second batch, so rate() sees an increase between scrapes
	got := wait(count, func(m map[string]float64) bool { return m["B"] == 7 && m["R1"] == 7 })
	if len(got) != 2 {
		t.Errorf("variants %v", got)
	}
	// Every query of the Grafana dashboard parses and runs (with a window the short test can fill).
	for _, expr := range dashboardExprs(t) {
		if _, err := promQuery(ctx, base, strings.ReplaceAll(expr, "[5m]", "[1m]")); err != nil {
			t.Errorf("dashboard query %q: %v", expr, err)
		}
	}
	for _, q := range []float64{0.5, 0.95, 0.99} {
		pq := fmt.Sprintf(`histogram_quantile(%g, sum by (le, variant) (rate(bestofn:e2e_request_latency_seconds_bucket[1m])))`, q)
		res := wait(pq, func(m map[string]float64) bool { return len(m) == 2 && m["B"] > 0 && m["R1"] > 0 })
		for v, x := range res {
			if x > 1 { // the fake generator answers in microseconds; p99 must land in a sub-second bucket
				t.Errorf("p%g of %s = %v s", q*100, v, x)
			}
		}
	}
}
