package main

import (
	"errors"
	"sync"

	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/reward"
)

// closingGenerator is a loaded generator as the server serves it: the engine, and a Close that stops it and
// releases its model and checkpoint once, whoever calls it first (the server's hot swap once the generator is
// retired and drained, or shutdown).
type closingGenerator struct {
	*engine.Engine
	once    sync.Once
	closers []func() error // in opening order; closed in reverse
	err     error
}

// Close implements io.Closer.
func (g *closingGenerator) Close() error {
	g.once.Do(func() {
		var errs []error
		for i := len(g.closers) - 1; i >= 0; i-- {
			errs = append(errs, g.closers[i]())
		}
		g.err = errors.Join(errs...)
	})
	return g.err
}

// closingScorer is a loaded reward model whose Close runs once.
type closingScorer struct {
	*reward.Model
	once sync.Once
	err  error
}

// Close implements io.Closer.
func (s *closingScorer) Close() error {
	s.once.Do(func() { s.err = s.Model.Close() })
	return s.err
}
