package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"
)

// Paths from this package's directory.
const (
	serveTestModel  = "../../../shared/models/stories260K/stories260K.gguf"
	serveTestReward = "../../reward/testdata/tiny-rm"
	// greedyStory is how stories260K continues "Once upon a time" greedily (shared/README.md), and greedy20 its
	// first 20 tokens.
	greedyStory = ", there was a little girl named Lily. She loved to play outside in the park."
	greedy20    = ", there was a little girl named Lily. She loved to play outsid"
)

// startRealServer serves the flag configuration (stories260K; with the reward engineer's tiny-rm when present,
// also :r1 and :ab) on a loopback port.
func startRealServer(t testing.TB) (*httptest.Server, bool) {
	t.Helper()
	if _, err := os.Stat(serveTestModel); err != nil {
		t.Skip("shared model missing: ", err)
	}
	rd := ""
	if st, err := os.Stat(serveTestReward); err == nil && st.IsDir() {
		rd = serveTestReward
	}
	cfg := flagConfig(serveTestModel, "", "alpaca", rd, "auto", "llama-gpt4", 5, 50, false)
	cfg.Threads = 1
	cfg.Limits = limitsConfig{MaxTokens: 64}
	srv, closeAll, err := buildServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); closeAll() })
	return ts, rd != ""
}

func TestServeRealEngineOpenAI(t *testing.T) {
	ts, _ := startRealServer(t)
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))

	comp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:       "llama-gpt4",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		Temperature: openai.Float(0),
		MaxTokens:   openai.Int(20),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := comp.Choices[0].Text; got != greedy20 || !strings.HasPrefix(greedyStory, got) {
		t.Errorf("greedy completion %q, want %q", got, greedy20)
	}
	if comp.Usage.CompletionTokens != 20 || comp.Choices[0].FinishReason != "length" {
		t.Errorf("usage %+v finish %q", comp.Usage, comp.Choices[0].FinishReason)
	}

	params := openai.ChatCompletionNewParams{
		Model:     "llama-gpt4",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story about a cat.")},
		N:         openai.Int(2),
		Seed:      openai.Int(42),
		MaxTokens: openai.Int(24),
	}
	unranked := option.WithJSONSet("rerank", "none") // the baseline scores its answers when a reward model exists
	chat, err := client.Chat.Completions.New(ctx, params, unranked)
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 2 || chat.Choices[0].Message.Content == "" || chat.Choices[0].Message.Content == chat.Choices[1].Message.Content {
		t.Fatalf("choices %+v", chat.Choices)
	}
	// The same seed streamed gives the same two texts, rebuilt from the chunks.
	stream := client.Chat.Completions.NewStreaming(ctx, params, unranked)
	acc := openai.ChatCompletionAccumulator{}
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 2; j++ {
		if acc.Choices[j].Message.Content != chat.Choices[j].Message.Content {
			t.Errorf("choice %d streamed %q, not streamed %q", j, acc.Choices[j].Message.Content, chat.Choices[j].Message.Content)
		}
	}
	if chunks < 10 {
		t.Errorf("%d chunks: not streamed token by token", chunks)
	}

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "llama-gpt4",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("cat ", 3000))},
		MaxTokens: openai.Int(8),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Errorf("long prompt: %v", err)
	}
}

