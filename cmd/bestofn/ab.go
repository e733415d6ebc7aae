package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/pipeline"
	"github.com/bestofn/bestofn/teacher"
)

// runAB holds the A/B experiment tools: `bestofn ab report`.
func runAB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "report" {
		fmt.Fprintln(stderr, "usage: bestofn ab report --log FILE [flags]  (bestofn ab report -h lists them)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("want the subcommand report")
	}
	return runABReport(ctx, args[1:], stdout, stderr)
}

// runABReport judges the answers of an A/B log and prints the live A/B report (pipeline.ABReport): the win
// rate of the treatment over the control with a 95% CI, each variant's mean score, and the latency cost read
// from a server's /metrics (or the log's latency fields):
//
//	bestofn ab report --log ab.jsonl --reward-model DIR [--server URL] [--json]
//	bestofn ab report --log ab.jsonl --teacher-url URL --teacher-model M [--api-key-env VAR] [--server URL]
func runABReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ab report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logPath := fs.String("log", "", "the server's A/B log (serve --ab-log FILE)")
	serverURL := fs.String("server", "", "a server whose /metrics gives each variant's latency (default: the log's latency fields, if any)")
	model := fs.String("model", "", "only records (and histogram series) of this model or experiment name")
	treatment := fs.String("treatment", "R1", "treatment variant")
	control := fs.String("control", "B", "control variant")
	since := fs.String("since", "", "only records at or after this RFC 3339 time")
	limit := fs.Int("limit", 0, "only the latest N records of each variant (0: all)")
	rewardModel := fs.String("reward-model", "", "judge with this reward model directory (one not used for ranking)")
	runtime := fs.String("runtime", "auto", "reward model runtime: go, ort or auto")
	rules := fs.Bool("rules", false, "judge with the rule checks of verifiable instructions")
	var tc teacher.Config
	fs.StringVar(&tc.BaseURL, "teacher-url", "", "judge with this teacher: its OpenAI base URL (http://host/v1) or Ollama root")
	fs.StringVar(&tc.Model, "teacher-model", "", "the teacher's model name")
	fs.StringVar(&tc.Provider, "teacher-provider", teacher.ProviderOpenAI, "openai or ollama")
	fs.StringVar(&tc.APIKeyEnv, "api-key-env", "", "environment variable holding the teacher's API key")
	fs.IntVar(&tc.Concurrency, "concurrency", 4, "teacher requests at once")
	fs.Float64Var(&tc.RequestsPerMinute, "rpm", 0, "teacher requests per minute (0: unlimited)")
	seed := fs.Uint64("seed", 1, "bootstrap seed")
	asJSON := fs.Bool("json", false, "print the report as JSON (default: a Markdown summary)")
	plotPrefix := fs.String("plot", "", "also write the report's plot to PREFIX.svg and PREFIX.png")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bestofn ab report --log FILE (--reward-model DIR | --rules | --teacher-url URL --teacher-model M) [--server URL] [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logPath == "" {
		return errors.New("--log is required")
	}
	spec := pipeline.RaterSpec{Judge: "teacher", Teacher: &tc}
	switch {
	case *rewardModel != "" && (*rules || tc.BaseURL != ""), *rules && tc.BaseURL != "":
		return errors.New("give one judge: --reward-model, --rules or --teacher-url")
	case *rewardModel != "":
		spec = pipeline.RaterSpec{Judge: "scorer", Scorer: &pipeline.ScorerSpec{Kind: pipeline.ScorerRewardModel, Path: *rewardModel, Runtime: *runtime}}
	case *rules:
		spec = pipeline.RaterSpec{Judge: "scorer", Scorer: &pipeline.ScorerSpec{Kind: pipeline.ScorerRules}}
	case tc.BaseURL == "":
		return errors.New("no judge: give --reward-model DIR, --rules or --teacher-url URL --teacher-model M")
	}
	cfg := pipeline.ABReportConfig{Model: *model, Treatment: *treatment, Control: *control, Limit: *limit, MetricsURL: *serverURL, Seed: *seed}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		cfg.Since = t
	}
	var err error
	if cfg.Records, cfg.Skipped, err = pipeline.ReadABLogFile(*logPath); err != nil {
		return err
	}
	rater, closeRater, workers, err := pipeline.OpenRater(ctx, spec, pipeline.Options{}, func(level, msg string, data map[string]any) {
		fmt.Fprintf(stderr, "%s: %s %v\n", level, msg, data)
	})
	if err != nil {
		return err
	}
	defer closeRater()
	cfg.Rater, cfg.Workers = rater, workers
	cfg.Progress = judgeProgress(stderr)
	rep, err := pipeline.BuildABReport(ctx, cfg)
	if err != nil {
		return err
	}
	if *plotPrefix != "" {
		fig, err := pipeline.ABReportPlot(rep)
		if err != nil {
			return err
		}
		for ext, b := range map[string][]byte{".svg": fig.SVG, ".png": fig.PNG} {
			if err := os.WriteFile(*plotPrefix+ext, b, 0o644); err != nil {
				return err
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(stdout, pipeline.ABReportMarkdown(rep))
	return err
}

// judgeProgress shows how many answers are judged as the job CLI shows a job (a bar on a terminal, plain lines
// otherwise); it is called from the judging goroutines.
func judgeProgress(w io.Writer) func(done, total int) {
	view := newProgressView(w)
	var mu sync.Mutex
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		st := jobs.StatusRunning
		if done == total {
			st = jobs.StatusSucceeded
		}
		view.update(jobs.Job{ID: "ab-report", Status: st, Progress: jobs.Progress{Done: int64(done), Total: int64(total), Unit: "answers"}})
	}
}
