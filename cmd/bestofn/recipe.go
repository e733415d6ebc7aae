package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bestofn/bestofn/recipe"
)

// runRecipe runs the recipe that makes the default models (package recipe):
//
//	bestofn recipe [flags] default|smoke|tiny
func runRecipe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recipe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("base", "", "base generator GGUF (stories260K)")
	hh := fs.String("hh", "", "HH-RLHF preference pairs (JSONL or .jsonl.gz: rows {chosen, rejected})")
	extra := fs.String("extra-pairs", "", "more preference files for train-reward, comma-separated")
	clearCut := fs.String("clear-cut", "", "clear-cut harm pairs {prompt, chosen, rejected} to check the reward model on (not trained on)")
	rmTok := fs.String("rm-tokenizer", "", "tokenizer of the reward model trained from scratch (a GGUF, tokenizer.model or tokenizer.bin)")
	work := fs.String("work", "", "work directory: data directories, logs, downloads (default: a new temporary directory)")
	out := fs.String("out", "defaults", "output directory: generator.gguf, reward-model/, eval/, recipe.json")
	seed := fs.Uint64("seed", 1, "seed of the instructions, the jobs and the bootstrap")
	hhSeed := fs.Uint64("hh-seed", 1234, "seed of HH-RLHF's held-out part (trainjobs' quality check: 1234)")
	hhFraction := fs.Float64("hh-heldout", 1.0/3, "fraction of HH-RLHF held out (trainjobs' quality check: 1/3)")
	threads := fs.Int("threads", 2, "CPU threads of the servers and jobs")
	cardCommand := fs.String("card-command", "", "the command line the model card names as the one that rebuilt the models (default: this one)")
	cardCommit := fs.String("card-commit", "unknown", "the repository commit the model card names")
	cardOnly := fs.Bool("card-only", false, "only (re)write OUT/MODEL_CARD.md and OUT/eval/examples.md from OUT's recipe.json and eval/")
	fs.Usage = func() {
		sizes := []string{}
		for k := range recipe.Sizes() {
			sizes = append(sizes, k)
		}
		sort.Strings(sizes)
		fmt.Fprintf(stderr, "usage: bestofn recipe [flags] %s\n", strings.Join(sizes, "|"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one size name")
	}
	size, ok := recipe.Sizes()[fs.Arg(0)]
	if !ok {
		return fmt.Errorf("unknown size %q", fs.Arg(0))
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if *cardCommand == "" {
		*cardCommand = "bestofn recipe " + strings.Join(args, " ")
	}
	card := recipe.CardInfo{Command: *cardCommand, Commit: *cardCommit}
	if *cardOnly {
		return recipe.WriteModelCard(outDir, card)
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if *work == "" {
		if *work, err = os.MkdirTemp("", "bestofn-recipe-"); err != nil {
			return err
		}
	}
	var extras []string
	for _, p := range strings.Split(*extra, ",") {
		if p = strings.TrimSpace(p); p != "" {
			extras = append(extras, p)
		}
	}
	sum, err := recipe.Run(ctx, recipe.Config{Binary: bin, WorkDir: *work, OutDir: outDir, BaseModel: *base, HHPairs: *hh,
		ExtraPairs: extras, ClearCutPairs: *clearCut, RMTokenizer: *rmTok, Seed: *seed, HHSeed: *hhSeed, HHFraction: *hhFraction, Threads: *threads, Size: size, Log: stderr})
	if sum != nil {
		for _, s := range sum.Steps {
			fmt.Fprintf(stdout, "%-14s %8.1f s\n", s.Name, s.Seconds)
		}
	}
	if err != nil {
		return fmt.Errorf("%w (work directory %s)", err, *work)
	}
	fmt.Fprintf(stdout, "%-14s %8.1f s\nwrote %s (work directory %s)\n", "total", sum.TotalSecs, outDir, *work)
	return recipe.WriteModelCard(outDir, card)
}
