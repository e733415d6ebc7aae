// Command bestofn serves instruction-tuned LLaMA-family models with reward-model reranking, and holds the tools
// around it: tokenize, generate, bench, synth, convert, score, defaults, and the admin CLI (job, files, models).
// With no model flags, serve, generate and score use the default models embedded in the binary (package
// defaults).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: it parses its own flags from args and writes to stdout/stderr.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP server (OpenAI and Ollama APIs)", runServe},
		{"generate", "generate text from a prompt", runGenerate},
		{"bench", "measure prefill and decode speed", runBench},
		{"tokenize", "print token ids of each stdin line", runTokenize},
		{"score", "score candidates with a reward model", runScore},
		{"convert", "convert a llama2.c or safetensors checkpoint to GGUF", runConvert},
		{"synth", "write a GGUF LLaMA with random weights for speed runs", runSynth},
		{"ab", "A/B experiment tools: ab report (win rate and latency cost from the A/B log)", runAB},
		{"job", "submit, list, show, follow, cancel, retry jobs on a server; run one in-process", runSubcommands("job", jobCommands())},
		{"files", "upload, list, show, download, delete files on a server", runSubcommands("files", fileCommands())},
		{"models", "register, list and activate (hot swap) models on a server", runSubcommands("models", modelCommands())},
		{"health", "check a server's /readyz (exit 0 when ready): the container's health check", runHealth},
		{"defaults", "write the embedded default models to the cache (once) and print their paths", runDefaults},
		{"recipe", "run the recipe that makes the default models (teacher data, sft, feedback, train-reward, evaluate)", runRecipe},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0 // the flag package has printed the command's usage
			}
			if err != nil {
				fmt.Fprintf(stderr, "bestofn %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "bestofn: unknown command %q\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: bestofn COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'bestofn COMMAND -h' for a command's flags.")
}
