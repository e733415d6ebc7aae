package teacher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

// openaiBackend speaks the OpenAI chat completions API through openai-go, with its own retries off (the Client
// retries) and without openai-go's environment defaults (OPENAI_API_KEY, OPENAI_BASE_URL are not read: the
// Config says everything).
type openaiBackend struct {
	svc   openai.ChatCompletionService
	model string
}

func newOpenAI(cfg Config, key string, hc *http.Client) *openaiBackend {
	opts := []option.RequestOption{option.WithBaseURL(cfg.BaseURL), option.WithHTTPClient(hc), option.WithMaxRetries(0)}
	if key != "" {
		opts = append(opts, option.WithAPIKey(key))
	}
	return &openaiBackend{svc: openai.NewChatCompletionService(opts...), model: cfg.Model}
}

func (b *openaiBackend) send(ctx context.Context, msgs []Message, opts Options) (*Response, error) {
	p := openai.ChatCompletionNewParams{Model: b.model}
	for _, m := range msgs {
		switch m.Role {
		case "system":
			p.Messages = append(p.Messages, openai.SystemMessage(m.Content))
		case "assistant":
			p.Messages = append(p.Messages, openai.AssistantMessage(m.Content))
		case "user":
			p.Messages = append(p.Messages, openai.UserMessage(m.Content))
		default:
			return nil, &Error{Kind: KindPermanent, Message: fmt.Sprintf("message role %q (want system, user or assistant)", m.Role)}
		}
	}
	if opts.Temperature != nil {
		p.Temperature = openai.Float(*opts.Temperature)
	}
	if opts.TopP != nil {
		p.TopP = openai.Float(*opts.TopP)
	}
	if opts.MaxTokens > 0 {
		p.MaxTokens = openai.Int(int64(opts.MaxTokens))
	}
	if opts.Seed != nil {
		p.Seed = openai.Int(*opts.Seed)
	}
	if len(opts.Stop) > 0 {
		p.Stop = openai.ChatCompletionNewParamsStopUnion{OfStringArray: opts.Stop}
	}
	if opts.N > 1 {
		p.N = openai.Int(int64(opts.N))
	}
	var ro []option.RequestOption
	keys := make([]string, 0, len(opts.Extra))
	for k := range opts.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ro = append(ro, option.WithJSONSet(k, opts.Extra[k]))
	}
	cap := &capture{}
	cc, err := b.svc.New(withCapture(ctx, cap), p, ro...)
	if err != nil {
		return nil, classify(err, cap)
	}
	raw := bytes.Clone(cap.body.Bytes())
	if len(raw) == 0 || !json.Valid(raw) {
		raw = json.RawMessage(cc.RawJSON())
	}
	if len(cc.Choices) == 0 {
		return nil, &Error{Kind: KindTransient, StatusCode: cap.status, Message: "response has no choices", Raw: raw, Err: errIncomplete}
	}
	r := &Response{
		Text:         cc.Choices[0].Message.Content,
		FinishReason: string(cc.Choices[0].FinishReason),
		Model:        cc.Model,
		Usage:        Usage{PromptTokens: cc.Usage.PromptTokens, CompletionTokens: cc.Usage.CompletionTokens},
		Raw:          raw,
	}
	for _, ch := range cc.Choices {
		r.Choices = append(r.Choices, ch.Message.Content)
	}
	return r, nil
}
