package remote_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"net/url"

	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// The remote's baseline model: one sample, no reranking, so n choices come back in sampling order.
const remoteModel = "llama-gpt4"

// startRemote starts a real bestofn server on stories260K, the backend of these tests.
func startRemote(t *testing.T) *teachertest.Server {
	t.Helper()
	return teachertest.Serve(t)
}

// tinyRM loads the repository's tiny reward model (pure-Go runtime unless ONNX Runtime is installed).
func tinyRM(t *testing.T, opts reward.Options) *reward.Model {
	t.Helper()
	rm, err := reward.Load(filepath.Join(teachertest.RepoRoot(t), "reward", "testdata", "tiny-rm"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return rm
}

// logBuffer collects a generator's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newGenerator(t *testing.T, cfg remote.Config) (*remote.Generator, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), nil))
	}
	if cfg.Name == "" {
		cfg.Name = "remote-bestofn"
	}
	if cfg.Model == "" {
		cfg.Model = remoteModel
	}
	g, err := remote.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, logs
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// chatRequest is a best-of-n chat request of the paper's shape.
func chatRequest(n int, seed uint64, rerank bool) engine.Request {
	return engine.Request{
		Messages:     []engine.Message{{Role: "user", Content: "Tell me a story about a cat."}},
		RewardPrompt: "Tell me a story about a cat.",
		N:            n, Rerank: rerank, MaxTokens: 24,
		Sampling: engine.SamplingParams{Temperature: 1, TopP: 1, Seed: seed},
	}
}

// directChat asks the remote for one chat answer with seed, through openai-go (not through package remote).
func directChat(t *testing.T, baseURL string, seed int64) string {
	t.Helper()
	svc := openai.NewChatCompletionService(option.WithBaseURL(baseURL+"/v1"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, err := svc.New(ctx, openai.ChatCompletionNewParams{Model: remoteModel,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story about a cat.")},
		Temperature: openai.Float(1), TopP: openai.Float(1), Seed: openai.Int(seed), MaxTokens: openai.Int(24)})
	if err != nil {
		t.Fatal(err)
	}
	return cc.Choices[0].Message.Content
}

// directOllamaChat asks the remote's Ollama API for one chat answer with seed, through ollama/api.
func directOllamaChat(t *testing.T, root string, seed int64) string {
	t.Helper()
	u, _ := url.Parse(root)
	c := ollama.NewClient(u, nil)
	stream := false
	var out string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Chat(ctx, &ollama.ChatRequest{Model: remoteModel, Stream: &stream,
		Messages: []ollama.Message{{Role: "user", Content: "Tell me a story about a cat."}},
		Options: map[string]any{"temperature": 1, "top_p": 1, "top_k": 0, "min_p": 0, "repeat_penalty": 1,
			"seed": seed, "num_predict": 24}},
		func(r ollama.ChatResponse) error { out += r.Message.Content; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewardOpts loads the reward model on its default runtime.
func rewardOpts() reward.Options { return reward.Options{} }
