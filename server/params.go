package server

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// params are a request's generation options as either API states them, before validation. nil means unset.
// Both APIs fill one, and toEngine converts it, once, into a typed engine.Request.
type params struct {
	temperature, topP, minP, repeatPenalty *float64
	presence, frequency                    *float64
	topK, repeatLastN                      *int
	seed                                   *int64 // negative: server-chosen (Ollama's -1)
	maxTokens                              *int   // nil: as many as fit, at most Limits.MaxTokens
	stop                                   []string
	logitBias                              map[string]float64
	n, bestOf                              *int
	rerank                                 string
	logprobs                               bool
	topLogprobs                            int

	// names of the fields on the wire, for error messages.
	maxTokensName string
}

func checkRange(name string, v *float64, lo, hi float64) error {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || *v < lo || *v > hi {
		return badParam(name, "%s must be in [%g, %g], got %g", name, lo, hi, *v)
	}
	return nil
}

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

// toEngine validates p against the server's limits and m's capabilities. def holds the API's defaults for
// unset sampling fields (OpenAI and Ollama differ).
func (s *Server) toEngine(m *Model, p params, def engine.SamplingParams) (plan, error) {
	for _, c := range []struct {
		name   string
		v      *float64
		lo, hi float64
	}{
		{"temperature", p.temperature, 0, 2},
		{"top_p", p.topP, 0, 1},
		{"min_p", p.minP, 0, 1},
		{"repeat_penalty", p.repeatPenalty, 0, 10},
		{"presence_penalty", p.presence, -2, 2},
		{"frequency_penalty", p.frequency, -2, 2},
	} {
		if err := checkRange(c.name, c.v, c.lo, c.hi); err != nil {
			return plan{}, err
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
	}
	if p.topK != nil {
		if *p.topK < 0 {
			return plan{}, badParam("top_k", "top_k must be >= 0, got %d", *p.topK)
		}
		sp.TopK = *p.topK
	}
	if p.repeatLastN != nil {
		if *p.repeatLastN < -1 || *p.repeatLastN > 1<<16 {
			return plan{}, badParam("repeat_last_n", "repeat_last_n must be in [-1, 65536], got %d", *p.repeatLastN)
		}
		sp.RepeatLastN = *p.repeatLastN
	}
	if len(p.logitBias) > 1024 {
		return plan{}, badParam("logit_bias", "logit_bias has %d entries; at most 1024", len(p.logitBias))
	}
	if len(p.logitBias) > 0 {
		sp.LogitBias = make(map[int32]float32, len(p.logitBias))
		for k, v := range p.logitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 {
				return plan{}, badParam("logit_bias", "logit_bias key %q is not a token id", k)
			}
			if math.IsNaN(v) || v < -100 || v > 100 {
				return plan{}, badParam("logit_bias", "logit_bias value for token %s must be in [-100, 100], got %g", k, v)
			}
			sp.LogitBias[int32(id)] = float32(v)
		}
	}
	if p.seed != nil && *p.seed >= 0 {
		sp.Seed = uint64(*p.seed)
	} else {
		sp.Seed = s.nextSeed()
	}

	maxTokens := 0 // as many as fit, at most the server's limit (DefaultMaxTokens)
	if p.maxTokens != nil {
		name := p.maxTokensName
		if name == "" {
			name = "max_tokens"
		}
		if *p.maxTokens < 1 {
			return plan{}, badParam(name, "%s must be >= 1, got %d", name, *p.maxTokens)
		}
		if s.limits.MaxTokens > 0 && *p.maxTokens > s.limits.MaxTokens {
			return plan{}, badParam(name, "%s must be <= %d, got %d", name, s.limits.MaxTokens, *p.maxTokens)
		}
		maxTokens = *p.maxTokens
	}

	if len(p.stop) > s.limits.MaxStop {
		return plan{}, badParam("stop", "at most %d stop strings, got %d", s.limits.MaxStop, len(p.stop))
	}
	for _, st := range p.stop {
		if st == "" {
			return plan{}, badParam("stop", "stop strings must not be empty")
		}
	}

	n := 1
	if p.n != nil {
		n = *p.n
		if n < 1 || n > s.limits.MaxN {
			return plan{}, badParam("n", "n must be in [1, %d], got %d", s.limits.MaxN, n)
		}
	}
	bestOf := max(m.N, n)
	if p.bestOf != nil {
		bestOf = *p.bestOf
		if bestOf < 1 || bestOf > s.limits.MaxN {
			return plan{}, badParam("best_of", "best_of must be in [1, %d], got %d", s.limits.MaxN, bestOf)
		}
		if bestOf < n {
			return plan{}, badParam("best_of", "best_of (%d) must be >= n (%d)", bestOf, n)
		}
	}
	rerank := m.Rerank
	switch p.rerank {
	case "":
	case api.RerankReward:
		if !m.CanRerank {
			return plan{}, badParam("rerank", "model %q has no reward model; rerank must be %q", m.Name, api.RerankNone)
		}
		rerank = true
	case api.RerankNone:
		rerank = false
	default:
		return plan{}, badParam("rerank", "rerank must be %q or %q, got %q", api.RerankReward, api.RerankNone, p.rerank)
	}
	if p.topLogprobs < 0 || p.topLogprobs > 20 {
		return plan{}, badParam("top_logprobs", "top_logprobs must be in [0, 20], got %d", p.topLogprobs)
	}
	return plan{
		req: engine.Request{
			N:                bestOf,
			Rerank:           rerank,
			Sampling:         sp,
			MaxTokens:        maxTokens,
			DefaultMaxTokens: s.limits.MaxTokens,
			Stop:             p.stop,
			Logprobs:         p.logprobs || p.topLogprobs > 0,
			TopLogprobs:      p.topLogprobs,
		},
		nChoices: n,
	}, nil
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

// render applies m's template; the prompt comes in parts (see Template).
func render(m *Model, msgs []Message) ([]engine.PromptPart, error) {
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
