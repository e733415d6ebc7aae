package engine

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bestofn/bestofn/sampler"
)

// jobState is where a request is in its life.
type jobState int

const (
	stateQueued  jobState = iota
	statePrefill          // prompt chunks are being evaluated into prefix
	stateDecode           // candidates are sampling
	stateDone
)

// job is one admitted Request. Its fields are owned by the scheduler goroutine until done is closed, then by
// Generate.
type job struct {
	ctx    context.Context
	req    Request
	n      int
	prompt []int32
	maxGen int // most tokens per candidate (MaxTokens, or what fits the context)
	// reserve is the request's worst-case KV blocks, held from admission to completion.
	reserve int

	state     jobState
	prefix    seqID // the prompt's sequence while prefilling; becomes candidate 0's
	prefilled int   // prompt tokens evaluated so far
	chunk     int   // prompt tokens in the current step's batch
	cands     []*cand
	live      int // candidates not finished

	submitted, admitted, prefillEnd, firstToken, end time.Time

	done chan struct{}
	err  error
}

func (j *job) finish(err error) {
	j.err = err
	close(j.done)
}

// result builds the Result of a finished job, candidates in sampling order.
func (j *job) result() *Result {
	res := &Result{
		Candidates:   make([]Candidate, len(j.cands)),
		PromptTokens: len(j.prompt),
		Timings: Timings{
			Queue:   j.admitted.Sub(j.submitted),
			Prefill: j.prefillEnd.Sub(j.admitted),
			Decode:  j.end.Sub(j.prefillEnd),
		},
	}
	if !j.firstToken.IsZero() {
		res.Timings.FirstToken = j.firstToken.Sub(j.admitted)
	}
	for i, c := range j.cands {
		res.Candidates[i] = Candidate{
			Index:        c.index,
			Text:         c.text.String(),
			Tokens:       c.tokens,
			FinishReason: c.finish,
			Logprobs:     c.logprobs,
			CumLogprob:   c.cumLP,
		}
	}
	return res
}

// streams reports whether the job's tokens are streamed as they are produced.
func (j *job) streams() bool {
	return j.req.OnEvent != nil && (j.n == 1 || j.req.StreamCandidates)
}

// cand is one candidate sequence of a job.
type cand struct {
	index    int
	seq      seqID // -1 when it holds no KV blocks
	sampler  *sampler.Sampler
	dec      textDecoder
	stop     *sampler.StopMatcher
	tokens   []int32
	text     strings.Builder
	logprobs []TokenLogprob
	cumLP    float64 // sum of the sampled tokens' logprobs
	pending  int32   // the last sampled token, evaluated at the next step
	finish   FinishReason
	done     bool
}

// rowRef says whose logits a row of the step's output is: a candidate's, or (c == nil) the end of j's prompt.
type rowRef struct {
	j *job
	c *cand
	// id and lp are the token drawn for c from this row's logits and its log-probability (drawRows).
	id int32
	lp float32
}

// scheduler is the one goroutine that owns the backend. Each step it (1) drops cancelled requests, (2) admits
// queued requests while their sequences and worst-case KV blocks fit, (3) builds one batch holding every live
// candidate's pending token plus up to PrefillChunk prompt tokens of prefilling requests (in admission order),
// (4) runs one Forward and (5) samples every candidate from its logits row. A request whose prompt ends in this
// step forks its prompt sequence N-1 times and samples its N first tokens from the same logits row.
type scheduler struct {
	e        *Engine
	active   []*job
	b        batch
	rows     []rowRef
	logits   []float32 // (MaxActiveSeqs, vocab): one row per live candidate or prompt end
	vocab    int
	slots    int   // sequences held by active jobs (N for each prefilling job, live candidates otherwise)
	drawIdx  []int // drawRows' rows to draw, kept to avoid allocating per step
	reserved int   // worst-case KV blocks of active jobs
}

func newScheduler(e *Engine) (*scheduler, error) {
	v := e.be.vocabSize()
	if v <= 0 {
		return nil, fmt.Errorf("engine: vocabulary size %d", v)
	}
	rows := e.cfg.MaxActiveSeqs
	return &scheduler{
		e:      e,
		vocab:  v,
		logits: make([]float32, rows*v),
		rows:   make([]rowRef, 0, rows),
		b: batch{
			tokens: make([]int32, 0, rows+e.cfg.PrefillChunk),
			seqs:   make([]seqID, 0, rows+e.cfg.PrefillChunk),
			logits: make([]bool, 0, rows+e.cfg.PrefillChunk),
		},
	}, nil
}

func (s *scheduler) run() {
	e := s.e
	defer close(e.done)
	for {
		select {
		case <-e.quit:
			s.failAll(ErrClosed)
			s.publish()
			return
		default:
		}
		s.reapCancelled()
		s.sweep()
		s.admit()
		if len(s.active) == 0 {
			s.publish()
			select {
			case <-e.wake:
			case <-e.quit:
			}
			continue
		}
		s.step()
		s.sweep()
		s.publish()
	}
}

