package remote_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/server"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// gateway is a bestofn server (package server, in this process) whose models are served by a remote
// Generator: "m" (B), "m:r1" (best of 5 ranked by scorer).
type gateway struct {
	URL  string
	reg  *prometheus.Registry
	logs *logBuffer
}

func newGateway(t *testing.T, g *remote.Generator, scorer engine.Scorer, lim server.Limits) *gateway {
	t.Helper()
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	info := server.ModelInfo{Backend: g.Name()}
	models := []server.Model{{Name: "m", Generator: g, N: 1, Info: info}}
	if scorer != nil {
		models = append(models, server.Model{Name: "m:r1", Generator: g, N: 5, Rerank: true, Scorer: scorer, Info: info})
	}
	srv, err := server.New(server.Config{Models: models, Limits: lim, Metrics: server.NewMetrics(reg), Gatherer: reg,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &gateway{URL: ts.URL, reg: reg, logs: logs}
}

// post sends a JSON body and returns the status and the decoded body.
func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: status %d, body %q is not JSON", url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func chatBody(model string, extra map[string]any) map[string]any {
	b := map[string]any{"model": model, "max_tokens": 16, "seed": 5,
		"messages": []map[string]string{{"role": "user", "content": "Tell me a story about a cat."}}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// openaiError returns the message and code of an OpenAI error body.
func openaiError(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no OpenAI error in %v", body)
	}
	msg, _ := e["message"].(string)
	code, _ := e["code"].(string)
	return msg, code
}

// deadURL is the URL of a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestBackendDown: a backend that refuses connections is a 502 in each API's error shape naming the backend,
// at once.
func TestBackendDown(t *testing.T) {
	g, _ := newGenerator(t, remote.Config{Name: "vllm-east", URL: deadURL(t) + "/v1"})
	gw := newGateway(t, g, nil, server.Limits{})
	start := time.Now()
	status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil))
	msg, code := openaiError(t, body)
	if status != http.StatusBadGateway || code != "backend_error" || !strings.Contains(msg, `backend "vllm-east"`) {
		t.Errorf("status %d, code %q, message %q", status, code, msg)
	}
	if strings.Contains(msg, "127.0.0.1") {
		t.Errorf("the message shows the backend's address: %q", msg)
	}
	status, body = post(t, gw.URL+"/api/chat", map[string]any{"model": "m", "stream": false,
		"messages": []map[string]string{{"role": "user", "content": "hi"}}})
	if e, _ := body["error"].(string); status != http.StatusBadGateway || !strings.Contains(e, `backend "vllm-east"`) {
		t.Errorf("ollama API: status %d, body %v", status, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("two requests to a dead backend took %v", d)
	}
	if !strings.Contains(gw.logs.String(), "connection refused") {
		t.Errorf("the cause is not logged:\n%s", gw.logs.String())
	}
}

// TestSlowBackend: a backend slower than the request deadline is a 504 at the deadline.
func TestSlowBackend(t *testing.T) {
	srv := startRemote(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return true
		}
		return false
	})
	g, _ := newGenerator(t, remote.Config{URL: proxy.URL + "/v1"})
	gw := newGateway(t, g, nil, server.Limits{RequestTimeout: 400 * time.Millisecond})
	start := time.Now()
	status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil))
	took := time.Since(start)
	if _, code := openaiError(t, body); status != http.StatusGatewayTimeout || code != "timeout" {
		t.Errorf("status %d, body %v", status, body)
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("answered after %v; the deadline is 400ms", took)
	}
}

