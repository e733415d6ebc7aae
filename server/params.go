package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/sampler"
)

// params are a request's generation options as either API states them, before validation. nil means unset.
// Both APIs fill one, and toEngine converts it, once, into a typed engine.Request.
type params struct {
	temperature, topP, minP, repeatPenalty *float64
	presence, frequency                    *float64
	topK                                   *int
	repeatLastN                            *int   // Ollama's meaning: -1 the whole context, 0 no repetition penalty
	seed                                   *int64 // negative: server-chosen (Ollama's -1)
	maxTokens                              *int   // nil: as many as fit, at most Limits.MaxTokens
	stop                                   []string
	logitBias                              map[string]float64
	n, bestOf                              *int
	rerank                                 string
	logprobs                               bool
	topLogprobs                            int
	json                                   bool // JSON mode

	// Names on the wire, for error messages: the prefix of option names ("options." on Ollama's API) and the
	// field that set maxTokens.
	prefix        string
	maxTokensName string
}

// API ranges of the sampling options (OpenAI's documented ones); the sampler's own limits are checked after
// (engine.SamplingParams.Validate), so nothing the server accepts fails later.
var apiRanges = []struct {
	name   string
	field  func(*params) *float64
	lo, hi float64
}{
	{"temperature", func(p *params) *float64 { return p.temperature }, 0, 2},
	{"top_p", func(p *params) *float64 { return p.topP }, 0, 1},
	{"repeat_penalty", func(p *params) *float64 { return p.repeatPenalty }, 0, 10},
	{"presence_penalty", func(p *params) *float64 { return p.presence }, -2, 2},
	{"frequency_penalty", func(p *params) *float64 { return p.frequency }, -2, 2},
}

// maxLogitBias bounds logit_bias values, as OpenAI does.
const maxLogitBias = 100

func f32(v *float64, def float32) float32 {
	if v == nil {
		return def
	}
	return float32(*v)
}

// plan is a validated request: what to ask the engine and how many choices to return.
type plan struct {
	req      engine.Request
	nChoices int
}

