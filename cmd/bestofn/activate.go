package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/server"
)

// activator implements admin.Activator: it loads a registered version (a GGUF generator with its tokenizer,
// template and engine; or an ONNX reward model) and hot-swaps it into the server for some served names. A
// version that fails to load, or a reward model that fails a first score, changes nothing.
type activator struct {
	srv           *server.Server // set once the server is built
	threads       int
	maxN          int // the server's limit on candidates, for the engines it loads
	rewardRuntime string
	log           *slog.Logger

	mu      sync.Mutex // one activation at a time; guards serving, closers and watched
	serving map[string]admin.Served
	closers []func() error // everything activated, closed once at shutdown (retired ones are already closed)
	metrics *server.Metrics
	// watched holds, per engine label ("NAME:vN"), the engine its gauges read: a label is registered with the
	// metrics once, and a version activated again points it at the new engine.
	watched map[string]*atomic.Pointer[engine.Engine]
	// swapped is when (Unix seconds) each served name last switched its generator or reward model here: a
	// recorded activation older than that is not applied again (it may be the one this switch replaced, before
	// the switch itself is recorded).
	swapped map[activationKey]int64
}

// swappedAt says when name last switched its model of kind here (0: never).
func (a *activator) swappedAt(name string, kind jobs.ModelKind) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.swapped[activationKey{name, kind}]
}

// setMetrics is the serve configuration's onMetrics hook.
func (a *activator) setMetrics(m *server.Metrics) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metrics = m
}

// watch reports eng's gauges under label (called with mu held).
func (a *activator) watch(label string, eng *engine.Engine) {
	if a.metrics == nil {
		return
	}
	if p, ok := a.watched[label]; ok {
		p.Store(eng)
		return
	}
	p := &atomic.Pointer[engine.Engine]{}
	p.Store(eng)
	a.watched[label] = p
	a.metrics.WatchEngine(label, func() server.EngineStats {
		st := p.Load().Stats()
		return server.EngineStats{QueueDepth: st.QueueDepth, ActiveRequests: st.ActiveRequests,
			ActiveSequences: st.ActiveSeqs, KVBlocksUsed: st.KVBlocksUsed, KVBlocksTotal: st.KVBlocksTotal}
	})
}

// newActivator starts from what the configuration serves.
func newActivator(cfg serveConfig, logger *slog.Logger) *activator {
	a := &activator{threads: cfg.Threads, maxN: cfg.Limits.MaxN, rewardRuntime: "auto", log: logger, serving: map[string]admin.Served{},
		watched: map[string]*atomic.Pointer[engine.Engine]{}, swapped: map[activationKey]int64{}}
	gens := map[string]generatorConfig{}
	for _, g := range cfg.Generators {
		gens[g.Name] = g
		if g.RewardRuntime != "" {
			a.rewardRuntime = g.RewardRuntime
		}
	}
	for _, m := range cfg.Models {
		g := gens[m.Generator]
		s := admin.Served{Name: m.Name, Generator: admin.ServedModel{Path: g.Model}}
		if g.RewardModel != "" {
			s.Reward = &admin.ServedModel{Path: g.RewardModel}
		}
		a.serving[m.Name] = s
	}
	return a
}

func (a *activator) servedNames() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]bool{}
	for n := range a.serving {
		out[n] = true
	}
	return out
}

// Serving implements admin.Activator.
func (a *activator) Serving() []admin.Served {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]admin.Served, 0, len(a.serving))
	for _, s := range a.serving {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// names checks serveAs against the served models, or picks the default: every served model for a generator,
// the ones that can rerank for a reward model (every one if none can).
func (a *activator) names(kind jobs.ModelKind, serveAs []string) ([]string, error) {
	if len(serveAs) > 0 {
		seen := map[string]bool{}
		for _, n := range serveAs {
			if _, ok := a.serving[n]; !ok {
				known := make([]string, 0, len(a.serving))
				for k := range a.serving {
					known = append(known, k)
				}
				sort.Strings(known)
				return nil, &jobs.ParamError{Field: "serve_as", Message: fmt.Sprintf("%q is not a served model (served: %v; experiments follow their models)", n, known)}
			}
			if seen[n] {
				return nil, &jobs.ParamError{Field: "serve_as", Message: fmt.Sprintf("%q listed twice", n)}
			}
			seen[n] = true
		}
		return serveAs, nil
	}
	var all, rerank []string
	for _, s := range a.srv.Serving() {
		all = append(all, s.Name)
		if s.CanRerank {
			rerank = append(rerank, s.Name)
		}
	}
	if kind == jobs.KindReward && len(rerank) > 0 {
		return rerank, nil
	}
	return all, nil
}

// Activate implements admin.Activator.
func (a *activator) Activate(ctx context.Context, mv jobs.ModelVersion, path string, serveAs []string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv == nil {
		return nil, fmt.Errorf("activate: the server is not up yet")
	}
	names, err := a.names(mv.Kind, serveAs)
	if err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%s:v%d", mv.Name, mv.Version)
	ref := admin.ServedModel{Model: mv.Name, Version: mv.Version, Path: path}
	switch mv.Kind {
	case jobs.KindGenerator:
		l, err := loadGenerator(generatorConfig{Name: label, Model: path}, a.threads, a.maxN, a.log)
		if err != nil {
			closeLoaded(l)
			return nil, fmt.Errorf("%w: generator %s: %v", admin.ErrLoad, label, err)
		}
		if err := a.srv.Swap(server.Swap{Models: names, Generator: l.gen, Template: l.tmpl, Info: l.info}); err != nil {
			closeLoaded(l)
			return nil, err
		}
		a.closers = append(a.closers, l.gen.Close)
		a.watch(label, l.eng)
		for _, n := range names {
			s := a.serving[n]
			s.Generator = ref
			a.serving[n] = s
		}
	case jobs.KindReward:
		rm, err := reward.Load(path, reward.Options{Runtime: a.rewardRuntime})
		if err != nil {
			return nil, fmt.Errorf("%w: reward model %s: %v", admin.ErrLoad, label, err)
		}
		// A first score proves the model runs before it replaces one that does.
		if scores, err := rm.Score(ctx, "Is this a test?", []string{"Yes, it is a test."}); err != nil || len(scores) != 1 {
			rm.Close()
			return nil, fmt.Errorf("%w: reward model %s does not score: %v", admin.ErrLoad, label, err)
		}
		sc := &closingScorer{Model: rm}
		if err := a.srv.Swap(server.Swap{Models: names, Scorer: sc, RewardModel: label}); err != nil {
			sc.Close()
			return nil, err
		}
		a.closers = append(a.closers, sc.Close)
		for _, n := range names {
			s := a.serving[n]
			r := ref
			s.Reward = &r
			a.serving[n] = s
		}
	default:
		return nil, &jobs.ParamError{Field: "kind", Message: fmt.Sprintf("model %s has kind %q; want generator or reward", mv.Name, mv.Kind)}
	}
	now := time.Now().Unix()
	for _, n := range names {
		a.swapped[activationKey{n, mv.Kind}] = now
	}
	a.log.Info("hot swap", "model", label, "kind", mv.Kind, "serve_as", names, "path", path)
	return names, nil
}

// closeLoaded releases what a failed load opened.
func closeLoaded(l *loaded) {
	if l == nil {
		return
	}
	if l.scorer != nil {
		l.scorer.Close()
	}
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
}

// close releases every model activated at run time (once: those the server retired are closed already).
func (a *activator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close activated model", "err", err)
		}
	}
	a.closers = nil
}
