package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

// These tests drive a running server over HTTP with the official Go clients of both APIs. clientTarget is a
// fake-generator server here; cmd/bestofn's tests run the same checks against the real engine.

func newOpenAI(ts *httptest.Server) openai.Client {
	return openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

func TestOpenAIClient(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	ctx := context.Background()
	client := newOpenAI(ts)

	var httpResp *http.Response
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "base:r1",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be nice"), openai.UserMessage("Tell a story")},
		N:        openai.Int(2),
		Seed:     openai.Int(11),
	}, option.WithJSONSet("return_candidates", true), option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 2 || resp.Choices[0].Message.Content == "" || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices %+v", resp.Choices)
	}
	if v := resp.JSON.ExtraFields["variant"].Raw(); v != `"base:r1"` {
		t.Errorf("variant extra field %s", v)
	}
	if !strings.Contains(resp.JSON.ExtraFields["candidates"].Raw(), `"rank":5`) {
		t.Errorf("candidates %s", resp.JSON.ExtraFields["candidates"].Raw())
	}
	if httpResp.Header.Get(HeaderVariant) != "base:r1" {
		t.Errorf("variant header %q", httpResp.Header.Get(HeaderVariant))
	}
	if resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens || resp.Usage.CompletionTokens == 0 {
		t.Errorf("usage %+v", resp.Usage)
	}

	// Streaming with n=2 on the baseline: the accumulator rebuilds both choices from the chunks.
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:       "base",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell a story")},
		N:           openai.Int(2),
		Seed:        openai.Int(5),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(1),
	})
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 2 || acc.Choices[0].Message.Content != fakeText("", 5, 0) || acc.Choices[1].Message.Content != fakeText("", 5, 1) {
		t.Fatalf("accumulated %+v after %d chunks", acc.Choices, chunks)
	}
	for j, ch := range acc.Choices {
		if n := len(strings.Fields(ch.Message.Content)); len(ch.Logprobs.Content) != n || len(ch.Logprobs.Content[0].TopLogprobs) != 1 {
			t.Errorf("choice %d: %d logprobs for %d tokens", j, len(ch.Logprobs.Content), n)
		}
	}
	if chunks < 4 {
		t.Errorf("only %d chunks: not streamed", chunks)
	}

	// Legacy completions and the model list.
	comp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:  "raw",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once")},
		Seed:   openai.Int(1),
	})
	if err != nil || len(comp.Choices) != 1 || comp.Choices[0].Text != fakeText("", 1, 0) {
		t.Fatalf("completion %+v %v", comp, err)
	}
	models, err := client.Models.List(ctx)
	if err != nil || len(models.Data) != 5 {
		t.Fatalf("models %+v %v", models, err)
	}
	if m, err := client.Models.Get(ctx, "ab"); err != nil || m.ID != "ab" || m.OwnedBy != "bestofn-experiment" {
		t.Fatalf("model %+v %v", m, err)
	}

	// Errors arrive as *openai.Error with OpenAI's fields.
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "missing",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" || apiErr.Param != "model" {
		t.Fatalf("error %#v", err)
	}
}

func TestOllamaClient(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	client := ollama.NewClient(u, ts.Client())
	ctx := context.Background()

	var parts []string
	var final ollama.ChatResponse
	err := client.Chat(ctx, &ollama.ChatRequest{
		Model:    "base",
		Messages: []ollama.Message{{Role: "user", Content: "hi"}},
		Options:  map[string]any{"seed": 9, "temperature": 0.1, "num_predict": 50},
	}, func(r ollama.ChatResponse) error {
		parts = append(parts, r.Message.Content)
		if r.Done {
			final = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(parts, ""); got != fakeText("", 9, 0) || len(parts) < 2 || !final.Done || final.EvalCount == 0 {
		t.Fatalf("streamed %q in %d parts, final %+v", got, len(parts), final)
	}

	noStream := false
	var gen []ollama.GenerateResponse
	err = client.Generate(ctx, &ollama.GenerateRequest{Model: "base:r1", Prompt: "hi", Stream: &noStream},
		func(r ollama.GenerateResponse) error { gen = append(gen, r); return nil })
	if err != nil || len(gen) != 1 || !gen[0].Done || gen[0].Response == "" {
		t.Fatalf("generate %+v %v", gen, err)
	}
	var streamed string
	err = client.Generate(ctx, &ollama.GenerateRequest{Model: "raw", Prompt: "Once", Raw: true, Options: map[string]any{"seed": 2}},
		func(r ollama.GenerateResponse) error { streamed += r.Response; return nil })
	if err != nil || streamed != fakeText("", 2, 0) {
		t.Fatalf("generate stream %q %v", streamed, err)
	}

	list, err := client.List(ctx)
	if err != nil || len(list.Models) != 5 {
		t.Fatalf("list %+v %v", list, err)
	}
	show, err := client.Show(ctx, &ollama.ShowRequest{Model: "base"})
	if err != nil || show.Details.Family != "llama" {
		t.Fatalf("show %+v %v", show, err)
	}
	if err := client.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if ps, err := client.ListRunning(ctx); err != nil || len(ps.Models) != 5 {
		t.Fatalf("ps %+v %v", ps, err)
	}
	if v, err := client.Version(ctx); err != nil || v != "test-1" {
		t.Fatalf("version %q %v", v, err)
	}

	err = client.Chat(ctx, &ollama.ChatRequest{Model: "nope", Messages: []ollama.Message{{Role: "user", Content: "x"}}},
		func(ollama.ChatResponse) error { return nil })
	var se ollama.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(se.ErrorMessage, "not found") {
		t.Fatalf("error %#v", err)
	}
}