func TestServeRealEngineOllama(t *testing.T) {
	ts, _ := startRealServer(t)
	ctx := context.Background()
	u, _ := url.Parse(ts.URL)
	client := ollama.NewClient(u, ts.Client())

	var text string
	parts := 0
	err := client.Generate(ctx, &ollama.GenerateRequest{Model: "llama-gpt4", Prompt: "Once upon a time", Raw: true,
		Options: map[string]any{"temperature": 0, "num_predict": 20}}, func(r ollama.GenerateResponse) error {
		text += r.Response
		parts++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if text != greedy20 || parts < 10 {
		t.Errorf("greedy generate %q in %d parts, want %q streamed token by token", text, parts, greedy20)
	}
	var final ollama.ChatResponse
	var chatText string
	err = client.Chat(ctx, &ollama.ChatRequest{Model: "llama-gpt4", Messages: []ollama.Message{{Role: "user", Content: "Tell me a story."}},
		Options: map[string]any{"seed": 3, "num_predict": 16}}, func(r ollama.ChatResponse) error {
		chatText += r.Message.Content
		if r.Done {
			final = r
		}
		return nil
	})
	if err != nil || chatText == "" || !final.Done || final.EvalCount == 0 || final.PromptEvalCount == 0 {
		t.Fatalf("chat %q final %+v err %v", chatText, final, err)
	}
}

// TestServeRealR1 runs the best-of-5 model end to end when the reward model exists.
func TestServeRealR1(t *testing.T) {
	ts, haveReward := startRealServer(t)
	if !haveReward {
		t.Skip("no reward model at " + serveTestReward)
	}
	body := `{"model":"llama-gpt4:ab","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":16,"seed":1,"return_candidates":true}`
	req, _ := http.NewRequest("POST", ts.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("X-Bestofn-Variant", "R1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Variant    string `json:"variant"`
		Degraded   bool   `json:"degraded"`
		Candidates []struct {
			Rank  int      `json:"rank"`
			Score *float64 `json:"score"`
			Text  string   `json:"text"`
		} `json:"candidates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || out.Variant != "R1" || out.Degraded || len(out.Candidates) != 5 {
		t.Fatalf("status %d %+v", resp.StatusCode, out)
	}
	for i, c := range out.Candidates {
		if c.Score == nil || c.Rank != i+1 || i > 0 && *c.Score > *out.Candidates[i-1].Score {
			t.Errorf("candidate %d: %+v", i, c)
		}
	}
	if out.Choices[0].Message.Content != out.Candidates[0].Text {
		t.Errorf("answer is not the best-ranked candidate")
	}
}

func TestServeConfigFile(t *testing.T) {
	cfg, err := loadServeConfig("../../deploy/bestofn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Models) != 2 || cfg.Models[1].N != 5 || !cfg.Models[1].Rerank || cfg.Limits.RequestTimeout != 10*time.Minute ||
		len(cfg.Experiments) != 1 || cfg.Experiments[0].Variants[1].Model != "llama-gpt4:r1" || cfg.ShutdownTimeout != 30*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	dir := t.TempDir()
	js := filepath.Join(dir, "c.json")
	os.WriteFile(js, []byte(`{"generators":[{"name":"g","model":"m.gguf"}],"models":[{"name":"a","generator":"g"}],"limits":{"request_timeout":"5s"}}`), 0o644)
	if cfg, err := loadServeConfig(js); err != nil || cfg.Limits.RequestTimeout != 5*time.Second {
		t.Errorf("JSON config %+v %v", cfg, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("generators: []\nmodles: []\n"), 0o644)
	if _, err := loadServeConfig(bad); err == nil || !strings.Contains(err.Error(), "modles") {
		t.Errorf("misspelt key: %v", err)
	}
	if err := runServe(context.Background(), []string{"--config", js, "--n", "3"}, io.Discard, io.Discard); err == nil {
		t.Error("--config with --n accepted")
	}
	if err := runServe(context.Background(), []string{"--model", "/nonexistent.gguf", "--addr", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil {
		t.Error("missing model accepted")
	}
}

// TestServeShutdown runs the subcommand, makes a request, then cancels its context (what SIGTERM does) and
// checks it returns cleanly.
func TestServeShutdown(t *testing.T) {
	if _, err := os.Stat(serveTestModel); err != nil {
		t.Skip("shared model missing: ", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, []string{"--model", serveTestModel, "--reward-model", "", "--addr", "127.0.0.1:0", "--threads", "1"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "bestofn: listening on "))
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json",
		strings.NewReader(`{"model":"llama-gpt4","prompt":"Once","max_tokens":4}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// BenchmarkServeStories compares, through the whole HTTP stack on stories260K, a baseline request (one
// candidate), best-of-5 without ranking (five candidates decoded in one batch) and, when the reward model
// exists, R1 (best-of-5 ranked by it); 32 tokens per candidate.
func BenchmarkServeStories(b *testing.B) {
	ts, haveReward := startRealServer(b)
	cases := []struct{ name, model string }{
		{"B", `"model":"llama-gpt4"`},
		{"best5-unranked", `"model":"llama-gpt4","best_of":5,"rerank":"none"`},
	}
	if haveReward {
		cases = append(cases, struct{ name, model string }{"R1", `"model":"llama-gpt4:r1"`})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body := `{` + c.model + `,"max_tokens":32,"seed":1,"messages":[{"role":"user","content":"Tell me a story."}]}`
			tokens := 0
			for i := 0; i < b.N; i++ {
				resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				var out struct {
					Usage struct {
						CompletionTokens int `json:"completion_tokens"`
					} `json:"usage"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp.Status, err)
				}
				tokens += out.Usage.CompletionTokens
			}
			b.ReportMetric(float64(tokens)/float64(b.N), "tokens/op")
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// TestServeConcurrent sends baseline and best-of-N requests, streamed and not, at the same time (the engine
// batches them together) and checks each answer matches the same request made alone.
func TestServeConcurrent(t *testing.T) {
	ts, _ := startRealServer(t)
	body := func(i int, stream bool) string {
		return `{"model":"llama-gpt4","best_of":` + []string{"1", "3"}[i%2] + `,"rerank":"none","seed":` + string(rune('1'+i)) +
			`,"max_tokens":12,"stream":` + map[bool]string{true: "true", false: "false"}[stream] +
			`,"messages":[{"role":"user","content":"Tell me a story."}]}`
	}
	answer := func(i int, stream bool) (string, error) {
		resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body(i, stream)))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", errors.New(resp.Status)
		}
		if !stream {
			var out struct {
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			err := json.NewDecoder(resp.Body).Decode(&out)
			return out.Choices[0].Message.Content, err
		}
		var text strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var ch struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(data), &ch); err != nil {
				return "", err
			}
			for _, c := range ch.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		return text.String(), sc.Err()
	}
	const n = 6
	alone := make([]string, n)
	for i := range alone {
		var err error
		if alone[i], err = answer(i, false); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			var err error
			got[i], err = answer(i, i%3 == 0)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range got {
		if got[i] != alone[i] {
			t.Errorf("request %d: concurrently %q, alone %q", i, got[i], alone[i])
		}
	}
}