// toEngine is the one validation layer: it checks p against the API ranges, the server's limits, m's
// capabilities and the sampler's and engine's own limits (so a request the server accepts never fails
// validation later), and converts it. Every error is a 400 naming the wire field. def holds the API's
// defaults for unset sampling fields (OpenAI and Ollama differ).
func (s *Server) toEngine(m *Model, p params, def engine.SamplingParams) (plan, error) {
	name := func(field string) string { return p.prefix + field }
	for _, r := range apiRanges {
		if v := r.field(&p); v != nil && (math.IsNaN(*v) || *v < r.lo || *v > r.hi) {
			return plan{}, badParam(name(r.name), "%s must be in [%g, %g], got %g", r.name, r.lo, r.hi, *v)
		}
	}
	sp := engine.SamplingParams{
		Temperature:      f32(p.temperature, def.Temperature),
		TopP:             f32(p.topP, def.TopP),
		MinP:             f32(p.minP, def.MinP),
		RepeatPenalty:    f32(p.repeatPenalty, def.RepeatPenalty),
		PresencePenalty:  f32(p.presence, def.PresencePenalty),
		FrequencyPenalty: f32(p.frequency, def.FrequencyPenalty),
		TopK:             def.TopK,
		RepeatLastN:      def.RepeatLastN,
		JSON:             p.json,
	}
	if p.topK != nil {
		sp.TopK = *p.topK
	}
	if p.repeatLastN != nil {
		switch n := *p.repeatLastN; {
		case n == -1: // the whole context
			sp.RepeatLastN = sampler.MaxRepeatLastN
			if c := m.Info.ContextLength; c > 0 && c < sampler.MaxRepeatLastN {
				sp.RepeatLastN = c
			}
		case n == 0: // no repetition penalty
			sp.RepeatPenalty = 1
		default:
			sp.RepeatLastN = n
		}
	}
	if len(p.logitBias) > 0 {
		sp.LogitBias = make(map[int32]float32, len(p.logitBias))
		for k, v := range p.logitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil {
				return plan{}, badParam(name("logit_bias"), "logit_bias key %q is not a token id", k)
			}
			if math.IsNaN(v) || v < -maxLogitBias || v > maxLogitBias {
				return plan{}, badParam(name("logit_bias"), "logit_bias value for token %s must be in [-%d, %d], got %g", k, maxLogitBias, maxLogitBias, v)
			}
			sp.LogitBias[int32(id)] = float32(v)
		}
	}
	if err := sp.Validate(m.Info.VocabSize); err != nil {
		var pe *sampler.ParamError
		if errors.As(err, &pe) {
			return plan{}, badParam(name(pe.Param), "%s", pe.Msg)
		}
		return plan{}, badParam("", "%s", err.Error())
	}
	if p.seed != nil && *p.seed >= 0 {
		sp.Seed = uint64(*p.seed)
	} else {
		sp.Seed = s.nextSeed()
	}

	maxTokens := 0 // as many as fit, at most the server's limit (DefaultMaxTokens)
	if p.maxTokens != nil {
		field := p.maxTokensName
		if *p.maxTokens < 1 {
			return plan{}, badParam(field, "%s must be >= 1, got %d", field, *p.maxTokens)
		}
		if s.limits.MaxTokens > 0 && *p.maxTokens > s.limits.MaxTokens {
			return plan{}, badParam(field, "%s must be <= %d, got %d", field, s.limits.MaxTokens, *p.maxTokens)
		}
		maxTokens = *p.maxTokens
	}

	if err := sampler.CheckStops(p.stop); err != nil {
		return plan{}, badParam(name("stop"), "%s", err.(*sampler.ParamError).Msg)
	}

	n := 1
	if p.n != nil {
		n = *p.n
		if n < 1 || n > s.limits.MaxN {
			return plan{}, badParam(name("n"), "n must be in [1, %d], got %d", s.limits.MaxN, n)
		}
	}
	bestOf := max(m.N, n)
	if p.bestOf != nil {
		bestOf = *p.bestOf
		if bestOf < 1 || bestOf > s.limits.MaxN {
			return plan{}, badParam(name("best_of"), "best_of must be in [1, %d], got %d", s.limits.MaxN, bestOf)
		}
		if bestOf < n {
			return plan{}, badParam(name("best_of"), "best_of (%d) must be >= n (%d)", bestOf, n)
		}
	}
	rerank := m.Rerank
	switch p.rerank {
	case "":
	case api.RerankReward:
		if !m.CanRerank {
			return plan{}, badParam(name("rerank"), "model %q has no reward model; rerank must be %q", m.Name, api.RerankNone)
		}
		rerank = true
	case api.RerankNone:
		rerank = false
	default:
		return plan{}, badParam(name("rerank"), "rerank must be %q or %q, got %q", api.RerankReward, api.RerankNone, p.rerank)
	}
	if p.topLogprobs < 0 || p.topLogprobs > sampler.MaxTopLogprobs {
		return plan{}, badParam("top_logprobs", "top_logprobs must be in [0, %d], got %d", sampler.MaxTopLogprobs, p.topLogprobs)
	}
	req := engine.Request{
		N:                bestOf,
		Rerank:           rerank,
		Sampling:         sp,
		MaxTokens:        maxTokens,
		DefaultMaxTokens: s.limits.MaxTokens,
		Stop:             p.stop,
		Logprobs:         p.logprobs,
	}
	if p.logprobs {
		req.TopLogprobs = p.topLogprobs
	}
	return plan{req: req, nChoices: n}, nil
}

// joinParts is the text of a prompt's parts.
func joinParts(parts []engine.PromptPart) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// checkMessages validates chat messages: at least one, each with a role the templates know.
func checkMessages(msgs []Message) error {
	if len(msgs) == 0 {
		return badParam("messages", "messages must not be empty")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return badParam("messages["+strconv.Itoa(i)+"].role",
				"messages[%d].role must be \"system\", \"user\" or \"assistant\", got %q", i, m.Role)
		}
	}
	return nil
}

// lastUser returns the content of the last user message: the instruction the reward model judges.
func lastUser(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	return ""
}

// render applies m's template; the prompt comes in parts (see Template). For a generator that applies its own
// template (ChatTemplater) there is nothing to render: it gets the messages (engine.Request.Messages).
func render(m *Model, msgs []Message) ([]engine.PromptPart, error) {
	if appliesTemplate(m) {
		return nil, nil
	}
	if m.Template == nil {
		return nil, &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "no_template",
			Param: "model", Message: "model " + strconv.Quote(m.Name) + " has no chat template; use the completion endpoint"}
	}
	prompt, err := m.Template.Render(msgs)
	if err != nil {
		return nil, &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_messages",
			Param: "messages", Message: "the chat template rejected the messages: " + err.Error(), Err: err}
	}
	return prompt, nil
}
