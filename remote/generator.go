package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// Generator samples candidates on a remote backend and ranks them like the local engine. It satisfies the
// server's Generator, ChatTemplater and BackendReporter interfaces. Safe for concurrent use.
type Generator struct {
	cfg   Config
	be    *backend
	proto protocol
	log   *slog.Logger
}

// protocol is one API's way of asking the backend for choices.
type protocol interface {
	// stream sends q and fills r as the answer streams in (so a broken stream still leaves the choices that
	// finished); piece receives each new text of a choice, by the choice's index.
	stream(ctx context.Context, q *query, r *reply, piece func(choice int, text string)) error
	// hasN says whether the API can ask for several choices at once.
	hasN() bool
}

// query is one request to the backend: n choices of req, the first seeded seed; logprobs asks for token
// log-probabilities (req.Logprobs, or to rank unranked candidates by likelihood: see Generate).
type query struct {
	req      *engine.Request
	n        int
	seed     uint64
	logprobs bool
}

// reply is what came back for one query.
type reply struct {
	choices      map[int]*choice
	promptTokens int // -1 when the backend reported no usage
	genTokens    int // over all choices; -1 when unknown
	firstPiece   time.Time
	sent         time.Time
}

func newReply() *reply { return &reply{choices: map[int]*choice{}, promptTokens: -1, genTokens: -1} }

func (r *reply) choice(i int) *choice {
	c := r.choices[i]
	if c == nil {
		c = &choice{}
		r.choices[i] = c
	}
	return c
}

// choice is one choice of a reply as it streams in.
type choice struct {
	text        strings.Builder
	finish      string // the backend's finish reason; "" while unfinished
	logprobs    []engine.TokenLogprob
	hasLogprobs bool
	pieces      int
}

// New checks cfg, reads the API key from the environment and builds a Generator. It sends nothing: a backend
// that is down when bestofn starts is found out by the first requests (and reported by /readyz).
func New(cfg Config) (*Generator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	key, err := readKey(cfg.APIKeyEnv)
	if err != nil {
		return nil, err
	}
	if cfg.API == "" {
		cfg.API = APIOpenAI
	}
	if cfg.MaxN == 0 {
		cfg.MaxN = engine.DefaultMaxN
	}
	be, err := newBackend(cfg.Name, "generator", cfg.API, cfg.URL, cfg.Model, key, cfg.MaxInFlight, cfg.MaxWaiting,
		cfg.ConnectTimeout, cfg.HeaderTimeout, cfg.Breaker)
	if err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, be: be, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.Default()
	}
	switch cfg.API {
	case APIOllama:
		if g.proto, err = newOllamaProtocol(cfg, be.hc); err != nil {
			return nil, err
		}
	default:
		g.proto = newOpenAIProtocol(cfg, be.hc)
	}
	mode := cfg.NSupport
	if mode == "" {
		mode = NAuto
	}
	if !g.proto.hasN() {
		mode = NFanout
	}
	be.nSupport.Store(mode)
	return g, nil
}

// Name is the backend's configured name.
func (g *Generator) Name() string { return g.cfg.Name }

// AppliesChatTemplate reports that chat requests go to the backend's chat endpoint as messages (the backend
// renders them with its own template); see server.ChatTemplater.
func (g *Generator) AppliesChatTemplate() bool { return true }

// BackendStatus reports the backend's circuit breaker, requests in flight and how it gets N candidates.
func (g *Generator) BackendStatus() api.BackendStatus { return g.be.status() }

