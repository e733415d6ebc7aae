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

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/sampler"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "model checkpoint (GGUF, safetensors dir, llama2.c .bin)")
	tokPath := fs.String("tokenizer", "", "tokenizer file (default: the one inside a GGUF model)")
	raw := fs.Bool("raw", false, "no chat template: BOS then the prompt, like llama2.c's run")
	template := fs.String("template", "", "chat template name (alpaca, llama2, vicuna, chatml); default: the model's")
	var p sampler.Params
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
		return errors.New("--model is required")
	}
	if *maxTokens < 1 || *threads < 0 {
		return errors.New("--max-tokens must be >= 1 and --threads >= 0")
	}
	prompt := strings.Join(fs.Args(), " ")

	start := time.Now()
	ck, err := weights.Open(*modelPath)
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

	var ids []int32
	if *raw {
		ids = tok.Encode(prompt, true, false)
	} else {
		segs, addBOS, note, err := applyTemplate(*template, tok, prompt)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintf(stderr, "chat template: alpaca (%s)\n", note)
		}
		ids = tok.EncodeSegments(segs, addBOS)
	}
	if len(ids) == 0 {
		ids = []int32{tok.BOS()}
	}
	if len(ids) >= cfg.ContextLen {
		return fmt.Errorf("prompt of %d tokens does not fit the context length %d", len(ids), cfg.ContextLen)
	}
	budget := min(*maxTokens, cfg.ContextLen-len(ids))
	cache, err := model.NewKVCache(cfg, model.CacheOptions{MaxTokens: len(ids) + budget})
	if err != nil {
		return err
	}
	seq, err := cache.NewSeq()
	if err != nil {
		return err
	}
	smp, err := sampler.New(p, cfg.VocabSize)
	if err != nil {
		return err
	}
	stop, err := sampler.NewStopper(sampler.StopConfig{MaxTokens: budget, IsEOG: tok.IsEOG})
	if err != nil {
		return err
	}
	for _, id := range ids {
		smp.Accept(id)
	}
	loadS := time.Since(start).Seconds()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	fmt.Fprint(out, prompt)
	if !*raw {
		fmt.Fprintln(out)
	}
	out.Flush()

	logits := make([]float32, cfg.VocabSize)
	batch := model.Batch{Tokens: ids, Seqs: make([]model.SeqID, len(ids))}
	for i := range batch.Seqs {
		batch.Seqs[i] = seq
	}
	t0 := time.Now()
	if err := m.Forward(cache, batch, logits); err != nil {
		return err
	}
	prefillS := time.Since(t0).Seconds()

	dec := tok.NewDecoder(ids)
	step := model.Batch{Tokens: make([]int32, 1), Seqs: []model.SeqID{seq}}
	generated := 0
	reason := sampler.NotStopped
	t1 := time.Now()
	for reason == sampler.NotStopped {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, _ := smp.Sample(logits)
		smp.Accept(id)
		generated++
		var piece string
		piece, reason = stop.Next(id, dec.Next(id))
		out.WriteString(piece)
		out.Flush()
		if reason != sampler.NotStopped {
			break
		}
		step.Tokens[0] = id
		if err := m.Forward(cache, step, logits); err != nil {
			return err
		}
	}
	decodeS := time.Since(t1).Seconds()
	fmt.Fprint(out, dec.Flush())
	fmt.Fprintln(out)
	out.Flush()

	fmt.Fprintf(stderr, "load %.3f s; prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s); stop: %v\n",
		loadS, len(ids), prefillS, float64(len(ids))/prefillS, generated, decodeS, float64(generated)/decodeS, reason)
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

// applyTemplate renders prompt as one user message with the named built-in chat template or, when name is
// "", the model's own GGUF template (falling back to alpaca, the paper's format). It returns the segments to
// encode (control-token text of the prompt stays text), whether to add BOS, and why the fallback was used
// ("" if it was not).
func applyTemplate(name string, tok *tokenizer.Tokenizer, prompt string) (segs []tokenizer.Segment, addBOS bool, note string, err error) {
	bos, eos := tok.TokenText(tok.BOS()), tok.TokenText(tok.EOS())
	var t chat.Template
	if name != "" {
		t, err = chat.Lookup(name)
	} else {
		t, note, err = chat.Select(tok.ChatTemplate(), "alpaca", bos, eos)
	}
	if err != nil {
		return nil, false, "", err
	}
	parts, err := chat.RenderParts(t, []chat.Message{{Role: chat.RoleUser, Content: prompt}}, tok.ControlTexts())
	if err != nil {
		return nil, false, "", err
	}
	var text strings.Builder
	for _, p := range parts {
		segs = append(segs, tokenizer.Segment{Text: p.Text, Special: p.Special})
		text.WriteString(p.Text)
	}
	return segs, chat.AddBOS(text.String(), bos, tok.AddBOSDefault()), note, nil
}
