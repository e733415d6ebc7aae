package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/judge"
	"github.com/bestofn/bestofn/teacher"
)

// Endpoint is a chat model behind an OpenAI-compatible or Ollama API (a served bestofn model, a remote
// system, a judge or a translator): the teacher client's Config (provider, base_url, model, api_key_env,
// concurrency, rate limits, retries, timeouts) plus the decoding options of answers.
type Endpoint struct {
	teacher.Config
	// Temperature and TopP of answers; nil Temperature means 1.0 (the paper's decoding), nil TopP the
	// endpoint's default. For the LLM judge, nil Temperature means 0.2 (Vicuna's reviewer).
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	// MaxTokens bounds an answer; 0 means 512 (the paper's).
	MaxTokens int `json:"max_tokens,omitempty"`
	// Seed, when set, makes answers reproducible: question i is asked with Seed+i.
	Seed *int64 `json:"seed,omitempty"`
}

func (e Endpoint) validate(field string) error {
	if err := e.Config.Validate(); err != nil {
		var ce *teacher.ConfigError
		if errors.As(err, &ce) {
			return paramErr(field+"."+ce.Field, "%s", ce.Message)
		}
		return paramErr(field, "%v", err)
	}
	if e.MaxTokens < 0 {
		return paramErr(field+".max_tokens", "must not be negative")
	}
	return nil
}

// client talks to one endpoint through the teacher client.
type client struct {
	ep Endpoint
	tc *teacher.Client
}

func newClient(ep Endpoint, events teacher.EventFunc) (*client, error) {
	tc, err := teacher.New(ep.Config, teacher.WithEvents(events))
	if err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", ep.BaseURL, err)
	}
	return &client{ep: ep, tc: tc}, nil
}

// Chat implements judge.Chatter.
func (c *client) Chat(ctx context.Context, system, user string, opts judge.ChatOptions) (string, string, error) {
	var msgs []teacher.Message
	if system != "" {
		msgs = append(msgs, teacher.Message{Role: "system", Content: system})
	}
	msgs = append(msgs, teacher.Message{Role: "user", Content: user})
	temp := opts.Temperature
	resp, err := c.tc.Chat(ctx, msgs, teacher.Options{Temperature: &temp, MaxTokens: opts.MaxTokens, Seed: opts.Seed})
	if err != nil {
		return "", "", err
	}
	return resp.Text, string(resp.Raw), nil
}

// answerOptions are the endpoint's decoding options for question i.
func (c *client) answerOptions(i int) teacher.Options {
	o := teacher.Options{Temperature: c.ep.Temperature, TopP: c.ep.TopP, MaxTokens: c.ep.MaxTokens}
	if o.Temperature == nil {
		one := 1.0
		o.Temperature = &one
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = 512
	}
	if c.ep.Seed != nil {
		seed := *c.ep.Seed + int64(i)
		o.Seed = &seed
	}
	return o
}

// answer asks the question once.
func (c *client) answer(ctx context.Context, question string, i int) (string, error) {
	resp, err := c.tc.Chat(ctx, teacher.User(question), c.answerOptions(i))
	if err != nil {
		return "", err
	}
	return resp.Text, nil
}

// candidates asks a bestofn server for k candidates (best_of k, return_candidates) and returns them with the
// server's ranks and scores.
func (c *client) candidates(ctx context.Context, question string, i, k int) ([]api.Candidate, error) {
	o := c.answerOptions(i)
	o.Extra = map[string]any{"best_of": k, "return_candidates": true}
	resp, err := c.tc.Chat(ctx, teacher.User(question), o)
	if err != nil {
		return nil, err
	}
	var ext api.Extensions
	if err := json.Unmarshal(resp.Raw, &ext); err != nil {
		return nil, fmt.Errorf("evaluate: read candidates from %s: %w", c.ep.BaseURL, err)
	}
	return ext.Candidates, nil
}
