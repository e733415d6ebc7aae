package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bestofn/bestofn/sampler"
)

// DefaultMaxN is the default bound of Request.N, the server's of n and best_of too.
const DefaultMaxN = 16

// Config tunes the scheduler. Zero fields take the defaults documented on each.
type Config struct {
	// MaxQueue bounds the requests waiting for admission; beyond it Generate fails at once with ErrQueueFull.
	// 0 means 64.
	MaxQueue int
	// MaxActiveSeqs bounds the sequences decoded together (a best-of-N request holds N). 0 means 16. A request
	// with N > MaxActiveSeqs is rejected with ErrBadRequest.
	MaxActiveSeqs int
	// MaxN bounds Request.N. 0 means DefaultMaxN.
	MaxN int
	// MaxContext bounds prompt plus generated tokens of one request; 0 or more than the model's context length
	// means the model's context length.
	MaxContext int
	// KVTokens is the KV cache budget in tokens (all sequences together); 0 means four times the context length.
	// A request is admitted only when its worst case (prompt once, plus N candidates of their full length) fits
	// next to the worst cases of the requests already running, so the cache never fills up mid-request.
	KVTokens int
	// KVBlockSize is the KV cache page size in tokens; 0 means 16.
	KVBlockSize int
	// PrefillChunk bounds the prompt tokens evaluated per scheduler step; prompt chunks are mixed into the
	// decode batch, so a long prompt delays running requests by at most one chunk per token. 0 means 128.
	PrefillChunk int
	// ScoreTimeout bounds the Scorer call of a reranked request; 0 means 30 s. On timeout the result is
	// Degraded.
	ScoreTimeout time.Duration
}

func (c Config) withDefaults(modelCtx int) Config {
	if c.MaxQueue <= 0 {
		c.MaxQueue = 64
	}
	if c.MaxActiveSeqs <= 0 {
		c.MaxActiveSeqs = 16
	}
	if c.MaxN <= 0 {
		c.MaxN = DefaultMaxN
	}
	if c.MaxContext <= 0 || c.MaxContext > modelCtx {
		c.MaxContext = modelCtx
	}
	if c.KVTokens <= 0 {
		c.KVTokens = 4 * modelCtx
	}
	if c.KVBlockSize <= 0 {
		c.KVBlockSize = 16
	}
	if c.PrefillChunk <= 0 {
		c.PrefillChunk = 128
	}
	if c.ScoreTimeout <= 0 {
		c.ScoreTimeout = DefaultScoreTimeout
	}
	return c
}

// Stats is a snapshot of the engine's load and counters, for metrics.
type Stats struct {
	QueueDepth       int // requests waiting for admission
	ActiveRequests   int // requests prefilling or decoding
	ActiveSeqs       int // candidate sequences decoding
	KVBlocksUsed     int // KV cache blocks holding tokens
	KVBlocksTotal    int
	KVBlocksReserved int // worst-case blocks reserved by admitted requests

	Requests      uint64 // requests completed (any outcome after admission)
	Rejected      uint64 // requests refused with ErrQueueFull
	Cancelled     uint64 // admitted requests whose context was cancelled
	PrefillTokens uint64 // prompt tokens evaluated
	DecodeTokens  uint64 // generated tokens evaluated
	Steps         uint64 // Forward calls
	Degraded      uint64 // reranked requests whose scoring failed
}

// Engine runs best-of-N requests with continuous batching: one scheduler goroutine owns the model and the KV
// cache and decodes all active sequences of all requests together, one Forward per step.
type Engine struct {
	cfg    Config
	be     backend
	voc    vocab
	scorer Scorer

	mu     sync.Mutex
	queue  []*job // waiting for admission, FIFO
	closed bool

	blockTotal, blockSize int // the KV cache's geometry, fixed at New

	jsonOnce  sync.Once
	jsonVocab *sampler.JSONVocab // the vocabulary's token bytes for JSON mode, built by the first such request

	wake chan struct{} // buffered 1: a new job or a cancellation
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the scheduler exits

	// Published by the scheduler for Stats.
	activeReqs, activeSeqs, kvUsed, kvTotal, kvReserved                     atomic.Int64
	requests, rejected, cancelled, prefillToks, decodeToks, steps, degraded atomic.Uint64
}

