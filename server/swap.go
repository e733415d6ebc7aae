package server

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/bestofn/bestofn/engine"
)

// Hot swap. Every served model has a slot holding its current snapshot (an immutable *Model: generator,
// template, info, scorer). A generation request pins the snapshot of its model when it is resolved (begin) and
// unpins it when its handler returns, so a request runs start to finish on one generator and one scorer even
// if a swap happens meanwhile. Generators and scorers are reference-counted by the slots that use them and the
// requests that pinned them; one that reaches zero (swapped out of every model and drained) is closed when it
// implements io.Closer.

// Swap switches what serves some models (see Server.Swap).
type Swap struct {
	// Models are the served model names to switch; experiments route to models and cannot be swapped.
	Models []string
	// Generator, when not nil, becomes the models' generator, with Template (required with it) and Info.
	// Info.RewardModel is kept from each model when empty.
	Generator Generator
	Template  Template
	Info      ModelInfo
	// Scorer, when not nil, becomes the models' scorer (engine.Request.Scorer: it overrides the generator's
	// own), and the models can rerank. RewardModel names it in their info.
	Scorer      engine.Scorer
	RewardModel string
}

// resource is a generator or scorer shared by slots and pinned by requests.
type resource struct {
	obj  any
	refs atomic.Int64
}

// release drops one reference; the last one closes obj (in the background: the releasing request's handler
// should not wait for an engine to stop) when it implements io.Closer or has a Close() method.
func (r *resource) release(s *Server) {
	if r == nil || r.refs.Add(-1) != 0 {
		return
	}
	go func() {
		var err error
		switch c := r.obj.(type) {
		case io.Closer:
			err = c.Close()
		case interface{ Close() }:
			c.Close()
		default:
			return
		}
		s.log.Info("hot swap: retired model closed", "model", fmt.Sprintf("%T", r.obj), "err", err)
	}()
}

// slot is a served model's current snapshot and the resources it holds.
type slot struct {
	model  *Model
	gen    *resource
	scorer *resource // nil: none of its own
}

// lease is what a request pinned: released when its handler returns.
type lease struct {
	gen, scorer *resource
}

// swapState holds the slots; the map's keys are fixed at New, values change under mu.
type swapState struct {
	mu    sync.RWMutex
	slots map[string]*slot
	// byObj finds the resource of a generator or scorer value already in use, so models sharing one share
	// its count. Keys are comparable values only.
	byObj map[any]*resource
}

// initSwap builds the slots of the configured models.
func (s *Server) initSwap() {
	s.swap = &swapState{slots: make(map[string]*slot), byObj: make(map[any]*resource)}
	for name, m := range s.models {
		sl := &slot{model: m, gen: s.swap.hold(m.Generator)}
		if m.Scorer != nil {
			sl.scorer = s.swap.hold(m.Scorer)
		}
		s.swap.slots[name] = sl
	}
}

// hold adds one reference to obj's resource, creating it on first use. Called with mu held (or before serving).
func (st *swapState) hold(obj any) *resource {
	if t := reflect.TypeOf(obj); t != nil && t.Comparable() {
		if r, ok := st.byObj[obj]; ok {
			r.refs.Add(1)
			return r
		}
	}
	r := &resource{obj: obj}
	r.refs.Store(1)
	if t := reflect.TypeOf(obj); t != nil && t.Comparable() {
		st.byObj[obj] = r
	}
	return r
}

// forget drops obj from byObj once its resource has no slot left (called with mu held). Requests may still hold
// it; a later swap back to the same value makes a new resource.
func (st *swapState) forget(r *resource, stillUsed func(*resource) bool) {
	if r == nil || stillUsed(r) {
		return
	}
	if t := reflect.TypeOf(r.obj); t != nil && t.Comparable() && st.byObj[r.obj] == r {
		delete(st.byObj, r.obj)
	}
}

