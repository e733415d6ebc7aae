package remote_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/server"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestStreamingThroughTheGateway: B streams the backend's text as it comes, in several chunks, over both of
// the gateway's APIs; R1 streams the ranked winner once, after ranking; the streamed texts equal the
// non-streamed answers of the same seeds.
func TestStreamingThroughTheGateway(t *testing.T) {
	srv := startRemote(t)
	for _, backendAPI := range []string{remote.APIOpenAI, remote.APIOllama} {
		t.Run(backendAPI, func(t *testing.T) {
			u := srv.URL + "/v1"
			if backendAPI == remote.APIOllama {
				u = srv.URL
			}
			g, _ := newGenerator(t, remote.Config{API: backendAPI, URL: u})
			gw := newGateway(t, g, tinyRM(t, rewardOpts()), server.Limits{})
			client := openai.NewClient(option.WithBaseURL(gw.URL+"/v1"), option.WithMaxRetries(0), option.WithAPIKey("x"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			params := func(model string) openai.ChatCompletionNewParams {
				return openai.ChatCompletionNewParams{Model: model, Seed: openai.Int(3), MaxTokens: openai.Int(24),
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story about a cat.")}}
			}
			stream := func(model string) (string, int) {
				s := client.Chat.Completions.NewStreaming(ctx, params(model))
				defer s.Close()
				var text strings.Builder
				chunks := 0
				for s.Next() {
					for _, ch := range s.Current().Choices {
						if ch.Delta.Content != "" {
							chunks++
							text.WriteString(ch.Delta.Content)
						}
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				return text.String(), chunks
			}
			b, chunks := stream("m")
			if chunks < 3 {
				t.Errorf("B streamed in %d chunks: %q", chunks, b)
			}
			whole, err := client.Chat.Completions.New(ctx, params("m"))
			if err != nil {
				t.Fatal(err)
			}
			if b != whole.Choices[0].Message.Content || b == "" {
				t.Errorf("streamed B %q, answered %q", b, whole.Choices[0].Message.Content)
			}
			r1, chunks := stream("m:r1")
			if chunks != 1 {
				t.Errorf("R1 streamed in %d chunks, want the ranked answer in one", chunks)
			}
			whole, err = client.Chat.Completions.New(ctx, params("m:r1"))
			if err != nil {
				t.Fatal(err)
			}
			if r1 != whole.Choices[0].Message.Content {
				t.Errorf("streamed R1 %q, answered %q", r1, whole.Choices[0].Message.Content)
			}

			// The gateway's Ollama API streams B too.
			gu, _ := url.Parse(gw.URL)
			oc := ollama.NewClient(gu, http.DefaultClient)
			var pieces []string
			err = oc.Chat(ctx, &ollama.ChatRequest{Model: "m", Messages: []ollama.Message{{Role: "user", Content: "Tell me a story about a cat."}},
				Options: map[string]any{"seed": 3, "num_predict": 24}}, func(r ollama.ChatResponse) error {
				if r.Message.Content != "" {
					pieces = append(pieces, r.Message.Content)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(pieces) < 3 {
				t.Errorf("Ollama API: B streamed in %d pieces", len(pieces))
			}
		})
	}
}

// TestBackendMetrics: the gateway's histograms carry the backend label; the time to first token and the queue
// time are bestofn's view: with one request in flight allowed and a backend that takes 300 ms to start
// answering, the second of two concurrent requests waits about that long for its slot.
func TestBackendMetrics(t *testing.T) {
	srv := startRemote(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		time.Sleep(300 * time.Millisecond)
		return false
	})
	g, _ := newGenerator(t, remote.Config{Name: "slow-start", URL: proxy.URL + "/v1", MaxInFlight: 1})
	gw := newGateway(t, g, nil, server.Limits{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, body := post(t, gw.URL+"/v1/chat/completions", chatBody("m", nil)); status != http.StatusOK {
				t.Errorf("status %d, body %v", status, body)
			}
		}()
	}
	wg.Wait()
	l := map[string]string{"model": "m", "variant": "m", "backend": "slow-start"}
	for _, family := range []string{"bestofn:e2e_request_latency_seconds", "bestofn:time_to_first_token_seconds",
		"bestofn:engine_time_to_first_token_seconds",
		"bestofn:request_queue_time_seconds", "bestofn:request_generation_tokens_per_candidate"} {
		if n, _ := histogram(t, gw.reg, family, l); n != 2 {
			t.Errorf("%s%v: %d samples, want 2", family, l, n)
		}
	}
	if _, sum := histogram(t, gw.reg, "bestofn:request_queue_time_seconds", l); sum < 0.25 {
		t.Errorf("queue time sum %.3fs, want >= 0.25s (one request waited for the other)", sum)
	}
	if _, sum := histogram(t, gw.reg, "bestofn:engine_time_to_first_token_seconds", l); sum < 2*0.3 {
		t.Errorf("time to first token sum %.3fs, want >= 0.6s (300ms each before the backend answers)", sum)
	}
}