// Generate samples req.N candidates on the backend, candidate i seeded req.Sampling.Seed+i: one request with
// n where the backend honours it, else N requests of one choice. A chat request (req.Messages set) goes to
// the chat endpoint, anything else to the completions endpoint with req's prompt text. With req.Rerank the
// candidates are ranked by req.Scorer (else Config.Scorer) exactly as the local engine ranks (engine.Rank).
//
// Streaming follows the engine: req.OnEvent receives each candidate's text as it arrives for N == 1 or with
// StreamCandidates, otherwise the answer once ranked. When some of N fanned-out candidates fail, the rest are
// ranked and the result is Degraded with the reason; when all fail Generate returns a *engine.BackendError
// (502), when the context ends its error (wrapped; 504 at the server's deadline), and backend 4xx rejections
// and 429s wrap engine.ErrBadRequest and engine.ErrQueueFull.
func (g *Generator) Generate(ctx context.Context, req engine.Request) (*engine.Result, error) {
	n := req.N
	if n == 0 {
		n = 1
	}
	switch {
	case n < 0 || n > g.cfg.MaxN:
		return nil, fmt.Errorf("%w: n = %d, want 1..%d", engine.ErrBadRequest, req.N, g.cfg.MaxN)
	case req.PromptTokens != nil:
		return nil, fmt.Errorf("%w: backend %q takes text prompts, not token ids", engine.ErrBadRequest, g.cfg.Name)
	case req.Messages == nil && req.Prompt == "" && len(req.PromptParts) == 0:
		return nil, fmt.Errorf("%w: empty prompt", engine.ErrBadRequest)
	case req.MaxTokens < 0 || req.DefaultMaxTokens < 0:
		return nil, fmt.Errorf("%w: max tokens %d (default %d) is negative", engine.ErrBadRequest, req.MaxTokens, req.DefaultMaxTokens)
	}
	start := time.Now()
	stream := req.OnEvent != nil && (n == 1 || req.StreamCandidates)
	var emitMu sync.Mutex
	emit := func(ev engine.Event) {
		if stream {
			emitMu.Lock()
			req.OnEvent(ev)
			emitMu.Unlock()
		}
	}

	// Unranked candidates may be ranked by likelihood (the server does for best_of > n): ask for logprobs, so
	// that each candidate has a cumulative log-probability; they are dropped from the result unless asked for.
	logprobs := req.Logprobs || !req.Rerank && n > 1
	results := make([]*reply, n) // the reply holding candidate i
	errs := make([]error, n)
	var queued time.Duration
	mode, _ := g.be.nSupport.Load().(string)
	pending := make([]int, 0, n) // candidates still to ask for one by one
	if mode != NFanout && n > 1 {
		r := newReply()
		q, err := g.be.do(ctx, func(ctx context.Context) error {
			r.sent = time.Now()
			return g.proto.stream(ctx, &query{req: &req, n: n, seed: req.Sampling.Seed, logprobs: logprobs}, r, func(c int, text string) {
				if c < n {
					emit(engine.Event{Candidate: c, Text: text})
				}
			})
		})
		queued = q
		if err != nil && ctx.Err() != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			switch c := r.choices[i]; {
			case c != nil && c.finish != "":
				results[i] = r
			case err != nil:
				errs[i] = err
			case len(r.choices) > 0 && c == nil:
				pending = append(pending, i) // fewer choices than asked: the backend ignores n
			default:
				errs[i] = &engine.BackendError{Backend: g.cfg.Name, Message: incomplete(nil).msg}
			}
		}
		learn := g.cfg.NSupport == "" || g.cfg.NSupport == NAuto
		if len(pending) == 0 && len(r.choices) == n && learn && mode == NAuto {
			g.be.nSupport.Store(NNative)
		}
		if len(pending) > 0 && learn {
			g.be.nSupport.Store(NFanout)
			g.log.Warn("remote: backend ignores n; fanning out one request per candidate from now on",
				"backend", g.cfg.Name, "asked", n, "got", len(r.choices))
		}
		if len(r.choices) == 0 && err == nil {
			err = &engine.BackendError{Backend: g.cfg.Name, Message: "malformed response: the stream held no choices"}
			for i := range errs {
				errs[i] = err
			}
			pending = pending[:0]
		}
	} else {
		for i := 0; i < n; i++ {
			pending = append(pending, i)
		}
	}

	if len(pending) > 0 {
		var wg sync.WaitGroup
		var qmu sync.Mutex
		for _, i := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := newReply()
				q, err := g.be.do(ctx, func(ctx context.Context) error {
					r.sent = time.Now()
					return g.proto.stream(ctx, &query{req: &req, n: 1, seed: req.Sampling.Seed + uint64(i), logprobs: logprobs}, r, func(c int, text string) {
						if c == 0 {
							emit(engine.Event{Candidate: i, Text: text})
						}
					})
				})
				qmu.Lock()
				if queued == 0 || q < queued {
					queued = q
				}
				qmu.Unlock()
				c := r.choices[0]
				switch {
				case err != nil:
					errs[i] = err
				case c == nil || c.finish == "":
					errs[i] = &engine.BackendError{Backend: g.cfg.Name, Message: incomplete(nil).msg}
					if c == nil {
						errs[i] = &engine.BackendError{Backend: g.cfg.Name, Message: "malformed response: the stream held no choices"}
					}
				default:
					// Fanned-out replies hold one choice: move it to its candidate index.
					r.choices = map[int]*choice{i: c}
					results[i] = r
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			for _, err := range errs {
				if err != nil {
					return nil, err
				}
			}
			return nil, fmt.Errorf("remote: backend %q: %w", g.cfg.Name, ctx.Err())
		}
	}

	res := &engine.Result{}
	var failed []error
	var first, last time.Time
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		r := results[i]
		c := r.choices[i]
		cand := engine.Candidate{Index: i, Text: c.text.String(), FinishReason: finishReason(c.finish),
			Logprobs: c.logprobs, CumLogprob: math.NaN(), Rank: 0}
		switch {
		case c.hasLogprobs:
			cand.TokenCount = len(c.logprobs)
			cand.CumLogprob = 0
			for _, lp := range c.logprobs {
				cand.CumLogprob += float64(lp.Logprob)
			}
		case len(r.choices) == 1 && r.genTokens >= 0:
			cand.TokenCount = r.genTokens
		default:
			cand.TokenCount = c.pieces // backends stream one piece per token
		}
		if !req.Logprobs {
			cand.Logprobs = nil
		}
		res.Candidates = append(res.Candidates, cand)
		if r.promptTokens >= 0 && res.PromptTokens == 0 {
			res.PromptTokens = r.promptTokens
		}
		if !r.firstPiece.IsZero() && (first.IsZero() || r.firstPiece.Before(first)) {
			first = r.firstPiece
		}
		if first.IsZero() {
			first = r.sent
		}
		last = time.Now()
	}
	if len(res.Candidates) == 0 {
		return nil, failed[0]
	}
	dispatched := start.Add(queued)
	res.Timings.Queue = queued
	if !first.IsZero() {
		res.Timings.FirstToken = max(first.Sub(dispatched), time.Nanosecond)
		res.Timings.Prefill = res.Timings.FirstToken
		res.Timings.Decode = max(last.Sub(first), 0)
	}
	var reasons []string
	if len(failed) > 0 {
		reasons = append(reasons, fmt.Sprintf("%d of %d candidates failed (%s)", len(failed), n, publicMessage(failed[0])))
		g.log.Warn("remote: candidates failed", "backend", g.cfg.Name, "request_id", req.ID, "failed", len(failed), "of", n, "err", failed[0])
	}
	if req.Rerank {
		scorer := req.Scorer
		if scorer == nil {
			scorer = g.cfg.Scorer
		}
		t := time.Now()
		if reason := engine.Rank(ctx, scorer, req.RewardText(), res.Candidates, g.cfg.ScoreTimeout); reason != "" {
			reasons = append(reasons, reason)
		}
		res.Timings.Scoring = time.Since(t)
	}
	if len(reasons) > 0 {
		res.Degraded, res.DegradedReason = true, strings.Join(reasons, "; ")
	}
	if stream {
		for _, c := range res.Candidates {
			emit(engine.Event{Candidate: c.Index, Done: true, FinishReason: c.FinishReason})
		}
	} else if req.OnEvent != nil {
		best := res.Candidates[0]
		req.OnEvent(engine.Event{Candidate: best.Index, Text: best.Text, Done: true, FinishReason: best.FinishReason})
	}
	return res, nil
}

// publicMessage is the client-safe message of a candidate's error.
func publicMessage(err error) string {
	var be *engine.BackendError
	if errors.As(err, &be) {
		return be.Message
	}
	return err.Error()
}

// finishReason maps a backend's finish reason to the engine's; anything but "length" is a stop.
func finishReason(s string) engine.FinishReason {
	if s == "length" {
		return engine.FinishLength
	}
	return engine.FinishStop
}

// maxTokens is what a request asks the backend to generate at most; 0 leaves it to the backend.
func maxTokens(req *engine.Request) int {
	if req.MaxTokens > 0 {
		return req.MaxTokens
	}
	return req.DefaultMaxTokens
}

// seedOf is candidate seed s as sent: modulo 2^53, the integers every JSON parser reads exactly (Ollama and
// bestofn decode options as float64; llama.cpp then keeps 32 bits of a seed).
func seedOf(s uint64) int64 { return int64(s & (1<<53 - 1)) }

// promptText is the text a completion request continues.
func promptText(req *engine.Request) string {
	if req.Prompt != "" || req.PromptParts == nil {
		return req.Prompt
	}
	var b strings.Builder
	for _, p := range req.PromptParts {
		b.WriteString(p.Text)
	}
	return b.String()
}
