package server

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bestofn/bestofn/engine"
)

// call is one generation request on its way through the engine.
type call struct {
	rt       route
	plan     plan
	endpoint string
	reqID    string
	start    time.Time
	// chat says the text is a chat answer, which starts at its first character that is not white space (the
	// template's continuation usually starts with a space or a newline); completions keep every byte.
	chat bool
}

// liveFunc receives streamed text of choice index choice, on the handler's goroutine. An error (the client
// went away) cancels the generation.
type liveFunc func(choice int, text string) error

// run executes c on its model's generator and records its metrics and A/B record. With live set and no
// ranking, text is streamed as the engine produces it; when the candidates are ranked (by the reward model,
// or by mean log-probability when there are more candidates than choices, as OpenAI's best_of) nothing can be
// streamed before the ranking is known. It returns the result and the text already streamed per choice, so
// the caller can send what remains.
func (s *Server) run(ctx context.Context, c *call, live liveFunc) (*engine.Result, []string, error) {
	release, err := s.acquireSlot()
	if err != nil {
		return nil, nil, err
	}
	defer release()
	req := c.plan.req
	req.ID = c.reqID
	req.Scorer = c.rt.model.Scorer
	streamed := make([]strings.Builder, c.plan.nChoices)
	trims := make([]answerTrimmer, c.plan.nChoices)
	var firstText time.Time // when the first answer text went to the client

	var res *engine.Result
	byLogprob := !req.Rerank && req.N > c.plan.nChoices
	if live == nil || req.Rerank && req.N > 1 || byLogprob {
		res, err = c.rt.model.Generator.Generate(ctx, req)
	} else {
		res, err = s.runLive(ctx, c.rt.model.Generator, req, c.plan.nChoices, func(choice int, text string) error {
			if c.chat {
				if text = trims[choice].next(text); text == "" {
					return nil
				}
			}
			streamed[choice].WriteString(text)
			if firstText.IsZero() {
				firstText = time.Now()
			}
			return live(choice, text)
		})
	}
	if err == nil && (res == nil || len(res.Candidates) < c.plan.nChoices) {
		got := 0
		if res != nil {
			got = len(res.Candidates)
		}
		err = fmt.Errorf("server: generator returned %d candidates for %d choices", got, c.plan.nChoices)
	}
	if err != nil {
		return nil, nil, err
	}
	if byLogprob {
		rankByLogprob(res.Candidates)
	}
	if c.chat {
		for i := range res.Candidates {
			res.Candidates[i].Text = strings.TrimLeftFunc(res.Candidates[i].Text, unicode.IsSpace)
		}
	}
	end := time.Now()
	if firstText.IsZero() { // the answer goes out now, whole (or what is left of it)
		firstText = end
	}
	s.metrics.observe(c.rt, res, end.Sub(c.start), firstText.Sub(c.start), req.Rerank)
	s.logAB(c, res)
	texts := make([]string, len(streamed))
	for i := range streamed {
		texts[i] = streamed[i].String()
	}
	return res, texts, nil
}

// runLive runs req with an OnEvent hook that never blocks the engine: events are queued and handed to live on
// this goroutine.
func (s *Server) runLive(ctx context.Context, g Generator, req engine.Request, nChoices int, live liveFunc) (*engine.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := &eventQueue{notify: make(chan struct{}, 1)}
	req.OnEvent = q.push
	req.StreamCandidates = true // every candidate as produced, told apart by Event.Candidate
	var res *engine.Result
	var err error
	go func() {
		defer q.close()
		defer func() {
			// The recoverer middleware does not see this goroutine: turn a panic into a 500 here.
			if v := recover(); v != nil {
				res, err = nil, fmt.Errorf("server: generator panicked: %v", v)
			}
		}()
		res, err = g.Generate(ctx, req)
	}()
	var evs []engine.Event
	var liveErr error
	for {
		<-q.notify
		var closed bool
		evs, closed = q.drain(evs[:0])
		for _, ev := range evs {
			if liveErr != nil || ev.Text == "" || ev.Candidate < 0 || ev.Candidate >= nChoices {
				continue
			}
			if liveErr = live(ev.Candidate, ev.Text); liveErr != nil {
				cancel()
			}
		}
		if closed {
			break
		}
	}
	if err == nil && liveErr != nil {
		err = liveErr
	}
	return res, err
}

// rankByLogprob sorts candidates by mean log-probability per token, best first (stable: ties keep sampling
// order; empty candidates last), and sets their ranks: OpenAI's choice among best_of candidates.
func rankByLogprob(cands []engine.Candidate) {
	mean := func(c *engine.Candidate) float64 {
		if c.NumTokens() == 0 || math.IsNaN(c.CumLogprob) {
			return math.Inf(-1)
		}
		return c.CumLogprob / float64(c.NumTokens())
	}
	sort.SliceStable(cands, func(a, b int) bool { return mean(&cands[a]) > mean(&cands[b]) })
	for i := range cands {
		cands[i].Rank = i + 1
	}
}

// answerTrimmer drops the white space a streamed chat answer starts with, piece by piece.
type answerTrimmer struct{ started bool }

func (a *answerTrimmer) next(piece string) string {
	if a.started {
		return piece
	}
	piece = strings.TrimLeftFunc(piece, unicode.IsSpace)
	a.started = piece != ""
	return piece
}

// eventQueue is an unbounded queue of engine events with a wake-up channel.
type eventQueue struct {
	mu     sync.Mutex
	buf    []engine.Event
	closed bool
	notify chan struct{} // capacity 1
}

func (q *eventQueue) push(ev engine.Event) {
	q.mu.Lock()
	q.buf = append(q.buf, ev)
	q.mu.Unlock()
	q.wake()
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *eventQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// drain appends the queued events to dst and reports whether the queue is closed (no more events will come).
func (q *eventQueue) drain(dst []engine.Event) ([]engine.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.buf...)
	q.buf = q.buf[:0]
	return dst, q.closed
}

// logAB writes the request's A/B record when an A/B log is configured; a failure is logged, not returned.
func (s *Server) logAB(c *call, res *engine.Result) {
	if s.cfg.ABLog == nil {
		return
	}
	rec := ABRecord{
		Time:      c.start.UTC(),
		RequestID: c.reqID,
		Model:     c.rt.label,
		Variant:   c.rt.variant,
		Endpoint:  c.endpoint,
		Prompt:    c.plan.req.RewardPrompt,
		Answer:    res.Candidates[0].Text,
		Chosen:    res.Candidates[0].Index,
		N:         len(res.Candidates),
		Degraded:  res.Degraded,
	}
	if rec.Prompt == "" {
		rec.Prompt = c.plan.req.Prompt
	}
	scored := false
	for _, cand := range res.Candidates {
		scored = scored || cand.Scored
	}
	if scored {
		rec.Scores = make([]float32, len(res.Candidates))
		for _, cand := range res.Candidates {
			if cand.Index >= 0 && cand.Index < len(rec.Scores) {
				rec.Scores[cand.Index] = cand.Score
			}
		}
	}
	if err := s.cfg.ABLog.Write(rec); err != nil {
		s.log.Error("A/B log", "request_id", c.reqID, "err", err)
	}
}

// remainder is the part of final not yet streamed: final minus the streamed prefix. If what was streamed is
// not a prefix of final (it always is for a correct engine), nothing more is sent.
func remainder(final, streamed string) string {
	if strings.HasPrefix(final, streamed) {
		return final[len(streamed):]
	}
	return ""
}