// admit moves queued jobs into the batch, FIFO, while their sequences and worst-case KV blocks fit.
func (s *scheduler) admit() {
	e := s.e
	total := e.blockTotal
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.queue) > 0 {
		j := e.queue[0]
		if s.slots+j.n > e.cfg.MaxActiveSeqs || s.reserved+j.reserve > total {
			return
		}
		copy(e.queue, e.queue[1:])
		e.queue[len(e.queue)-1] = nil
		e.queue = e.queue[:len(e.queue)-1]
		j.admitted = time.Now()
		seq, err := e.be.newSeq()
		if err != nil {
			j.finish(fmt.Errorf("engine: new sequence: %w", err))
			continue
		}
		j.prefix = seq
		j.state = statePrefill
		j.live = j.n
		s.slots += j.n
		s.reserved += j.reserve
		s.active = append(s.active, j)
	}
}

// reapCancelled ends the jobs whose context is done, freeing their sequences.
func (s *scheduler) reapCancelled() {
	for _, j := range s.active {
		if j.state != stateDone && j.ctx.Err() != nil {
			s.e.cancelled.Add(1)
			s.fail(j, fmt.Errorf("engine: request cancelled: %w", j.ctx.Err()))
		}
	}
}

// step runs one Forward over all live candidates and the next prompt chunks.
func (s *scheduler) step() {
	e := s.e
	s.b.reset()
	s.rows = s.rows[:0]
	budget := e.cfg.PrefillChunk
	var prefillToks, decodeToks int
	for _, j := range s.active {
		switch j.state {
		case statePrefill:
			j.chunk = min(budget, len(j.prompt)-j.prefilled)
			if j.chunk == 0 {
				continue
			}
			budget -= j.chunk
			end := j.prefilled + j.chunk
			last := end == len(j.prompt)
			for i := j.prefilled; i < end; i++ {
				s.b.add(j.prompt[i], j.prefix, last && i == end-1)
			}
			if last {
				s.rows = append(s.rows, rowRef{j: j})
			}
			prefillToks += j.chunk
		case stateDecode:
			for _, c := range j.cands {
				if !c.done {
					s.b.add(c.pending, c.seq, true)
					s.rows = append(s.rows, rowRef{j: j, c: c})
					decodeToks++
				}
			}
		}
	}
	if len(s.b.tokens) == 0 {
		return
	}
	if err := e.be.forward(&s.b, s.logits[:len(s.rows)*s.vocab]); err != nil {
		err = fmt.Errorf("engine: forward: %w", err)
		for _, j := range s.active {
			if (j.state == statePrefill && j.chunk > 0) || j.state == stateDecode {
				s.fail(j, err)
			}
		}
		return
	}
	e.steps.Add(1)
	e.prefillToks.Add(uint64(prefillToks))
	e.decodeToks.Add(uint64(decodeToks))
	for _, j := range s.active {
		if j.state == statePrefill {
			j.prefilled += j.chunk
			j.chunk = 0
		}
	}
	s.drawRows()
	for r, ref := range s.rows {
		row := s.logits[r*s.vocab : (r+1)*s.vocab]
		if ref.c == nil {
			s.startDecode(ref.j, row)
		} else if !ref.c.done {
			s.accept(ref.j, ref.c, ref.id, ref.lp)
		}
	}
}

// parallelDrawValues is the number of logits (rows x vocabulary) from which drawRows samples the rows on
// several goroutines: below it (small vocabularies) starting them costs more than the draws.
const parallelDrawValues = 1 << 16

// drawRows samples each live candidate's next token from its row of logits (rowRef.id, rowRef.lp). Every
// candidate has its own sampler (state and random stream), so the draws are independent and give the same
// tokens in any order; with a large vocabulary (a draw takes about half a millisecond for 32,000 tokens)
// they run on up to GOMAXPROCS goroutines, while the kernel workers are idle between forward passes, so a
// best-of-5 step does not pay for five draws one after another.
func (s *scheduler) drawRows() {
	idx := s.drawIdx[:0]
	for r, ref := range s.rows {
		if ref.c != nil && !ref.c.done {
			idx = append(idx, r)
		}
	}
	s.drawIdx = idx
	workers := min(runtime.GOMAXPROCS(0), len(idx))
	if workers < 2 || len(idx)*s.vocab < parallelDrawValues {
		for _, r := range idx {
			s.draw(r)
		}
		return
	}
	s.drawParallel(idx, workers)
}

// drawParallel draws rows idx on workers goroutines (the caller's among them). It is a function of its own so
// that the variables its goroutines capture are not moved to the heap on drawRows' sequential path.
func (s *scheduler) drawParallel(idx []int, workers int) {
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() {
			for i := w; i < len(idx); i += workers {
				s.draw(idx[i])
			}
		})
	}
	for i := 0; i < len(idx); i += workers {
		s.draw(idx[i])
	}
	wg.Wait()
}

// draw samples row r's candidate from its logits into s.rows[r].
func (s *scheduler) draw(r int) {
	ref := &s.rows[r]
	ref.id, ref.lp = ref.c.sampler.Sample(s.logits[r*s.vocab : (r+1)*s.vocab])
}

