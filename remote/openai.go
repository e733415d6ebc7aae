package remote

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/bestofn/bestofn/engine"
)

// openaiProtocol speaks the OpenAI API through openai-go: streamed /chat/completions for chat requests and
// /completions for prompts, with openai-go's retries off (a gateway answers or fails within the client's
// deadline) and without its environment defaults (OPENAI_API_KEY and OPENAI_BASE_URL are not read).
type openaiProtocol struct {
	chat  openai.ChatCompletionService
	compl openai.CompletionService
	model string
}

func newOpenAIProtocol(cfg Config, hc *http.Client) *openaiProtocol {
	opts := []option.RequestOption{option.WithBaseURL(cfg.URL), option.WithHTTPClient(hc), option.WithMaxRetries(0)}
	return &openaiProtocol{chat: openai.NewChatCompletionService(opts...), compl: openai.NewCompletionService(opts...),
		model: cfg.Model}
}

func (p *openaiProtocol) hasN() bool { return true }

// samplingFields are the sampling parameters the OpenAI API lacks, as the engines that accept them spell them
// (vLLM: top_k, min_p, repetition_penalty; llama.cpp and bestofn: top_k, min_p, repeat_penalty,
// repeat_last_n), and JSON mode. Engines ignore fields they do not know; unset ones are not sent.
func samplingFields(req *engine.Request) []option.RequestOption {
	sp := req.Sampling
	var ro []option.RequestOption
	if sp.TopK > 0 {
		ro = append(ro, option.WithJSONSet("top_k", sp.TopK))
	}
	if sp.MinP > 0 {
		ro = append(ro, option.WithJSONSet("min_p", sp.MinP))
	}
	if sp.RepeatPenalty > 0 && sp.RepeatPenalty != 1 {
		last := sp.RepeatLastN
		if last == 0 {
			last = 64
		}
		ro = append(ro, option.WithJSONSet("repetition_penalty", sp.RepeatPenalty),
			option.WithJSONSet("repeat_penalty", sp.RepeatPenalty), option.WithJSONSet("repeat_last_n", last))
	}
	if req.Sampling.JSON {
		// JSON mode as OpenAI spells it (vLLM, llama.cpp's server and bestofn accept it).
		ro = append(ro, option.WithJSONSet("response_format", map[string]string{"type": "json_object"}))
	}
	if len(sp.LogitBias) > 0 {
		// openai-go types logit_bias as integers; engines take floats.
		bias := make(map[string]float32, len(sp.LogitBias))
		for id, b := range sp.LogitBias {
			bias[strconv.Itoa(int(id))] = b
		}
		ro = append(ro, option.WithJSONSet("logit_bias", bias))
	}
	return ro
}

