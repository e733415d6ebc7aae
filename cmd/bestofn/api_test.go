package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

// These tests drive the real engine (stories260K) through the official clients, for what issue 15 found.

// TestAPICompletionTextContinuesPrompt checks that a completion's text is exactly what detokenizing prompt +
// generated tokens adds after the prompt (the first token keeps its leading space), with and without echo, on
// /v1/completions and Ollama's raw /api/generate.
func TestAPICompletionTextContinuesPrompt(t *testing.T) {
	ts, _ := startRealServer(t)
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	for _, c := range []struct{ prompt, want string }{
		{"Once upon a", " time, there was"},
		{"Once upon a time,", " there was a little"},
		{"Lily went to the par", "k with her mom."},
	} {
		for _, echo := range []bool{false, true} {
			comp, err := client.Completions.New(ctx, openai.CompletionNewParams{
				Model:       "llama-gpt4",
				Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(c.prompt)},
				Temperature: openai.Float(0),
				MaxTokens:   openai.Int(6),
				Echo:        openai.Bool(echo),
				Logprobs:    openai.Int(0),
			})
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			if echo {
				want = c.prompt + c.want
			}
			ch := comp.Choices[0]
			if !strings.HasPrefix(ch.Text, want) {
				t.Errorf("%q echo=%v: text %q, want it to start with %q", c.prompt, echo, ch.Text, want)
			}
			if got := strings.Join(ch.Logprobs.Tokens, ""); !strings.HasSuffix(ch.Text, got) || !strings.HasPrefix(got, c.want) {
				t.Errorf("%q echo=%v: logprob tokens spell %q, text %q", c.prompt, echo, got, ch.Text)
			}
		}
	}

	u, _ := url.Parse(ts.URL)
	oc := ollama.NewClient(u, ts.Client())
	var text string
	err := oc.Generate(ctx, &ollama.GenerateRequest{Model: "llama-gpt4", Prompt: "Once upon a", Raw: true,
		Options: map[string]any{"temperature": 0, "num_predict": 6}}, func(r ollama.GenerateResponse) error {
		text += r.Response
		return nil
	})
	if err != nil || !strings.HasPrefix(text, " time, there was") {
		t.Errorf("ollama raw generate %q (%v), want it to start with %q", text, err, " time, there was")
	}
}
