package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Request asks for N sampled candidates of one prompt, optionally ranked by a Scorer.
type Request struct {
	// ID identifies the request in logs; the engine does not interpret it.
	ID string
	// Prompt is the text the generator continues, tokenized as plain text: control-token text in it ("</s>")
	// stays text. A chat prompt comes in PromptParts instead.
	Prompt string
	// PromptParts, when not nil, is the prompt as rendered by a chat template: the parts are tokenized as one
	// text in which control tokens written as text become their ids only inside Special parts (the template's
	// own text), never in the others (message content). Prompt is then not tokenized (it still serves as the
	// reward prompt when RewardPrompt is empty; empty means the parts' text).
	PromptParts []PromptPart
	// PromptTokens, when not nil, is the prompt as token ids (BOS included if wanted); Prompt is then not
	// tokenized (it still serves as the reward prompt when RewardPrompt is empty). Required by an engine made
	// without a tokenizer.
	PromptTokens []int32
	// RewardPrompt is the prompt as the reward model sees it (usually the user's instruction without the chat
	// template). Empty means Prompt.
	RewardPrompt string
	// Messages, when not nil, is the chat conversation the prompt was rendered from. The engine ignores it; a
	// generator that applies its own chat template (a remote chat endpoint) sends the messages instead of a
	// rendered prompt.
	Messages []Message
	// N is the number of candidates to sample; 0 means 1. With N == 1 and Rerank false this is the paper's
	// baseline "B".
	N int
	// Rerank asks the engine to score the candidates with its Scorer and rank them (the paper's "R1").
	Rerank bool
	// Scorer, when not nil, scores this request's candidates instead of the engine's Scorer, so a server can
	// swap reward models while requests that started on the old one finish with it.
	Scorer Scorer
	// Sampling holds the decoding parameters. Candidate i uses seed Sampling.Seed + i.
	Sampling SamplingParams
	// MaxTokens bounds each candidate's length. 0 means as many as fit: at most DefaultMaxTokens (when set),
	// the room the prompt leaves in the context and, for N candidates, what the engine's KV budget holds.
	MaxTokens int
	// DefaultMaxTokens bounds a request with MaxTokens 0 (e.g. a server's default length); 0 means no bound.
	DefaultMaxTokens int
	// Stop lists strings that end a candidate; the stop string itself is not part of the text.
	Stop []string
	// Logprobs asks for the log-probability of each chosen token; TopLogprobs for that many alternatives too.
	Logprobs    bool
	TopLogprobs int
	// OnEvent, when not nil, is called for each streamed piece of text: from the scheduler goroutine while
	// tokens are produced (it must not block for long: the whole batch waits), or from Generate's goroutine for
	// events sent after ranking. With N == 1 the text streams as it is produced. With N > 1 it streams per
	// candidate as produced when StreamCandidates is set (Event.Candidate tells them apart), otherwise the
	// answer (Candidates[0] of the Result) is sent as one event after ranking.
	OnEvent func(Event)
	// StreamCandidates selects per-candidate streaming for N > 1 (see OnEvent).
	StreamCandidates bool
}

// PromptPart is a piece of a prompt; Special says whether control tokens written as text in it are parsed.
type PromptPart struct {
	Text    string
	Special bool
}

// Message is one chat message of Request.Messages; Role is "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// RewardText is the prompt the reward model judges answers against: RewardPrompt, else the prompt's text.
func (r *Request) RewardText() string {
	if r.RewardPrompt != "" {
		return r.RewardPrompt
	}
	return r.promptText()
}

