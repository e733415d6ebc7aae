package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

const (
	storiesGGUFPath = "../../../shared/models/stories260K/stories260K.gguf"
	storiesBinPath  = "../../../shared/models/stories260K/stories260K.bin"
	storiesTokPath  = "../../../shared/models/stories260K/tok512.bin"
)

func TestGenerateGreedyRaw(t *testing.T) {
	const want = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	for _, args := range [][]string{
		{"--model", storiesGGUFPath},
		{"--model", storiesBinPath, "--tokenizer", storiesTokPath},
	} {
		var out, errOut bytes.Buffer
		args = append(args, "--raw", "--temperature", "0", "--max-tokens", "40", "--threads", "1", "Once upon a time")
		if err := runGenerate(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v (stderr %s)", args, err, errOut.String())
		}
		if !strings.HasPrefix(out.String(), want) {
			t.Errorf("%v: stdout %q does not start with %q", args, out.String(), want)
		}
		if !strings.Contains(errOut.String(), "generated 40 tokens") {
			t.Errorf("%v: stderr %q lacks timings", args, errOut.String())
		}
	}
}

func TestGenerateSeedReproducible(t *testing.T) {
	gen := func(seed string) string {
		var out, errOut bytes.Buffer
		args := []string{"--model", storiesGGUFPath, "--template", "alpaca", "--temperature", "1", "--seed", seed,
			"--max-tokens", "30", "--threads", "1", "Tell me a story"}
		if err := runGenerate(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%v (stderr %s)", err, errOut.String())
		}
		return out.String()
	}
	a, b, c := gen("7"), gen("7"), gen("8")
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 gave the same text %q", a)
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--model", "", "x"},
		{"--model", "/nonexistent.gguf", "x"},
		{"--model", storiesGGUFPath, "--template", "nope", "x"},
		{"--model", storiesGGUFPath, "--max-tokens", "0", "x"},
		{"--model", storiesBinPath, "x"}, // llama2.c file: no tokenizer inside
	} {
		var out, errOut bytes.Buffer
		if err := runGenerate(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--model", storiesGGUFPath, "--prompt-tokens", "32", "--gen-tokens", "16", "--threads", "1", "--json"}
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v (stderr %s)", err, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	for _, k := range []string{"prefill_tok_s", "decode_tok_s", "wall_s"} {
		if v, ok := res[k].(float64); !ok || !(v > 0) {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["prompt_tokens"] != 32.0 || res["gen_tokens"] != 16.0 {
		t.Errorf("result %v", res)
	}
	if err := runBench(context.Background(), []string{"--model", storiesGGUFPath, "--prompt-tokens", "4000"}, &out, &errOut); err == nil {
		t.Error("prompt beyond the context length accepted")
	}
}

func TestBenchBestOfNJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--model", storiesGGUFPath, "--prompt-tokens", "24", "--gen-tokens", "8", "--n", "3",
		"--concurrency", "2", "--threads", "1", "--json"}
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v (stderr %s)", err, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	// The prompt is prefilled once for all 3 candidates, not 3 times.
	if res["prefill_tokens_evaluated"] != 24.0 {
		t.Errorf("prefill_tokens_evaluated = %v, want 24", res["prefill_tokens_evaluated"])
	}
	for _, k := range []string{"decode_ratio_vs_n1", "concurrent_wall_ratio", "decode_tok_s"} {
		if v, ok := res[k].(float64); !ok || !(v > 0) {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["concurrency"] != 2.0 {
		t.Errorf("concurrency = %v, want 2", res["concurrency"])
	}
	if err := runBench(context.Background(), []string{"--model", storiesGGUFPath, "--concurrency", "0"}, &out, &errOut); err == nil {
		t.Error("--concurrency 0 accepted")
	}
}

// TestGenerateContinuesPromptText checks that the generated text is exactly what decoding prompt + generated
// tokens adds after the prompt: the first generated token keeps its leading space (SentencePiece strips it only
// right after BOS, as llama2.c does), for prompts that end before a space and in the middle of a word.
func TestGenerateContinuesPromptText(t *testing.T) {
	for _, c := range []struct{ prompt, want string }{
		{"Once upon a", "Once upon a time, there was"},
		{"Once upon a time,", "Once upon a time, there was a little"},
		{"Lily went to the par", "Lily went to the park with her mom."},
	} {
		var out, errOut bytes.Buffer
		args := []string{"--model", storiesGGUFPath, "--raw", "--temperature", "0", "--max-tokens", "6", "--threads", "1", c.prompt}
		if err := runGenerate(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("%q: %v (stderr %s)", c.prompt, err, errOut.String())
		}
		if got := strings.TrimSuffix(out.String(), "\n"); !strings.HasPrefix(got, c.want) {
			t.Errorf("%q: printed %q, want it to start with %q", c.prompt, got, c.want)
		}
	}
}
