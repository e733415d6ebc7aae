package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/bestofn/bestofn/defaults"
)

// The names of the embedded default models (package defaults) where a path is expected: the default of
// --model and --reward-model, and usable in a --config file (model: embedded:generator, reward_model:
// embedded:reward-model).
const (
	embeddedGenerator   = "embedded:generator"
	embeddedRewardModel = "embedded:reward-model"
)

// embeddedModels materializes the embedded defaults into the user cache directory and returns their paths.
func embeddedModels() (defaults.Paths, error) {
	dir, err := defaults.CacheDir()
	if err != nil {
		return defaults.Paths{}, err
	}
	return defaults.Materialize(dir)
}

// resolveEmbedded replaces the embedded models' names in cfg with their materialized paths (materializing them
// only when some generator names one) and logs which models are the embedded defaults.
func resolveEmbedded(cfg *serveConfig, logger *slog.Logger) error {
	used := false
	for _, g := range cfg.Generators {
		used = used || g.Model == embeddedGenerator || g.RewardModel == embeddedRewardModel
	}
	if !used {
		return nil
	}
	p, err := embeddedModels()
	if err != nil {
		return err
	}
	for i := range cfg.Generators {
		g := &cfg.Generators[i]
		if g.Model == embeddedGenerator {
			g.Model = p.Generator
			logger.Info("generator: embedded default", "generator", g.Name, "path", p.Generator)
		}
		if g.RewardModel == embeddedRewardModel {
			g.RewardModel = p.RewardModel
			logger.Info("reward model: embedded default", "generator", g.Name, "path", p.RewardModel)
		}
	}
	logger.Info("embedded default models", "dir", p.Dir, "written_now", p.Created, "card", "defaults/MODEL_CARD.md")
	return nil
}

// modelOrEmbedded is path, or the embedded model's materialized path when path names it; embedded says which.
func modelOrEmbedded(path string, reward bool) (resolved string, embedded bool, err error) {
	name, pick := embeddedGenerator, func(p defaults.Paths) string { return p.Generator }
	if reward {
		name, pick = embeddedRewardModel, func(p defaults.Paths) string { return p.RewardModel }
	}
	if path != name {
		return path, false, nil
	}
	p, err := embeddedModels()
	if err != nil {
		return "", false, err
	}
	return pick(p), true, nil
}

// runDefaults is `bestofn defaults [--cache-dir DIR]`: writes the embedded default models out (once; see
// defaults.Materialize) and prints where they are, with each file's size and sha256, as JSON. The image runs it
// at build time so that its server finds them without writing.
func runDefaults(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("cache-dir", "", "write them under this directory (default: the user cache, $XDG_CACHE_HOME/bestofn/defaults or ~/.cache/bestofn/defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var p defaults.Paths
	var err error
	if *dir == "" {
		p, err = embeddedModels()
	} else {
		p, err = defaults.Materialize(*dir)
	}
	if err != nil {
		return err
	}
	files, err := defaults.Files()
	if err != nil {
		return err
	}
	type file struct {
		Path   string `json:"path"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	out := struct {
		Dir         string `json:"dir"`
		Generator   string `json:"generator"`
		RewardModel string `json:"reward_model"`
		Digest      string `json:"digest"`
		WrittenNow  bool   `json:"written_now"`
		Files       []file `json:"files"`
		Card        string `json:"card"`
	}{Dir: p.Dir, Generator: p.Generator, RewardModel: p.RewardModel, Digest: p.Digest, WrittenNow: p.Created,
		Card: "defaults/MODEL_CARD.md in the bestofn repository"}
	for _, f := range files {
		out.Files = append(out.Files, file{f.Path, f.Size, f.SHA256})
	}
	return printJSON(stdout, out)
}