// TestSomeCandidatesFail: two of five fanned-out candidates fail (a 500 and a dropped connection); the other
// three are ranked and the answer is marked degraded with the reason.
func TestSomeCandidatesFail(t *testing.T) {
	srv := startRemote(t)
	var drop teachertest.Fault = teachertest.DropMidResponse(srv.URL, 1<<62)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		seed := seedOf(t, r)
		switch seed {
		case 7: // candidate 2 of seed 5
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":{"message":"CUDA out of memory","type":"server_error"}}`)
			return true
		case 9: // candidate 4
			return drop(n, w, r)
		}
		return false
	})
	g, _ := newGenerator(t, remote.Config{URL: proxy.URL + "/v1", NSupport: remote.NFanout})
	gw := newGateway(t, g, tinyRM(t, rewardOpts()), server.Limits{})
	status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m:r1", map[string]any{"return_candidates": true}))
	if status != http.StatusOK {
		t.Fatalf("status %d, body %v", status, body)
	}
	reason, _ := body["degraded_reason"].(string)
	if body["degraded"] != true || !strings.Contains(reason, "2 of 5 candidates failed") {
		t.Errorf("degraded %v, reason %q", body["degraded"], reason)
	}
	cands, _ := body["candidates"].([]any)
	if len(cands) != 3 {
		t.Fatalf("%d candidates, want 3: %v", len(cands), cands)
	}
	seen := map[float64]bool{}
	for _, c := range cands {
		c := c.(map[string]any)
		seen[c["index"].(float64)] = true
		if _, ok := c["score"]; !ok {
			t.Errorf("candidate %v is not scored", c["index"])
		}
	}
	if !seen[0] || !seen[1] || !seen[3] || seen[2] || seen[4] {
		t.Errorf("candidates %v, want indices 0, 1, 3", seen)
	}
}

