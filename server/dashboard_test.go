package server

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

const dashboardPath = "../deploy/grafana/bestofn-dashboard.json"

// dashboardExprs returns the PromQL of every panel target of the Grafana dashboard, with the $model variable
// expanded to match all models.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, strings.ReplaceAll(tg.Expr, "$model", ".*"))
		}
	}
	return out
}

// TestDashboardMetricsExist checks that every metric the dashboard plots is one the server exports, and that
// the latency panel is the p50/p95/p99-by-variant query.
func TestDashboardMetricsExist(t *testing.T) {
	e := newEnv(t, nil)
	e.metrics.WatchEngine("g", func() EngineStats { return EngineStats{} })
	for _, v := range []string{"B", "R1"} {
		e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, v)
	}
	e.gen.degrade = true
	e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, "R1")
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	name := regexp.MustCompile(`bestofn:[a-z0-9_]+`)
	exprs := dashboardExprs(t)
	for _, expr := range exprs {
		for _, m := range name.FindAllString(expr, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if trimmed, ok := strings.CutSuffix(m, suf); ok && have[trimmed] {
					base = trimmed
				}
			}
			if !have[base] {
				t.Errorf("dashboard query %q uses %s, which the server does not export", expr, m)
			}
		}
	}
	want := map[string]bool{}
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		want["histogram_quantile("+q+", sum by (le, variant) (rate(bestofn:e2e_request_latency_seconds_bucket{model=~\".*\"}[5m])))"] = true
	}
	for _, expr := range exprs {
		delete(want, expr)
	}
	if len(want) != 0 {
		t.Errorf("dashboard lacks the latency quantiles by variant: %v", want)
	}
}