func (p *openaiProtocol) stream(ctx context.Context, q *query, r *reply, piece func(int, string)) error {
	req := q.req
	sp := req.Sampling
	ro := samplingFields(req)
	if req.Messages != nil {
		return p.streamChat(ctx, q, r, piece, ro)
	}
	params := openai.CompletionNewParams{
		Model:         openai.CompletionNewParamsModel(p.model),
		Prompt:        openai.CompletionNewParamsPromptUnion{OfString: openai.String(promptText(req))},
		Temperature:   openai.Float(float64(sp.Temperature)),
		TopP:          openai.Float(topP(sp.TopP)),
		Seed:          openai.Int(seedOf(q.seed)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if q.n > 1 {
		params.N = openai.Int(int64(q.n))
	}
	if m := maxTokens(req); m > 0 {
		params.MaxTokens = openai.Int(int64(m))
	}
	if len(req.Stop) > 0 {
		params.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: req.Stop}
	}
	if sp.PresencePenalty != 0 {
		params.PresencePenalty = openai.Float(float64(sp.PresencePenalty))
	}
	if sp.FrequencyPenalty != 0 {
		params.FrequencyPenalty = openai.Float(float64(sp.FrequencyPenalty))
	}
	if q.logprobs {
		params.Logprobs = openai.Int(int64(req.TopLogprobs))
	}
	s := p.compl.NewStreaming(ctx, params, ro...)
	defer s.Close()
	for s.Next() {
		chunk := s.Current()
		if chunk.JSON.Usage.Valid() {
			r.promptTokens, r.genTokens = int(chunk.Usage.PromptTokens), int(chunk.Usage.CompletionTokens)
		}
		for _, ch := range chunk.Choices {
			c := r.choice(int(ch.Index))
			if ch.Text != "" {
				if r.firstPiece.IsZero() {
					r.firstPiece = time.Now()
				}
				c.text.WriteString(ch.Text)
				c.pieces++
				piece(int(ch.Index), ch.Text)
			}
			if lp := ch.Logprobs; len(lp.Tokens) > 0 {
				c.hasLogprobs = true
				for k, tok := range lp.Tokens {
					t := engine.TokenLogprob{Text: tok}
					if k < len(lp.TokenLogprobs) {
						t.Logprob = float32(lp.TokenLogprobs[k])
					}
					if k < len(lp.TopLogprobs) {
						t.Top = topFromMap(lp.TopLogprobs[k])
					}
					c.logprobs = append(c.logprobs, t)
				}
			}
			if ch.FinishReason != "" {
				c.finish = string(ch.FinishReason)
			}
		}
	}
	return streamError(s.Err())
}

func (p *openaiProtocol) streamChat(ctx context.Context, q *query, r *reply, piece func(int, string), ro []option.RequestOption) error {
	req := q.req
	sp := req.Sampling
	params := openai.ChatCompletionNewParams{
		Model:         p.model,
		Temperature:   openai.Float(float64(sp.Temperature)),
		TopP:          openai.Float(topP(sp.TopP)),
		Seed:          openai.Int(seedOf(q.seed)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case "assistant":
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		}
	}
	if q.n > 1 {
		params.N = openai.Int(int64(q.n))
	}
	if m := maxTokens(req); m > 0 {
		params.MaxTokens = openai.Int(int64(m))
	}
	if len(req.Stop) > 0 {
		params.Stop = openai.ChatCompletionNewParamsStopUnion{OfStringArray: req.Stop}
	}
	if sp.PresencePenalty != 0 {
		params.PresencePenalty = openai.Float(float64(sp.PresencePenalty))
	}
	if sp.FrequencyPenalty != 0 {
		params.FrequencyPenalty = openai.Float(float64(sp.FrequencyPenalty))
	}
	if q.logprobs {
		params.Logprobs = openai.Bool(true)
		if req.TopLogprobs > 0 {
			params.TopLogprobs = openai.Int(int64(req.TopLogprobs))
		}
	}
	s := p.chat.NewStreaming(ctx, params, ro...)
	defer s.Close()
	for s.Next() {
		chunk := s.Current()
		if chunk.JSON.Usage.Valid() {
			r.promptTokens, r.genTokens = int(chunk.Usage.PromptTokens), int(chunk.Usage.CompletionTokens)
		}
		for _, ch := range chunk.Choices {
			c := r.choice(int(ch.Index))
			if text := ch.Delta.Content; text != "" {
				if r.firstPiece.IsZero() {
					r.firstPiece = time.Now()
				}
				c.text.WriteString(text)
				c.pieces++
				piece(int(ch.Index), text)
			}
			if lps := ch.Logprobs.Content; len(lps) > 0 {
				c.hasLogprobs = true
				for _, lp := range lps {
					t := engine.TokenLogprob{Text: lp.Token, Logprob: float32(lp.Logprob)}
					for _, top := range lp.TopLogprobs {
						t.Top = append(t.Top, engine.TokenLogprob{Text: top.Token, Logprob: float32(top.Logprob)})
					}
					c.logprobs = append(c.logprobs, t)
				}
			}
			if ch.FinishReason != "" {
				c.finish = ch.FinishReason
			}
		}
	}
	return streamError(s.Err())
}

// streamError classifies what ended an OpenAI stream early: an HTTP error status, an error event, JSON that is
// not a chunk, or a broken connection.
func streamError(err error) error {
	if err == nil {
		return nil
	}
	var oe *openai.Error
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &oe):
		return httpFailure(oe.StatusCode, oe.Message, err)
	case errors.As(err, &syn), errors.As(err, &typ):
		return malformed("a stream event is not a JSON chunk", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), isConnectFailure(err):
		return err
	}
	if msg := err.Error(); len(msg) > 31 && msg[:31] == "received error while streaming:" {
		return &failure{msg: "the backend failed mid-stream: " + truncate(msg[32:], 300), err: err}
	}
	return incomplete(err)
}

// topP is top_p as sent: the engine's 0 (off) is 1.
func topP(v float32) float64 {
	if v <= 0 {
		return 1
	}
	return float64(v)
}

// topFromMap turns a legacy completion's top_logprobs map into alternatives, most likely first.
func topFromMap(m map[string]float64) []engine.TokenLogprob {
	out := make([]engine.TokenLogprob, 0, len(m))
	for tok, lp := range m {
		out = append(out, engine.TokenLogprob{Text: tok, Logprob: float32(lp)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Logprob != out[j].Logprob {
			return out[i].Logprob > out[j].Logprob
		}
		return out[i].Text < out[j].Text
	})
	return out
}
