package teacher

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"

	ollama "github.com/ollama/ollama/api"
)

// ollamaBackend speaks Ollama's /api/chat through ollama/api, without streaming. ollama/api returns nil when a
// connection breaks mid-body, so an answer without its final ("done") object is an incomplete response.
type ollamaBackend struct {
	client *ollama.Client
	model  string
}

func newOllama(cfg Config, hc *http.Client) (*ollamaBackend, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, &ConfigError{"base_url", err.Error()}
	}
	return &ollamaBackend{client: ollama.NewClient(u, hc), model: cfg.Model}, nil
}

func (b *ollamaBackend) send(ctx context.Context, msgs []Message, opts Options) (*Response, error) {
	if opts.N > 1 || len(opts.Extra) > 0 {
		return nil, &Error{Kind: KindPermanent, Message: "n > 1 and extra body fields need the OpenAI provider"}
	}
	stream := false
	req := &ollama.ChatRequest{Model: b.model, Stream: &stream, Options: map[string]any{}}
	for _, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return nil, &Error{Kind: KindPermanent, Message: fmt.Sprintf("message role %q (want system, user or assistant)", m.Role)}
		}
		req.Messages = append(req.Messages, ollama.Message{Role: m.Role, Content: m.Content})
	}
	if opts.Temperature != nil {
		req.Options["temperature"] = *opts.Temperature
	}
	if opts.TopP != nil {
		req.Options["top_p"] = *opts.TopP
	}
	if opts.MaxTokens > 0 {
		req.Options["num_predict"] = opts.MaxTokens
	}
	if opts.Seed != nil {
		req.Options["seed"] = *opts.Seed
	}
	if len(opts.Stop) > 0 {
		req.Options["stop"] = opts.Stop
	}
	cap := &capture{}
	var final *ollama.ChatResponse
	var text bytes.Buffer
	err := b.client.Chat(withCapture(ctx, cap), req, func(r ollama.ChatResponse) error {
		text.WriteString(r.Message.Content)
		if r.Done {
			final = &r
		}
		return nil
	})
	if err == nil && final == nil {
		err = errIncomplete
		if cap.readErr != nil {
			err = fmt.Errorf("%w: %w", errIncomplete, cap.readErr)
		}
	}
	if err != nil {
		return nil, classify(err, cap)
	}
	return &Response{
		Text:         text.String(),
		Choices:      []string{text.String()},
		FinishReason: final.DoneReason,
		Model:        final.Model,
		Usage:        Usage{PromptTokens: int64(final.PromptEvalCount), CompletionTokens: int64(final.EvalCount)},
		Raw:          bytes.Clone(cap.body.Bytes()),
	}, nil
}
