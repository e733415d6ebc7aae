package server

import (
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// ChatTemplater is implemented by a Generator that applies its own chat template: a remote chat endpoint (the
// remote renders the messages with its model's template). Chat requests to such a generator carry the
// conversation in engine.Request.Messages and no rendered prompt; the Model's Template is not used (it may be
// nil). AppliesChatTemplate may return false to fall back to rendering.
type ChatTemplater interface {
	AppliesChatTemplate() bool
}

// BackendReporter is implemented by generators and scorers that forward to a remote backend. /readyz lists
// their states under "backends", and the gauges bestofn:backend_up, bestofn:backend_consecutive_failures and
// bestofn:backend_requests_in_flight (label backend) export them.
type BackendReporter interface {
	BackendStatus() api.BackendStatus
}

// engineMessages converts a conversation for engine.Request.Messages; nil stays nil.
func engineMessages(msgs []Message) []engine.Message {
	if msgs == nil {
		return nil
	}
	out := make([]engine.Message, len(msgs))
	for i, m := range msgs {
		out[i] = engine.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// appliesTemplate says whether m's generator renders chat messages itself.
func appliesTemplate(m *Model) bool {
	t, ok := m.Generator.(ChatTemplater)
	return ok && t.AppliesChatTemplate()
}

// backendLabel is the backend label of m's metrics: ModelInfo.Backend, else "local".
func backendLabel(m *Model) string {
	if m.Info.Backend != "" {
		return m.Info.Backend
	}
	return "local"
}

// backendStatuses lists the state of every remote backend the served models use now, by kind and name.
func (s *Server) backendStatuses() []api.BackendStatus {
	s.swap.mu.RLock()
	var objs []any
	for _, sl := range s.swap.slots {
		objs = append(objs, sl.model.Generator)
		if sl.model.Scorer != nil {
			objs = append(objs, sl.model.Scorer)
		}
	}
	s.swap.mu.RUnlock()
	seen := map[string]bool{}
	var out []api.BackendStatus
	for _, o := range objs {
		r, ok := o.(BackendReporter)
		if !ok {
			continue
		}
		st := r.BackendStatus()
		if key := st.Kind + "\x00" + st.Name; !seen[key] {
			seen[key] = true
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// backendCollector exports backend states at scrape time.
type backendCollector struct {
	up, failures, inFlight *prometheus.Desc
	source                 atomic.Pointer[func() []api.BackendStatus] // set by New
}

func newBackendCollector() *backendCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(metricPrefix+name, help, []string{"backend", "kind"}, nil)
	}
	return &backendCollector{
		up:       d("backend_up", "1 when the backend's circuit is closed or half-open (requests go through), 0 when it is open."),
		failures: d("backend_consecutive_failures", "Requests to the backend that failed since its last success."),
		inFlight: d("backend_requests_in_flight", "Requests being sent to the backend."),
	}
}

// Describe implements prometheus.Collector.
func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.failures
	ch <- c.inFlight
}

// Collect implements prometheus.Collector.
func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	for _, st := range (*src)() {
		up := 1.0
		if st.State == api.BackendOpen {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, st.Name, st.Kind)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(st.ConsecutiveFailures), st.Name, st.Kind)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.InFlight), st.Name, st.Kind)
	}
}