// seedOf reads the seed of a proxied request body and restores the body.
func seedOf(t *testing.T, r *http.Request) int64 {
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var b struct {
		Seed    *int64 `json:"seed"`
		Options struct {
			Seed *int64 `json:"seed"`
		} `json:"options"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Errorf("proxy: body %q: %v", raw, err)
		return -1
	}
	switch {
	case b.Seed != nil:
		return *b.Seed
	case b.Options.Seed != nil:
		return *b.Options.Seed
	}
	return -1
}

// TestMalformedResponses: garbage from the backend (an SSE event that is not JSON, an NDJSON line that is not
// JSON, a body that is no stream at all, a response cut in half) is a 502 naming the backend, with the cause
// logged.
func TestMalformedResponses(t *testing.T) {
	srv := startRemote(t)
	for _, tc := range []struct {
		name, api, path string
		fault           teachertest.Fault
		want            string
	}{
		{"sse-garbage", remote.APIOpenAI, "/v1", writeBody("text/event-stream", "data: {\"id\": \"x\", \"choices\": [{\"delta\": \n\n"), "malformed response"},
		{"html", remote.APIOpenAI, "/v1", writeBody("text/html", "<html><body>502 Bad Gateway</body></html>"), "malformed response"},
		{"ndjson-garbage", remote.APIOllama, "", writeBody("application/x-ndjson", "{\"message\":{\"content\":\"Once\"}}\n{\"message\": garbage\n"), "malformed response"},
		{"cut-off", remote.APIOpenAI, "/v1", teachertest.DropMidResponse(srv.URL, 1<<62), "closed before the response was complete"},
		{"cut-off-ollama", remote.APIOllama, "", teachertest.DropMidResponse(srv.URL, 1<<62), "closed before the response was complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := teachertest.NewProxy(t, srv.URL, tc.fault)
			g, _ := newGenerator(t, remote.Config{Name: "flaky", API: tc.api, URL: proxy.URL + tc.path})
			gw := newGateway(t, g, nil, server.Limits{})
			status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil))
			msg, _ := openaiError(t, body)
			if status != http.StatusBadGateway || !strings.Contains(msg, `backend "flaky"`) || !strings.Contains(msg, tc.want) {
				t.Errorf("status %d, message %q; want 502 with %q", status, msg, tc.want)
			}
			if logs := gw.logs.String(); !strings.Contains(logs, "cause=") || !strings.Contains(logs, tc.want) {
				t.Errorf("cause not logged:\n%s", logs)
			}
		})
	}
}

// writeBody answers every request with 200 and body.
func writeBody(contentType, body string) teachertest.Fault {
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, body)
		return true
	}
}

// TestBackendIgnoresN: behind a proxy that strips n (as llama.cpp builds before late 2025 do), the first
// best-of-5 request gets one choice, fans out the other four, and the backend is fanned out from then on;
// the candidates are those the backend gives for seeds seed+i.
func TestBackendIgnoresN(t *testing.T) {
	srv := startRemote(t)
	var withN atomic.Int64
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		raw, _ := io.ReadAll(r.Body)
		var b map[string]any
		if err := json.Unmarshal(raw, &b); err == nil {
			if _, ok := b["n"]; ok {
				withN.Add(1)
			}
			delete(b, "n")
			raw, _ = json.Marshal(b)
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		return false
	})
	g, logs := newGenerator(t, remote.Config{URL: proxy.URL + "/v1"})
	want := make([]string, 5)
	for i := range want {
		want[i] = strings.TrimLeft(directChat(t, srv.URL, 41+int64(i)), " \n")
	}
	for round := 0; round < 2; round++ {
		before := proxy.Requests.Load()
		res, err := g.Generate(context.Background(), chatRequest(5, 41, false))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Candidates) != 5 || res.Degraded {
			t.Fatalf("round %d: %d candidates, degraded %v %s", round, len(res.Candidates), res.Degraded, res.DegradedReason)
		}
		for i, c := range res.Candidates {
			if c.Index != i || strings.TrimLeft(c.Text, " \n") != want[i] {
				t.Errorf("round %d: candidate %d (index %d) %q, want %q", round, i, c.Index, c.Text, want[i])
			}
		}
		if got := proxy.Requests.Load() - before; got != 5 {
			t.Errorf("round %d: %d requests to the backend, want 5", round, got)
		}
	}
	if withN.Load() != 1 {
		t.Errorf("%d requests asked for n; want only the first", withN.Load())
	}
	if st := g.BackendStatus(); st.NSupport != remote.NFanout {
		t.Errorf("n_support %q", st.NSupport)
	}
	if !strings.Contains(logs.String(), "ignores n") {
		t.Errorf("no log line says the backend ignores n:\n%s", logs.String())
	}
}

// TestCircuitBreaker: a backend that takes every request to its deadline costs the first Failures requests
// their deadline; after that requests fail at once (502, circuit open) and /readyz and the gauges say so;
// once the backend answers again, the probe after the open period closes the circuit.
func TestCircuitBreaker(t *testing.T) {
	srv := startRemote(t)
	var hang atomic.Bool
	hang.Store(true)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if hang.Load() {
			<-r.Context().Done()
			return true
		}
		return false
	})
	g, _ := newGenerator(t, remote.Config{Name: "blackhole", URL: proxy.URL + "/v1",
		Breaker: remote.BreakerConfig{Failures: 2, OpenFor: 500 * time.Millisecond}})
	gw := newGateway(t, g, nil, server.Limits{RequestTimeout: 300 * time.Millisecond})
	for i := 0; i < 2; i++ {
		if status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil)); status != http.StatusGatewayTimeout {
			t.Fatalf("request %d: status %d, body %v", i, status, body)
		}
	}
	start := time.Now()
	status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil))
	msg, _ := openaiError(t, body)
	if took := time.Since(start); status != http.StatusBadGateway || !strings.Contains(msg, "circuit open") || took > 100*time.Millisecond {
		t.Errorf("with the circuit open: status %d after %v, message %q", status, took, msg)
	}
	st := readyBackend(t, gw.URL, "blackhole")
	if st.State != api.BackendOpen || st.ConsecutiveFailures != 2 || st.RetryAt == nil || !strings.Contains(st.LastError, "deadline") {
		t.Errorf("readyz: %+v", st)
	}
	if v := gauge(t, gw.reg, "bestofn:backend_up", "blackhole"); v != 0 {
		t.Errorf("bestofn:backend_up = %v with the circuit open", v)
	}
	hang.Store(false)
	time.Sleep(600 * time.Millisecond)
	if status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil)); status != http.StatusOK {
		t.Fatalf("after recovery: status %d, body %v", status, body)
	}
	if st := readyBackend(t, gw.URL, "blackhole"); st.State != api.BackendClosed || st.ConsecutiveFailures != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	if v := gauge(t, gw.reg, "bestofn:backend_up", "blackhole"); v != 1 {
		t.Errorf("bestofn:backend_up = %v after recovery", v)
	}
}

// readyBackend returns the /readyz entry of backend name.
func readyBackend(t *testing.T, url, name string) api.BackendStatus {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status   string              `json:"status"`
		Backends []api.BackendStatus `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body.Status != "ready" {
		t.Errorf("readyz: status %d, %q", resp.StatusCode, body.Status)
	}
	for _, b := range body.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("readyz lists no backend %q: %+v", name, body.Backends)
	return api.BackendStatus{}
}

// gauge returns the value of a gauge with label backend=name.
func gauge(t *testing.T, reg *prometheus.Registry, family, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" && l.GetValue() == name {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{backend=%q}", family, name)
	return 0
}

// histogram returns the sample count and sum of a histogram's series with the given labels.
func histogram(t *testing.T, reg *prometheus.Registry, family string, labels map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			count += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}