// pin returns the current snapshot of the model m names and records the lease in the request's info, for
// handle to release.
func (s *Server) pin(ri *reqInfo, m *Model) *Model {
	s.swap.mu.RLock()
	defer s.swap.mu.RUnlock()
	sl, ok := s.swap.slots[m.Name]
	if !ok {
		return m
	}
	sl.gen.refs.Add(1)
	if sl.scorer != nil {
		sl.scorer.refs.Add(1)
	}
	ri.lease = &lease{gen: sl.gen, scorer: sl.scorer}
	return sl.model
}

// unpin releases what a request pinned.
func (s *Server) unpin(ri *reqInfo) {
	if ri.lease == nil {
		return
	}
	ri.lease.gen.release(s)
	ri.lease.scorer.release(s)
	ri.lease = nil
}

// current returns m's current snapshot without pinning it (for listings).
func (s *Server) current(m *Model) *Model {
	s.swap.mu.RLock()
	defer s.swap.mu.RUnlock()
	if sl, ok := s.swap.slots[m.Name]; ok {
		return sl.model
	}
	return m
}

// Swap switches the generator and/or scorer of the named models at once: requests resolved before it finish on
// what they started with, later ones use the new. A generator or scorer no model uses any more is closed, when
// it implements io.Closer (or Close()), once its last request has finished; the caller must not close it. Swap
// takes a reference on the new ones (Swap them out again to release it). It checks everything first and
// changes nothing on error.
func (s *Server) Swap(sw Swap) error {
	if len(sw.Models) == 0 {
		return errors.New("server: swap names no models")
	}
	if sw.Generator == nil && sw.Scorer == nil {
		return errors.New("server: swap has neither a generator nor a scorer")
	}
	if sw.Generator != nil && sw.Template == nil {
		if t, ok := sw.Generator.(ChatTemplater); !ok || !t.AppliesChatTemplate() {
			return errors.New("server: swap of a generator needs its template")
		}
	}
	s.swap.mu.Lock()
	defer s.swap.mu.Unlock()
	seen := map[string]bool{}
	for _, name := range sw.Models {
		if _, ok := s.swap.slots[name]; !ok {
			if _, isX := s.experiments[name]; isX {
				return fmt.Errorf("server: %q is an experiment; swap the models it routes to", name)
			}
			return fmt.Errorf("server: no served model %q", name)
		}
		if seen[name] {
			return fmt.Errorf("server: model %q listed twice", name)
		}
		seen[name] = true
	}
	var dropped []*resource
	for _, name := range sw.Models {
		sl := s.swap.slots[name]
		m := *sl.model
		next := &slot{model: &m, gen: sl.gen, scorer: sl.scorer}
		if sw.Generator != nil {
			m.Generator, m.Template = sw.Generator, sw.Template
			rm := m.Info.RewardModel
			m.Info = sw.Info
			if m.Info.RewardModel == "" {
				m.Info.RewardModel = rm
			}
			next.gen = s.swap.hold(sw.Generator)
			dropped = append(dropped, sl.gen)
		}
		if sw.Scorer != nil {
			m.Scorer, m.CanRerank = sw.Scorer, true
			if sw.RewardModel != "" {
				m.Info.RewardModel = sw.RewardModel
			}
			next.scorer = s.swap.hold(sw.Scorer)
			if sl.scorer != nil {
				dropped = append(dropped, sl.scorer)
			}
		}
		s.swap.slots[name] = next
	}
	inUse := func(r *resource) bool {
		for _, sl := range s.swap.slots {
			if sl.gen == r || sl.scorer == r {
				return true
			}
		}
		return false
	}
	for _, r := range dropped {
		s.swap.forget(r, inUse)
		r.release(s)
	}
	return nil
}

// Serving describes what each served model runs now, by name, sorted: its generator's info and reward model.
func (s *Server) Serving() []ServedModel {
	s.swap.mu.RLock()
	defer s.swap.mu.RUnlock()
	out := make([]ServedModel, 0, len(s.swap.slots))
	for name, sl := range s.swap.slots {
		out = append(out, ServedModel{Name: name, N: sl.model.N, Rerank: sl.model.Rerank, CanRerank: sl.model.CanRerank,
			Info: sl.model.Info})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ServedModel is one entry of Server.Serving.
type ServedModel struct {
	Name      string
	N         int
	Rerank    bool
	CanRerank bool
	Info      ModelInfo
}