// newEngine starts an engine on any backend; New wires the real model.
func newEngine(be backend, voc vocab, scorer Scorer, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults(be.contextLen())
	_, total, bs := be.blocks()
	if total <= 0 || bs <= 0 {
		return nil, fmt.Errorf("engine: kv cache of %d blocks of %d tokens", total, bs)
	}
	e := &Engine{
		blockTotal: total,
		blockSize:  bs,
		cfg:        cfg,
		be:         be,
		voc:        voc,
		scorer:     scorer,
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s, err := newScheduler(e)
	if err != nil {
		return nil, err
	}
	go s.run()
	return e, nil
}

// Stats returns a snapshot of the engine's load and counters. Safe for concurrent use.
func (e *Engine) Stats() Stats {
	active := int(e.activeReqs.Load())
	e.mu.Lock()
	q := len(e.queue)
	e.mu.Unlock()
	return Stats{
		QueueDepth:       q,
		ActiveRequests:   active,
		ActiveSeqs:       int(e.activeSeqs.Load()),
		KVBlocksUsed:     int(e.kvUsed.Load()),
		KVBlocksTotal:    int(e.kvTotal.Load()),
		KVBlocksReserved: int(e.kvReserved.Load()),
		Requests:         e.requests.Load(),
		Rejected:         e.rejected.Load(),
		Cancelled:        e.cancelled.Load(),
		PrefillTokens:    e.prefillToks.Load(),
		DecodeTokens:     e.decodeToks.Load(),
		Steps:            e.steps.Load(),
		Degraded:         e.degraded.Load(),
	}
}

// Close stops admission: new and queued requests fail with ErrClosed, running requests stop at the next step
// and fail with ErrClosed, and Close returns when the scheduler has released the model. Safe to call twice.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.done
		return
	}
	e.closed = true
	queued := e.queue
	e.queue = nil
	e.mu.Unlock()
	for _, j := range queued {
		j.finish(ErrClosed)
	}
	close(e.quit)
	<-e.done
}

// Generate runs one request: it waits for admission, prefills the prompt once, samples req.N candidates
// together and ranks them when req.Rerank is set. Errors: *ContextLengthError, ErrBadRequest, ErrTooLarge,
// ErrQueueFull (at once, when the admission queue is full), ErrClosed, or the context's error wrapped when ctx
// is cancelled (the request's sequences leave the batch at the next step and their KV blocks are freed before
// Generate returns; no partial result).
func (e *Engine) Generate(ctx context.Context, req Request) (*Result, error) {
	j, err := e.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := e.enqueue(j); err != nil {
		return nil, err
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if e.dequeue(j) {
			return nil, fmt.Errorf("engine: request cancelled while queued: %w", ctx.Err())
		}
		e.signal() // the scheduler checks cancellations every step; wake it if idle
		<-j.done
	}
	if j.err != nil {
		return nil, j.err
	}
	res := j.result()
	if req.Rerank {
		start := time.Now()
		e.rank(ctx, j, res)
		res.Timings.Scoring = time.Since(start)
	}
	if req.OnEvent != nil && j.n > 1 && !req.StreamCandidates {
		best := res.Candidates[0]
		req.OnEvent(Event{Candidate: best.Index, Text: best.Text, Done: true, FinishReason: best.FinishReason})
	}
	return res, nil
}

// prepare validates and tokenizes a request in the caller's goroutine.
func (e *Engine) prepare(ctx context.Context, req Request) (*job, error) {
	n := req.N
	if n == 0 {
		n = 1
	}
	switch {
	case n < 0 || n > e.cfg.MaxN:
		return nil, fmt.Errorf("%w: n = %d, want 1..%d", ErrBadRequest, req.N, e.cfg.MaxN)
	case n > e.cfg.MaxActiveSeqs:
		return nil, fmt.Errorf("%w: n = %d exceeds the engine's %d active sequences", ErrBadRequest, n, e.cfg.MaxActiveSeqs)
	case req.MaxTokens < 0 || req.DefaultMaxTokens < 0:
		return nil, fmt.Errorf("%w: max tokens %d (default %d) is negative", ErrBadRequest, req.MaxTokens, req.DefaultMaxTokens)
	case req.TopLogprobs < 0 || req.TopLogprobs > 20:
		return nil, fmt.Errorf("%w: top logprobs %d, want 0..20", ErrBadRequest, req.TopLogprobs)
	}
	var prompt []int32
	if req.PromptTokens != nil {
		v := int32(e.be.vocabSize())
		for i, id := range req.PromptTokens {
			if id < 0 || id >= v {
				return nil, fmt.Errorf("%w: prompt token %d at index %d is outside the vocabulary of %d", ErrBadRequest, id, i, v)
			}
		}
		prompt = append([]int32(nil), req.PromptTokens...)
	} else {
		var err error
		parts := req.PromptParts
		if parts == nil {
			parts = []PromptPart{{Text: req.Prompt}}
		}
		if prompt, err = e.voc.encode(parts); err != nil {
			return nil, err
		}
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: empty prompt", ErrBadRequest)
	}
	ctxLen := e.cfg.MaxContext
	p := len(prompt)
	if p >= ctxLen || p+req.MaxTokens > ctxLen {
		return nil, &ContextLengthError{PromptTokens: p, MaxTokens: req.MaxTokens, ContextLen: ctxLen}
	}
	maxGen := req.MaxTokens
	if maxGen == 0 {
		maxGen = min(ctxLen-p, fitTokens(p, n, e.blockSize, e.blockTotal))
		if req.DefaultMaxTokens > 0 {
			maxGen = min(maxGen, req.DefaultMaxTokens)
		}
		if maxGen < 1 {
			return nil, &KVBudgetError{PromptTokens: p, N: n}
		}
	}
	j := &job{
		ctx:       ctx,
		req:       req,
		n:         n,
		prompt:    prompt,
		maxGen:    maxGen,
		submitted: time.Now(),
		done:      make(chan struct{}),
	}
	j.reserve = worstBlocks(p, maxGen, n, e.blockSize)
	if j.reserve > e.blockTotal {
		return nil, &KVBudgetError{PromptTokens: p, MaxTokens: req.MaxTokens, N: n,
			MaxFit: min(ctxLen-p, fitTokens(p, n, e.blockSize, e.blockTotal))}
	}
	var jsonVocab *sampler.JSONVocab
	if req.Sampling.JSON {
		if _, ok := e.voc.(idVocab); ok {
			return nil, fmt.Errorf("%w: JSON mode needs an engine with a tokenizer", ErrBadRequest)
		}
		jsonVocab = e.jsonTable()
	}
	j.cands = make([]*cand, n)
	for i := range j.cands {
		sp := samplerParams(req, uint64(i))
		sp.JSON = jsonVocab
		smp, err := sampler.New(sp, e.be.vocabSize())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		stop, err := sampler.NewStopMatcher(req.Stop)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		j.cands[i] = &cand{index: i, seq: -1, sampler: smp, dec: e.voc.newDecoder(prompt), stop: stop}
	}
	return j, nil
}