// startDecode gives the prompt's sequence to candidate 0, forks it for the others (sharing the prompt's KV
// blocks) and samples each candidate's first token from the prompt's last logits.
func (s *scheduler) startDecode(j *job, row []float32) {
	j.prefillEnd = time.Now()
	j.cands[0].seq = j.prefix
	j.prefix = -1
	for _, c := range j.cands[1:] {
		seq, err := s.e.be.fork(j.cands[0].seq)
		if err != nil {
			j.state = stateDecode
			s.fail(j, fmt.Errorf("engine: fork: %w", err))
			return
		}
		c.seq = seq
	}
	j.state = stateDecode
	for _, c := range j.cands {
		s.sample(j, c, row)
	}
}

// sample draws candidate c's next token from row and applies the stop conditions.
func (s *scheduler) sample(j *job, c *cand, row []float32) {
	id, lp := c.sampler.Sample(row)
	s.accept(j, c, id, lp)
}

// accept appends token id (drawn with log-probability lp) to candidate c: the sampler's penalties, logprobs,
// streamed text, stop strings and the end of the candidate.
func (s *scheduler) accept(j *job, c *cand, id int32, lp float32) {
	c.sampler.Accept(id)
	c.tokens = append(c.tokens, id)
	c.cumLP += float64(lp)
	if j.firstToken.IsZero() {
		j.firstToken = time.Now()
	}
	if j.req.Logprobs {
		s.recordLogprob(c, id, lp)
	}
	if s.e.voc.isEOG(id) {
		s.endCand(j, c, FinishStop, true)
		return
	}
	emit, stopped := c.stop.Feed(c.dec.Next(id))
	s.emit(j, c, emit)
	switch {
	case stopped:
		s.endCand(j, c, FinishStop, false)
	case len(c.tokens) >= j.maxGen:
		s.endCand(j, c, FinishLength, true)
	default:
		c.pending = id
	}
}

// recordLogprob appends the chosen token's log-probability and the sampler's top alternatives.
func (s *scheduler) recordLogprob(c *cand, id int32, lp float32) {
	tl := TokenLogprob{Token: id, Text: s.e.voc.tokenPiece(id), Logprob: lp}
	if top := c.sampler.TopLogprobs(); len(top) > 0 {
		tl.Top = make([]TokenLogprob, len(top))
		for i, t := range top {
			tl.Top[i] = TokenLogprob{Token: t.ID, Text: s.e.voc.tokenPiece(t.ID), Logprob: t.Logprob}
		}
	}
	c.logprobs = append(c.logprobs, tl)
}

func (s *scheduler) emit(j *job, c *cand, text string) {
	if text == "" {
		return
	}
	c.text.WriteString(text)
	if j.streams() {
		j.req.OnEvent(Event{Candidate: c.index, Text: text})
	}
}

// endCand finishes one candidate: it flushes held-back text (unless a stop string ended it), frees its KV
// sequence and completes the job when it was the last.
func (s *scheduler) endCand(j *job, c *cand, reason FinishReason, flush bool) {
	if flush {
		emit, stopped := c.stop.Feed(c.dec.Flush())
		if !stopped {
			emit += c.stop.Flush()
		}
		s.emit(j, c, emit)
	}
	c.done = true
	c.finish = reason
	s.release(c)
	j.live--
	s.slots--
	if j.streams() {
		j.req.OnEvent(Event{Candidate: c.index, Done: true, FinishReason: reason})
	}
	if j.live == 0 {
		j.end = time.Now()
		s.complete(j, nil)
	}
}

func (s *scheduler) release(c *cand) {
	if c.seq >= 0 {
		s.e.be.free(c.seq)
		c.seq = -1
	}
}

// fail ends a job with err, freeing all its sequences.
func (s *scheduler) fail(j *job, err error) {
	if j.state == stateDone {
		return
	}
	if j.prefix >= 0 && j.state == statePrefill {
		s.e.be.free(j.prefix)
		j.prefix = -1
	}
	for _, c := range j.cands {
		if !c.done {
			c.done = true
			c.finish = FinishCancelled
			s.release(c)
		}
	}
	s.slots -= j.live
	j.live = 0
	s.complete(j, err)
}

func (s *scheduler) complete(j *job, err error) {
	j.state = stateDone
	s.reserved -= j.reserve
	s.e.requests.Add(1)
	j.finish(err)
}

func (s *scheduler) failAll(err error) {
	for _, j := range s.active {
		s.fail(j, err)
	}
	s.active = s.active[:0]
}

// sweep drops finished jobs from the active list, keeping admission order.
func (s *scheduler) sweep() {
	k := 0
	for _, j := range s.active {
		if j.state != stateDone {
			s.active[k] = j
			k++
		}
	}
	clear(s.active[k:])
	s.active = s.active[:k]
}

func (s *scheduler) publish() {
	e := s.e
	used, total, _ := e.be.blocks()
	e.activeSeqs.Store(int64(s.slots))
	e.kvUsed.Store(int64(used))
	e.kvTotal.Store(int64(total))
	e.kvReserved.Store(int64(s.reserved))
	e.activeReqs.Store(int64(len(s.active))) // last: Stats loads it first, so an idle engine shows fresh KV figures
}