// promptText is the prompt's text: Prompt, else the concatenation of PromptParts.
func (r *Request) promptText() string {
	if r.Prompt != "" || r.PromptParts == nil {
		return r.Prompt
	}
	var b strings.Builder
	for _, p := range r.PromptParts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// SamplingParams are the decoding knobs of one request (see package sampler for their exact meaning).
type SamplingParams struct {
	Temperature      float32 // 0 = greedy
	TopK             int     // 0 = off
	TopP             float32 // 0 or 1 = off
	MinP             float32 // 0 = off
	RepeatPenalty    float32 // 0 or 1 = off
	RepeatLastN      int     // window of RepeatPenalty; 0 = 64
	PresencePenalty  float32
	FrequencyPenalty float32
	LogitBias        map[int32]float32
	Seed             uint64
	// JSON constrains each candidate to one JSON object (OpenAI's response_format json_object, Ollama's
	// format "json"; see sampler.Params.JSON). It needs an engine with a tokenizer.
	JSON bool
}

// Event is one piece of streamed output.
type Event struct {
	// Candidate is the index of the candidate this piece belongs to.
	Candidate int
	// Text is newly decoded text; never a partial UTF-8 sequence, never part of a stop string.
	Text string
	// Done is set on a candidate's last event, with FinishReason.
	Done         bool
	FinishReason FinishReason
}

// FinishReason says why a candidate ended.
type FinishReason string

// Finish reasons.
const (
	FinishStop      FinishReason = "stop"      // an end-of-generation token or a stop string
	FinishLength    FinishReason = "length"    // MaxTokens or the context length
	FinishCancelled FinishReason = "cancelled" // the request's context was cancelled
)

// TokenLogprob is a token with its log-probability under the sampling distribution.
type TokenLogprob struct {
	Token   int32
	Text    string
	Logprob float32
	// Top lists the most likely alternatives at this position, when requested.
	Top []TokenLogprob
}

// Candidate is one sampled answer.
type Candidate struct {
	// Index is the candidate's sampling index: it was sampled with seed Sampling.Seed + Index.
	Index  int
	Text   string
	Tokens []int32
	// TokenCount is the number of generated tokens when Tokens is nil: a remote generator knows how many tokens
	// the backend generated, not their ids. Read both through NumTokens.
	TokenCount   int
	FinishReason FinishReason
	Logprobs     []TokenLogprob
	// CumLogprob is the sum of the log-probabilities of Tokens (as vLLM's cumulative_logprob), whether or not
	// the request asked for logprobs; CumLogprob / len(Tokens) ranks candidates by likelihood. NaN when unknown
	// (a remote backend that sent no logprobs).
	CumLogprob float64
	// Score is the reward model's score; valid only when Scored.
	Score  float32
	Scored bool
	// Rank is 1 for the best candidate; candidates that were not ranked keep their sampling order.
	Rank int
}

// NumTokens is the number of generated tokens: len(Tokens), else TokenCount.
func (c *Candidate) NumTokens() int {
	if c.Tokens != nil {
		return len(c.Tokens)
	}
	return c.TokenCount
}

// Timings are the wall times of a request's stages.
type Timings struct {
	Queue   time.Duration
	Prefill time.Duration
	Decode  time.Duration
	Scoring time.Duration
	// FirstToken is the time from admission to the first generated token.
	FirstToken time.Duration
}

// Result is the outcome of a Request.
type Result struct {
	// Candidates are ranked best first when the request was reranked and scoring succeeded, otherwise in
	// sampling order. Candidates[0] is the answer.
	Candidates   []Candidate
	PromptTokens int
	// Degraded is set when reranking was asked for but the scorer failed or timed out: Candidates[0] is then
	// the best-effort answer (sampling order), and DegradedReason says why.
	Degraded       bool
	DegradedReason string
	Timings        Timings
}

// Errors the server maps to HTTP statuses.
var (
	// ErrQueueFull means the admission queue is full; retry later (429).
	ErrQueueFull = errors.New("engine: admission queue is full")
	// ErrClosed means the engine is shutting down (503).
	ErrClosed = errors.New("engine: shutting down")
	// ErrTooLarge means the request's worst-case KV memory (prompt plus N candidates of MaxTokens) exceeds the
	// engine's whole KV budget, so it can never be admitted (400; ask for fewer candidates or tokens).
	// ErrBadRequest wraps request validation failures (400): N out of range, negative MaxTokens, bad sampling
	// parameters, an empty prompt.
	ErrBadRequest = errors.New("engine: invalid request")
	ErrTooLarge   = errors.New("engine: request needs more KV memory than the engine has")
)

// BackendError is a failure of the backend a generator or scorer forwards to (a remote inference server that is
// down, answers 5xx or malformed responses, or whose circuit breaker is open). A server answers it with 502
// Bad Gateway naming Backend, with Message; Err, the cause, is only logged.
type BackendError struct {
	// Backend is the backend's configured name.
	Backend string
	// Message says what went wrong, without internal detail (it is shown to clients).
	Message string
	Err     error
}

func (e *BackendError) Error() string {
	s := "backend " + strconv.Quote(e.Backend) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *BackendError) Unwrap() error { return e.Err }

// ContextLengthError reports a prompt (plus requested tokens) that does not fit the context (400).
type ContextLengthError struct {
	PromptTokens int
	MaxTokens    int
	ContextLen   int
}

func (e *ContextLengthError) Error() string {
	return "engine: prompt of " + strconv.Itoa(e.PromptTokens) + " tokens does not fit the context of " + strconv.Itoa(e.ContextLen) + " tokens"
}

// KVBudgetError reports a request whose worst case (the prompt plus N candidates of MaxTokens) exceeds the
// engine's whole KV cache, so that it can never be admitted (400). MaxFit is the largest MaxTokens that fits
// for N candidates (0: not one token; ask for fewer candidates). MaxTokens 0 is a request that asked for as
// many as fit. It wraps ErrTooLarge.
type KVBudgetError struct {
	PromptTokens int
	MaxTokens    int
	N            int
	MaxFit       int
}

func (e *KVBudgetError) Error() string {
	return fmt.Sprintf("%v: %d candidates of %d tokens after a prompt of %d; at most %d tokens fit for %d candidates",
		ErrTooLarge, e.N, e.MaxTokens, e.PromptTokens, e.MaxFit, e.N)
}

func (e *KVBudgetError) Unwrap() error { return ErrTooLarge }