// jsonTable returns the token bytes JSON mode needs, built once from the vocabulary.
func (e *Engine) jsonTable() *sampler.JSONVocab {
	e.jsonOnce.Do(func() {
		pieces := make([]string, e.be.vocabSize())
		for id := range pieces {
			pieces[id] = e.voc.tokenPiece(int32(id))
		}
		e.jsonVocab = sampler.NewJSONVocab(pieces, e.voc.isEOG)
	})
	return e.jsonVocab
}

// worstBlocks is the most KV blocks a request can hold: the prompt's blocks once, plus for each candidate the
// blocks past the shared full prompt blocks up to its maximum length (the last generated token is never
// evaluated, so a candidate holds at most prompt+maxGen-1 positions).
func worstBlocks(prompt, maxGen, n, bs int) int {
	shared := prompt / bs
	own := ceilDiv(prompt+maxGen-1, bs) - shared
	return ceilDiv(prompt, bs) + n*own
}

// Validate checks sp as the engine will when it builds a request's samplers, for a vocabulary of vocabSize
// tokens (0: the token ids of LogitBias are not checked); errors wrap *sampler.ParamError, which names the
// parameter. A server calls it to refuse a request before it is queued.
func (sp SamplingParams) Validate(vocabSize int) error {
	p := sp.sampler(0)
	if vocabSize <= 0 {
		return p.Validate()
	}
	return p.ValidateFor(vocabSize)
}

// samplerParams converts a request's sampling parameters for candidate i (seed Seed+i).
func samplerParams(req Request, i uint64) sampler.Params {
	p := req.Sampling.sampler(i)
	if req.Logprobs {
		p.TopLogprobs = req.TopLogprobs
	}
	return p
}

func (sp SamplingParams) sampler(i uint64) sampler.Params {
	return sampler.Params{
		Temperature:      sp.Temperature,
		TopK:             sp.TopK,
		TopP:             sp.TopP,
		MinP:             sp.MinP,
		RepeatPenalty:    sp.RepeatPenalty,
		RepeatLastN:      sp.RepeatLastN,
		PresencePenalty:  sp.PresencePenalty,
		FrequencyPenalty: sp.FrequencyPenalty,
		LogitBias:        sp.LogitBias,
		Seed:             sp.Seed + i,
	}
}

// fitTokens is the largest maxGen whose worstBlocks fits in total blocks (inverse of worstBlocks).
func fitTokens(prompt, n, bs, total int) int {
	free := total - ceilDiv(prompt, bs)
	if free < n {
		return 0
	}
	k := prompt/bs + free/n // most blocks a candidate's positions may span
	return k*bs - prompt + 1
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (e *Engine) enqueue(j *job) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if len(e.queue) >= e.cfg.MaxQueue {
		e.mu.Unlock()
		e.rejected.Add(1)
		return ErrQueueFull
	}
	e.queue = append(e.queue, j)
	e.mu.Unlock()
	e.signal()
	return nil
}

// dequeue removes a job still waiting for admission; false if the scheduler already took it.
func (e *Engine) dequeue(j *job) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, q := range e.queue {
		if q == j {
			copy(e.queue[i:], e.queue[i+1:])
			e.queue[len(e.queue)-1] = nil
			e.queue = e.queue[:len(e.queue)-1]
			return true
		}
	}
	return false
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// rank scores the candidates with one Scorer call and sorts them best first (Rank); on failure it marks res
// Degraded and keeps the sampling order.
func (e *Engine) rank(ctx context.Context, j *job, res *Result) {
	scorer := j.req.Scorer
	if scorer == nil {
		scorer = e.scorer
	}
	if reason := Rank(ctx, scorer, j.req.RewardText(), res.Candidates, e.cfg.ScoreTimeout); reason != "" {
		res.Degraded = true
		res.DegradedReason = reason
		e.degraded.Add(1)
	}
}
