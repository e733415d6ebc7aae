package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/bestofn/bestofn/engine"
)

// Metric name prefix, in vLLM's style ("vllm:e2e_request_latency_seconds").
const metricPrefix = "bestofn:"

// latencyBuckets span a 260K-parameter model answering in milliseconds and a 7B model on a CPU taking minutes.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640}

// tokenBuckets are powers of two up to 8192 tokens.
var tokenBuckets = prometheus.ExponentialBuckets(1, 2, 14)

// scoreBuckets cover reward scores (unbounded logits, in practice within about ±10).
var scoreBuckets = prometheus.LinearBuckets(-10, 1, 21)

// EngineStats is a snapshot of one engine's load, exported as gauges.
type EngineStats struct {
	QueueDepth      int // requests waiting for admission
	ActiveRequests  int // requests being generated
	ActiveSequences int // candidate sequences decoding
	KVBlocksUsed    int
	KVBlocksTotal   int
}

// Metrics are the server's Prometheus metrics. Histograms and counters are labelled by model (the requested
// model or experiment name) and variant, histograms also by backend (ModelInfo.Backend: the remote backend
// that generated, or "local"); the engine gauges by engine name, the backend gauges by backend.
type Metrics struct {
	e2e          *prometheus.HistogramVec
	ttft         *prometheus.HistogramVec
	engineTTFT   *prometheus.HistogramVec
	queue        *prometheus.HistogramVec
	prefill      *prometheus.HistogramVec
	decode       *prometheus.HistogramVec
	scoring      *prometheus.HistogramVec
	candTokens   *prometheus.HistogramVec
	score        *prometheus.HistogramVec
	requests     *prometheus.CounterVec
	promptTokens *prometheus.CounterVec
	genTokens    *prometheus.CounterVec
	degraded     *prometheus.CounterVec
	inFlight     prometheus.Gauge

	engines  *engineCollector
	backends *backendCollector
}

// NewMetrics creates the server's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	mv := []string{"model", "variant"}
	hist := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return f.NewHistogramVec(prometheus.HistogramOpts{Name: metricPrefix + name, Help: help, Buckets: buckets},
			[]string{"model", "variant", "backend"})
	}
	m := &Metrics{
		e2e: hist("e2e_request_latency_seconds", "End-to-end latency of generation requests, from arrival to the full answer.", latencyBuckets),
		ttft: hist("time_to_first_token_seconds", "Time from a request's arrival to the first answer text sent to the client "+
			"(for a reranked request, after ranking; without streaming, when the answer is sent).", latencyBuckets),
		engineTTFT: hist("engine_time_to_first_token_seconds", "Time from arrival in the engine's queue to its first sampled token.",
			latencyBuckets),
		queue:   hist("request_queue_time_seconds", "Time requests waited for admission.", latencyBuckets),
		prefill: hist("request_prefill_time_seconds", "Time spent evaluating prompts.", latencyBuckets),
		decode:  hist("request_decode_time_seconds", "Time spent decoding candidates.", latencyBuckets),
		scoring: hist("reward_scoring_time_seconds", "Time the reward model spent ranking candidates.", latencyBuckets),
		candTokens: hist("request_generation_tokens_per_candidate", "Generated tokens of each candidate.",
			tokenBuckets),
		score: hist("reward_score", "Reward score of the chosen answer, when scored.", scoreBuckets),
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "requests_total",
			Help: "HTTP API requests by endpoint, model, variant and status code."}, []string{"endpoint", "model", "variant", "status"}),
		promptTokens: f.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "prompt_tokens_total",
			Help: "Prompt tokens evaluated."}, mv),
		genTokens: f.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "generation_tokens_total",
			Help: "Tokens generated, over all candidates."}, mv),
		degraded: f.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "degraded_reranks_total",
			Help: "Requests whose reranking failed and fell back to sampling order."}, mv),
		inFlight: f.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "http_requests_in_flight",
			Help: "Generation requests holding a concurrency slot (generating)."}),
		engines:  newEngineCollector(),
		backends: newBackendCollector(),
	}
	reg.MustRegister(m.engines, m.backends)
	return m
}

