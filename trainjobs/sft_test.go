package trainjobs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

// sftRows are four Alpaca rows with short answers, one with an input.
var sftRows = []map[string]string{
	{"instruction": "What color is the sky?", "output": "The sky is blue."},
	{"instruction": "Name a fruit.", "output": "An apple."},
	{"instruction": "Add the numbers.", "input": "2 and 3", "output": "Five."},
	{"instruction": "Say hello to Tim.", "output": "Hello, Tim!"},
}

func jsonl(t *testing.T, rows ...any) []byte {
	t.Helper()
	var b []byte
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	return b
}

// TestSFTJob fine-tunes stories260K on four Alpaca rows until it answers them, end to end: the job publishes
// and registers a GGUF, and the engine serving that GGUF, prompted with the Alpaca template, answers an
// instruction with the trained response (greedy decoding), where the base model tells a story.
func TestSFTJob(t *testing.T) {
	env := newEnv(t, Options{})
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	rows := []any{}
	for _, r := range sftRows {
		rows = append(rows, r)
	}
	rows = append(rows, map[string]any{"messages": []map[string]string{{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A small model."}}})
	data := env.Upload("alpaca.jsonl", PurposeSFT, jsonl(t, rows...))
	j := env.Run(TypeSFT, map[string]any{"base_file": base.ID, "training_files": []string{data.ID}, "epochs": 30,
		"batch_size": 5, "learning_rate": 3e-3, "warmup_steps": 5, "weight_decay": 0, "eval_fraction": 0, "max_length": 192, "seed": 1})
	res := jobResult[SFTResult](t, j)
	t.Logf("result: %s", j.Result)
	if res.Rows != 5 || res.Examples != 5 || res.Steps != 30 || res.Model == nil || res.FinalTrainLoss > 0.1 {
		t.Errorf("result %+v", res)
	}
	losses := 0
	for _, ev := range env.Events(j.ID) {
		if ev.Level == "metrics" && strings.Contains(string(ev.Data), `"loss"`) {
			losses++
		}
	}
	if losses != 30 {
		t.Errorf("%d loss points in the events, want 30 (one per step)", losses)
	}

	path, mv, err := env.Service.ModelPath(context.Background(), "sft", 0)
	if err != nil || mv.Kind != jobs.KindGenerator {
		t.Fatalf("registered %+v, %v", mv, err)
	}
	alpaca, _ := chat.Lookup("alpaca")
	prompt, err := alpaca.Render([]chat.Message{{Role: chat.RoleUser, Content: "What color is the sky?"}})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(path string) string {
		ck, err := weights.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		m, err := model.Load(ck, model.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		tok, err := tokenizer.FromMetadata(ck.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(m, tok, nil, engine.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		r, err := e.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 24,
			Sampling: engine.SamplingParams{Temperature: 0}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Candidates[0].Text
	}
	got, before := answer(path), answer(stories260K)
	t.Logf("fine-tuned: %q; base: %q", got, before)
	if strings.TrimSpace(got) != "The sky is blue." {
		t.Errorf("the fine-tuned model answers %q", got)
	}
	if strings.Contains(before, "The sky is blue.") {
		t.Errorf("the base model already answers %q", before)
	}
}
