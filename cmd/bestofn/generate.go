package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/server"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", embeddedGenerator, "model checkpoint (GGUF, safetensors dir, llama2.c .bin); "+embeddedGenerator+" is the default built into bestofn")
	tokPath := fs.String("tokenizer", "", "tokenizer file (default: the one inside a GGUF model)")
	raw := fs.Bool("raw", false, "no chat template: BOS then the prompt, like llama2.c's run")
	template := fs.String("template", "", "chat template name (alpaca, llama2, vicuna, chatml); default: the model's")
	var p engine.SamplingParams
	fs.Func("temperature", "sampling temperature, 0 = greedy (default 1)", floatFlag(&p.Temperature))
	p.Temperature = 1
	fs.Func("top-p", "nucleus sampling threshold (default 1 = off)", floatFlag(&p.TopP))
	p.TopP = 1
	fs.IntVar(&p.TopK, "top-k", 0, "keep only the k most likely tokens (0 = off)")
	fs.Uint64Var(&p.Seed, "seed", 1, "random seed (the same seed and prompt reproduce the same text)")
	maxTokens := fs.Int("max-tokens", 256, "maximum tokens to generate")
	threads := fs.Int("threads", 0, "worker threads (0: one per CPU)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" {
		return errors.New("--model is empty (leave it out for the embedded default)")
	}
	if *maxTokens < 1 || *threads < 0 {
		return errors.New("--max-tokens must be >= 1 and --threads >= 0")
	}
	prompt := strings.Join(fs.Args(), " ")

	start := time.Now()
	path, embedded, err := modelOrEmbedded(*modelPath, false)
	if err != nil {
		return err
	}
	if embedded {
		fmt.Fprintf(stderr, "generator: embedded default (%s)\n", path)
	}
	ck, err := weights.Open(path)
	if err != nil {
		return err
	}
	defer ck.Close()
	m, err := model.Load(ck, model.Options{Threads: *threads})
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	var tok *tokenizer.Tokenizer
	if *tokPath != "" {
		tok, err = tokenizer.Load(*tokPath)
	} else {
		tok, err = tokenizer.FromMetadata(ck.Metadata)
		if err != nil {
			err = fmt.Errorf("%w (give --tokenizer for checkpoints without one)", err)
		}
	}
	if err != nil {
		return err
	}
	if tok.VocabSize() > cfg.VocabSize {
		return fmt.Errorf("tokenizer has %d tokens, the model only %d", tok.VocabSize(), cfg.VocabSize)
	}

	// One generation path: the engine's, as the server uses it (one sequence, no scorer).
	eng, err := engine.New(m, tok, nil, engine.Config{MaxQueue: 1, MaxActiveSeqs: 1, MaxN: 1, KVTokens: cfg.ContextLen})
	if err != nil {
		return err
	}
	defer eng.Close()
	// As many tokens as the context leaves, at most --max-tokens.
	req := engine.Request{Prompt: prompt, DefaultMaxTokens: *maxTokens, Sampling: p}
	if !*raw {
		tmpl, note, err := chatTemplate(*template, tok)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintf(stderr, "chat template: alpaca (%s)\n", note)
		}
		if req.PromptParts, err = tmpl.Render([]server.Message{{Role: chat.RoleUser, Content: prompt}}); err != nil {
			return err
		}
	}
	loadS := time.Since(start).Seconds()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	fmt.Fprint(out, prompt)
	if !*raw {
		fmt.Fprintln(out)
	}
	out.Flush()
	answered := *raw                      // a chat answer starts at its first character that is not white space, as the server's
	req.OnEvent = func(ev engine.Event) { // the scheduler's goroutine; printing is quick
		text := ev.Text
		if !answered {
			text = strings.TrimLeftFunc(text, unicode.IsSpace)
			answered = text != ""
		}
		out.WriteString(text)
		out.Flush()
	}
	res, err := eng.Generate(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	out.Flush()

	c, t := res.Candidates[0], res.Timings
	fmt.Fprintf(stderr, "load %.3f s; prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s); stop: %s\n",
		loadS, res.PromptTokens, t.Prefill.Seconds(), float64(res.PromptTokens)/t.Prefill.Seconds(), len(c.Tokens),
		t.Decode.Seconds(), float64(len(c.Tokens))/t.Decode.Seconds(), c.FinishReason)
	return nil
}

// floatFlag parses a float32 flag value into dst.
func floatFlag(dst *float32) func(string) error {
	return func(s string) error {
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		*dst = float32(v)
		return nil
	}
}