// WatchEngine exports stats() as the gauges bestofn:num_requests_waiting, bestofn:num_requests_running,
// bestofn:num_sequences_running, bestofn:kv_cache_blocks_used and bestofn:kv_cache_blocks_total with label
// engine=name. stats is called at each scrape and must be safe for concurrent use.
func (m *Metrics) WatchEngine(name string, stats func() EngineStats) {
	m.engines.add(name, stats)
}

func (m *Metrics) countRequest(ri *reqInfo, status int) {
	m.requests.WithLabelValues(ri.endpoint, ri.model, ri.variant, strconv.Itoa(status)).Inc()
}

// observe records a finished generation: e2e and ttft (until the client got the first answer text) are
// measured by the server, the rest comes from the engine.
func (m *Metrics) observe(rt route, res *engine.Result, e2e, ttft time.Duration, reranked bool) {
	l := prometheus.Labels{"model": rt.label, "variant": rt.variant, "backend": backendLabel(rt.model)}
	m.e2e.With(l).Observe(e2e.Seconds())
	m.ttft.With(l).Observe(ttft.Seconds())
	t := res.Timings
	if t.FirstToken > 0 {
		m.engineTTFT.With(l).Observe((t.Queue + t.FirstToken).Seconds())
	}
	m.queue.With(l).Observe(t.Queue.Seconds())
	m.prefill.With(l).Observe(t.Prefill.Seconds())
	m.decode.With(l).Observe(t.Decode.Seconds())
	if reranked {
		m.scoring.With(l).Observe(t.Scoring.Seconds())
	}
	cl := prometheus.Labels{"model": rt.label, "variant": rt.variant}
	m.promptTokens.With(cl).Add(float64(res.PromptTokens))
	gen := 0
	for i := range res.Candidates {
		n := res.Candidates[i].NumTokens()
		m.candTokens.With(l).Observe(float64(n))
		gen += n
	}
	m.genTokens.With(cl).Add(float64(gen))
	if res.Degraded {
		m.degraded.With(cl).Inc()
	}
	if len(res.Candidates) > 0 && res.Candidates[0].Scored {
		m.score.With(l).Observe(float64(res.Candidates[0].Score))
	}
}

// engineCollector reads engine stats at scrape time.
type engineCollector struct {
	waiting, running, seqs, used, total *prometheus.Desc

	mu      sync.Mutex
	names   []string
	sources []func() EngineStats
}

func newEngineCollector() *engineCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(metricPrefix+name, help, []string{"engine"}, nil)
	}
	return &engineCollector{
		waiting: d("num_requests_waiting", "Requests waiting in the engine's admission queue."),
		running: d("num_requests_running", "Requests the engine is generating."),
		seqs:    d("num_sequences_running", "Candidate sequences decoding."),
		used:    d("kv_cache_blocks_used", "KV cache blocks in use."),
		total:   d("kv_cache_blocks_total", "KV cache blocks in total."),
	}
}

func (c *engineCollector) add(name string, stats func() EngineStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
	c.sources = append(c.sources, stats)
}

// Describe implements prometheus.Collector.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.running
	ch <- c.seqs
	ch <- c.used
	ch <- c.total
}

// Collect implements prometheus.Collector.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := append([]string(nil), c.names...)
	sources := append([]func() EngineStats(nil), c.sources...)
	c.mu.Unlock()
	for i, stats := range sources {
		st := stats()
		g := func(d *prometheus.Desc, v int) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), names[i])
		}
		g(c.waiting, st.QueueDepth)
		g(c.running, st.ActiveRequests)
		g(c.seqs, st.ActiveSequences)
		g(c.used, st.KVBlocksUsed)
		g(c.total, st.KVBlocksTotal)
	}
}
