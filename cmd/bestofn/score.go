package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/bestofn/bestofn/reward"
)

// runScore scores candidate responses to one prompt with a reward model and prints one JSON object per candidate:
//
//	bestofn score [--reward-model DIR] [--runtime go|ort|auto] --prompt TEXT CANDIDATE...
//
// Without --reward-model it scores with the embedded default reward model.
func runScore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("reward-model", embeddedRewardModel, "reward model directory (model.onnx, tokenizer.json, config.json); "+embeddedRewardModel+" is the default built into bestofn")
	runtime := fs.String("runtime", reward.RuntimeAuto, "runtime: go (pure Go), ort (ONNX Runtime) or auto")
	ortLib := fs.String("ort-lib", "", "path of libonnxruntime.so (default: $BESTOFN_ORT_LIB, then .cache/ort/...)")
	prompt := fs.String("prompt", "", "the prompt the candidates answer")
	template := fs.String("template", "", fmt.Sprintf("how prompt and response are joined (default: the model's, else %q)", reward.DefaultTemplate))
	maxLen := fs.Int("max-length", 0, "most tokens per input (default: the model's max_position_embeddings)")
	batch := fs.Int("batch", 0, "candidates per forward pass (default 8)")
	details := fs.Bool("details", false, "also print token counts and truncation")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bestofn score [--reward-model DIR] [--runtime go|ort|auto] --prompt TEXT CANDIDATE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--reward-model is empty (leave it out for the embedded default)")
	}
	cands := fs.Args()
	if len(cands) == 0 {
		return errors.New("no candidates: pass them as arguments after the flags")
	}
	path, embedded, err := modelOrEmbedded(*dir, true)
	if err != nil {
		return err
	}
	if embedded {
		fmt.Fprintf(stderr, "reward model: embedded default (%s)\n", path)
	}
	m, err := reward.Load(path, reward.Options{Runtime: *runtime, ORTLibrary: *ortLib, BatchSize: *batch, MaxLength: *maxLen, Template: *template})
	if err != nil {
		return err
	}
	defer m.Close()
	scored, err := m.ScoreDetails(ctx, *prompt, cands)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for i, s := range scored {
		var v any = struct {
			Index int     `json:"index"`
			Score float32 `json:"score"`
		}{i, s.Score}
		if *details {
			v = struct {
				Index     int     `json:"index"`
				Score     float32 `json:"score"`
				Tokens    int     `json:"tokens"`
				Truncated bool    `json:"truncated"`
				Runtime   string  `json:"runtime"`
			}{i, s.Score, s.Tokens, s.Truncated, m.Runtime()}
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}
