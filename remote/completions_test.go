package remote_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/server"
)

// TestCompletionsAndLogprobs: a prompt goes to the backend's completions endpoint (OpenAI /completions,
// Ollama /api/generate raw) and comes back as the backend completes it for the same seeds; logprobs asked for
// come back per token, and give each candidate's token count and mean log-probability.
func TestCompletionsAndLogprobs(t *testing.T) {
	srv := startRemote(t)
	direct := openai.NewCompletionService(option.WithBaseURL(srv.URL+"/v1"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const prompt = "Once upon a time"
	want := make([]string, 3)
	for i := range want {
		c, err := direct.New(ctx, openai.CompletionNewParams{Model: remoteModel,
			Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			Temperature: openai.Float(0.8), TopP: openai.Float(1), Seed: openai.Int(int64(20 + i)), MaxTokens: openai.Int(16)})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = c.Choices[0].Text
	}
	for _, tc := range []struct{ api, url string }{{remote.APIOpenAI, srv.URL + "/v1"}, {remote.APIOllama, srv.URL}} {
		t.Run(tc.api, func(t *testing.T) {
			g, _ := newGenerator(t, remote.Config{API: tc.api, URL: tc.url})
			res, err := g.Generate(ctx, engine.Request{Prompt: prompt, N: 3, MaxTokens: 16, Logprobs: true, TopLogprobs: 2,
				Sampling: engine.SamplingParams{Temperature: 0.8, Seed: 20}})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range res.Candidates {
				if c.Text != want[i] {
					t.Errorf("candidate %d: %q, want %q", i, c.Text, want[i])
				}
				if len(c.Logprobs) == 0 || c.NumTokens() != len(c.Logprobs) || math.IsNaN(c.CumLogprob) || c.CumLogprob >= 0 {
					t.Errorf("candidate %d: %d logprobs, %d tokens, cumulative %v", i, len(c.Logprobs), c.NumTokens(), c.CumLogprob)
				}
				var joined strings.Builder
				for _, lp := range c.Logprobs {
					joined.WriteString(lp.Text)
					if len(lp.Top) != 2 || lp.Top[0].Logprob < lp.Top[1].Logprob {
						t.Errorf("candidate %d: top logprobs %+v", i, lp.Top)
						break
					}
				}
				if joined.String() != c.Text {
					t.Errorf("candidate %d: logprob tokens spell %q, text %q", i, joined.String(), c.Text)
				}
			}
		})
	}
}

// TestBackendRejection: what the backend refuses as a bad request (a prompt longer than its context) is a 400
// at the gateway, with the backend's reason; it does not count against the backend's health.
func TestBackendRejection(t *testing.T) {
	srv := startRemote(t)
	g, _ := newGenerator(t, remote.Config{Name: "small-ctx", URL: srv.URL + "/v1"})
	gw := newGateway(t, g, nil, server.Limits{})
	long := strings.Repeat("the cat sat on the mat. ", 600)
	status, body := post(t, gw.URL+"/v1/completions", map[string]any{"model": "m", "prompt": long, "max_tokens": 8})
	msg, _ := openaiError(t, body)
	if status != http.StatusBadRequest || !strings.Contains(msg, `backend "small-ctx" rejected the request`) || !strings.Contains(msg, "context") {
		t.Errorf("status %d, message %q", status, msg)
	}
	if st := g.BackendStatus(); st.ConsecutiveFailures != 0 {
		t.Errorf("a rejected request counted as a failure: %+v", st)
	}
}

// TestBestOfByLikelihood: best_of > n without reranking ranks the backend's candidates by mean log-probability
// (OpenAI's best_of), from logprobs the gateway asks the backend for without returning them.
func TestBestOfByLikelihood(t *testing.T) {
	srv := startRemote(t)
	g, _ := newGenerator(t, remote.Config{URL: srv.URL + "/v1"})
	gw := newGateway(t, g, nil, server.Limits{})
	status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", map[string]any{"best_of": 4, "return_candidates": true}))
	if status != http.StatusOK {
		t.Fatalf("status %d, body %v", status, body)
	}
	cands, _ := body["candidates"].([]any)
	if len(cands) != 4 {
		t.Fatalf("%d candidates", len(cands))
	}
	prev := math.Inf(1)
	for k, c := range cands {
		c := c.(map[string]any)
		ml, ok := c["mean_logprob"].(float64)
		if !ok || ml > prev || c["rank"].(float64) != float64(k+1) {
			t.Errorf("rank %d: %v", k+1, c)
		}
		prev = ml
	}
	choice := body["choices"].([]any)[0].(map[string]any)
	if choice["message"].(map[string]any)["content"] != cands[0].(map[string]any)["text"] || choice["logprobs"] != nil {
		t.Errorf("choice %v, best candidate %v", choice, cands[0])
	}
}
