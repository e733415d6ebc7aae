package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/rules"
)

// `reward_model: rules` (in a config file, as --reward-model rules in flags) ranks NAME:r1's candidates by the
// rule checks of the instruction's own words: through the server's OpenAI API (openai-go), every candidate's
// score is its rules score, the answer is the best one, and over several seeds R1's answers follow more rules
// than B's (one sample of the same seed, which is R1's first candidate).
func TestServeRulesScorer(t *testing.T) {
	if _, err := os.Stat(serveTestModel); err != nil {
		t.Skip("shared model missing: ", err)
	}
	cfgPath := filepath.Join(t.TempDir(), "rules.yaml")
	yaml := "generators:\n  - name: g\n    model: " + serveTestModel + "\n    template: story\n    reward_model: rules\n" +
		"models:\n  - {name: story, generator: g, n: 1}\n  - {name: 'story:r1', generator: g, n: 8, rerank: true}\n" +
		"limits: {max_tokens: 96, max_n: 16, max_body_bytes: 1048576, max_concurrent: 8}\nthreads: 1\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadServeConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, closeAll, err := buildServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); closeAll() })
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))

	const prompt = "Write a short story about a cat named Tom. Mention a ball. The story ends happily. Use fewer than 60 words."
	ins := rules.FromText(prompt)
	if len(ins) != 4 {
		t.Fatalf("FromText found %d instructions in the prompt, want 4", len(ins))
	}
	var sumB, sumR1 float64
	for k := int64(0); k < 6; k++ {
		seed := 1 + 100*k // candidates use seeds seed..seed+7: keep the requests' samples apart
		ask := func(model string, opts ...option.RequestOption) (*openai.ChatCompletion, error) {
			return client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
				Seed: openai.Int(seed), MaxTokens: openai.Int(96), Temperature: openai.Float(1)}, opts...)
		}
		b, err := ask("story")
		if err != nil {
			t.Fatal(err)
		}
		r1, err := ask("story:r1", option.WithJSONSet("return_candidates", true))
		if err != nil {
			t.Fatal(err)
		}
		var ext struct {
			Candidates []struct {
				Index int      `json:"index"`
				Rank  int      `json:"rank"`
				Score *float64 `json:"score"`
				Text  string   `json:"text"`
			} `json:"candidates"`
		}
		if err := json.Unmarshal([]byte(r1.RawJSON()), &ext); err != nil {
			t.Fatal(err)
		}
		if len(ext.Candidates) != 8 {
			t.Fatalf("seed %d: %d candidates, want 8", seed, len(ext.Candidates))
		}
		for i, c := range ext.Candidates {
			want := rules.ScoreAnswer(ins, c.Text, false)
			if c.Score == nil || c.Rank != i+1 || float32(*c.Score) != float32(want) {
				t.Errorf("seed %d candidate %d: rank %d score %v, want rank %d and the rules score %v", seed, i, c.Rank, c.Score, i+1, want)
			}
			if i > 0 && c.Score != nil && ext.Candidates[i-1].Score != nil && *c.Score > *ext.Candidates[i-1].Score {
				t.Errorf("seed %d: candidates not sorted by score", seed)
			}
			if c.Index == 0 && c.Text != b.Choices[0].Message.Content {
				t.Errorf("seed %d: R1's first sample %q is not B's answer %q", seed, c.Text, b.Choices[0].Message.Content)
			}
		}
		if r1.Choices[0].Message.Content != ext.Candidates[0].Text {
			t.Errorf("seed %d: the answer is not the best-ranked candidate", seed)
		}
		sb, sr := rules.ScoreAnswer(ins, b.Choices[0].Message.Content, false), rules.ScoreAnswer(ins, r1.Choices[0].Message.Content, false)
		t.Logf("seed %d: B %.3f, R1 %.3f: %q", seed, sb, sr, r1.Choices[0].Message.Content)
		sumB += sb
		sumR1 += sr
	}
	if !(sumR1 > sumB) {
		t.Errorf("R1's answers follow no more rules than B's: %.3f vs %.3f", sumR1, sumB)
	}
}
