package server

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// series returns the metrics of family name whose labels include want.
func series(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range series(t, g, name, want) {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

func histCount(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range series(t, g, name, want) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func histStats(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (uint64, float64) {
	t.Helper()
	var n uint64
	var sum float64
	for _, m := range series(t, g, name, want) {
		n += m.GetHistogram().GetSampleCount()
		sum += m.GetHistogram().GetSampleSum()
	}
	return n, sum
}

func TestMetricsByVariant(t *testing.T) {
	e := newEnv(t, nil)
	e.metrics.WatchEngine("gen0", func() EngineStats {
		return EngineStats{QueueDepth: 3, ActiveRequests: 2, ActiveSequences: 7, KVBlocksUsed: 11, KVBlocksTotal: 64}
	})
	for i := 0; i < 3; i++ {
		e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, "R1")
	}
	e.do(t, "POST", "/api/generate", `{"model":"ab","prompt":"x","stream":false}`, HeaderVariant, "B")
	e.do(t, "POST", "/v1/chat/completions", `{"model":"nope","messages":[]}`)
	e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[]}`, HeaderVariant, "B")

	r1 := map[string]string{"model": "ab", "variant": "R1"}
	b := map[string]string{"model": "ab", "variant": "B"}
	for _, name := range []string{"bestofn:e2e_request_latency_seconds", "bestofn:time_to_first_token_seconds",
		"bestofn:request_queue_time_seconds", "bestofn:request_prefill_time_seconds", "bestofn:request_decode_time_seconds",
		"bestofn:reward_scoring_time_seconds", "bestofn:reward_score"} {
		if got := histCount(t, e.reg, name, r1); got != 3 {
			t.Errorf("%s{R1} count %d, want 3", name, got)
		}
	}
	if got := histCount(t, e.reg, "bestofn:e2e_request_latency_seconds", b); got != 1 {
		t.Errorf("e2e{B} count %d", got)
	}
	if got := histCount(t, e.reg, "bestofn:reward_scoring_time_seconds", b); got != 0 {
		t.Errorf("baseline was not reranked, scoring count %d", got)
	}
	if got := histCount(t, e.reg, "bestofn:request_generation_tokens_per_candidate", r1); got != 15 {
		t.Errorf("tokens per candidate count %d, want 3 requests x 5 candidates", got)
	}
	if got := counterValue(t, e.reg, "bestofn:requests_total", map[string]string{"variant": "R1", "status": "200", "endpoint": "/v1/chat/completions"}); got != 3 {
		t.Errorf("requests R1 200: %v", got)
	}
	if got := counterValue(t, e.reg, "bestofn:requests_total", map[string]string{"model": "", "status": "404"}); got != 1 {
		t.Errorf("requests 404: %v", got)
	}
	if got := counterValue(t, e.reg, "bestofn:requests_total", map[string]string{"variant": "B", "status": "400"}); got != 1 {
		t.Errorf("requests B 400: %v", got)
	}
	if got := counterValue(t, e.reg, "bestofn:generation_tokens_total", r1); got < 15 {
		t.Errorf("generation tokens %v", got)
	}
	if got := counterValue(t, e.reg, "bestofn:kv_cache_blocks_used", map[string]string{"engine": "gen0"}); got != 11 {
		t.Errorf("kv blocks gauge %v", got)
	}
	if got := counterValue(t, e.reg, "bestofn:num_requests_waiting", map[string]string{"engine": "gen0"}); got != 3 {
		t.Errorf("queue gauge %v", got)
	}
	// The registry passes client_golang's own consistency checks.
	if _, err := testutil.GatherAndLint(e.reg); err != nil {
		t.Fatal(err)
	}
	w := e.do(t, "GET", "/metrics", "")
	if !strings.Contains(w.Body.String(), `bestofn:e2e_request_latency_seconds_bucket{backend="local",model="ab",variant="R1",le="0.001"}`) {
		t.Errorf("/metrics lacks the latency histogram:\n%.2000s", w.Body.String())
	}
}
