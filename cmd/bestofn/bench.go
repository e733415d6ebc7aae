package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/weights"
)

// benchOptions are the flags of `bestofn bench`, shared with benchEngine (bench_n.go) for --n > 1 or --concurrency > 1.
type benchOptions struct {
	Model        string
	PromptTokens int
	GenTokens    int
	N            int
	Concurrency  int
	Threads      int
	JSON         bool
	Seed         uint64
	FileLayout   bool
	ISA          kernels.ISA
	Layout       kernels.Layout
	Bandwidth    bool
	BandwidthMiB int
	Repeat       int
}

// benchResult is the JSON output of `bestofn bench --json` for --n 1.
type benchResult struct {
	Model        string  `json:"model"`
	Threads      int     `json:"threads"`
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	LoadS        float64 `json:"load_s"`
	PrefillS     float64 `json:"prefill_s"`
	DecodeS      float64 `json:"decode_s"`
	WallS        float64 `json:"wall_s"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
	// PrefillCPUS and DecodeCPUS are the process's CPU seconds (all threads) in each stage: on a shared
	// machine, tokens per CPU second times the thread count estimates the speed without the other load.
	PrefillCPUS float64 `json:"prefill_cpu_s"`
	DecodeCPUS  float64 `json:"decode_cpu_s"`
	// CPU is the processor's model name; ISA the kernels the matrix products ran.
	CPU string `json:"cpu"`
	ISA string `json:"kernels"`
	// Layout is the layout of the interleaved Q8_0 and Q4_0 matrices: panels or groups.
	Layout string `json:"layout"`
	// Limit is the decode speed against the machine's read bandwidth (nil with --bandwidth=false).
	*BandwidthLimit
}

// cpuSeconds returns the process's user+system CPU time in seconds (0 if unavailable).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// loadBenchModel loads o.Model and checks that the benchmark's prompt and generated tokens fit its context.
// The returned func releases the model and its checkpoint file.
func loadBenchModel(o benchOptions) (*weights.Checkpoint, *model.Model, func(), error) {
	ck, err := weights.Open(o.Model)
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := model.Load(ck, model.Options{Threads: o.Threads, FileLayout: o.FileLayout, ISA: o.ISA, Layout: o.Layout})
	if err != nil {
		ck.Close()
		return nil, nil, nil, err
	}
	release := func() { m.Close(); ck.Close() }
	if ctx := m.Config().ContextLen; o.PromptTokens+o.GenTokens > ctx {
		release()
		return nil, nil, nil, fmt.Errorf("%d prompt + %d generated tokens exceed the context length %d", o.PromptTokens,
			o.GenTokens, ctx)
	}
	return ck, m, release, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if rest, ok := trainBenchArgs(args); ok {
		return runBenchTrain(ctx, rest, stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.StringVar(&o.Model, "model", "", "model checkpoint (GGUF, safetensors dir, llama2.c .bin)")
	fs.IntVar(&o.PromptTokens, "prompt-tokens", 128, "prompt tokens, evaluated as one prefill batch")
	fs.IntVar(&o.GenTokens, "gen-tokens", 64, "tokens to decode one at a time after the prompt")
	fs.IntVar(&o.N, "n", 1, "candidates per request; > 1 runs the best-of-N engine")
	fs.IntVar(&o.Concurrency, "concurrency", 1, "also run this many concurrent requests against one alone (wall-time ratio)")
	fs.IntVar(&o.Threads, "threads", 0, "worker threads (0: one per CPU)")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object instead of text")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the random prompt tokens")
	fs.BoolVar(&o.FileLayout, "file-layout", false, "keep Q8_0 and Q4_0 weights in the file's layout (no interleaved copy)")
	isaName := fs.String("kernels", "auto", "kernels to run: auto (the widest this CPU runs), amx, avx512vnni, avxvnni, avx2 or go")
	layoutName := fs.String("layout", "auto", "layout of Q8_0 and Q4_0 weights for the AVX-512 kernels: auto (the faster on this CPU), panels or groups")
	fs.BoolVar(&o.Bandwidth, "bandwidth", true, "measure the read bandwidth between decode steps and report decode as a share of its limit (--n 1)")
	fs.IntVar(&o.BandwidthMiB, "bandwidth-mib", 0, "bandwidth buffer in MiB (0: max(1 GiB, 4 x the last-level cache))")
	fs.IntVar(&o.Repeat, "repeat", 1, "with --n > 1: run this many n=1 / n=N pairs and report the median decode ratio")
	fs.Bool("train", false, "measure training speed instead (bench --train -h lists its flags)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Model == "" {
		return errors.New("--model is required")
	}
	if o.PromptTokens < 1 || o.GenTokens < 0 || o.N < 1 || o.Concurrency < 1 || o.Threads < 0 || o.BandwidthMiB < 0 || o.Repeat < 1 {
		return errors.New("--prompt-tokens must be >= 1, --gen-tokens >= 0, --n >= 1, --concurrency >= 1, --threads >= 0, --bandwidth-mib >= 0, --repeat >= 1")
	}
	var err error
	if o.ISA, err = kernels.ParseISA(*isaName); err != nil {
		return err
	}
	if o.Layout, err = kernels.ParseLayout(*layoutName); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.N > 1 || o.Concurrency > 1 {
		return benchEngine(ctx, o, stdout, stderr)
	}

	start := time.Now()
	ck, m, closeModel, err := loadBenchModel(o)
	if err != nil {
		return err
	}
	defer closeModel()
	cfg := m.Config()
	cache, err := model.NewKVCache(cfg, model.CacheOptions{MaxTokens: o.PromptTokens + o.GenTokens})
	if err != nil {
		return err
	}
	seq, err := cache.NewSeq()
	if err != nil {
		return err
	}
	loadS := time.Since(start).Seconds()

	prompt := model.Batch{Tokens: benchPrompt(o.Seed, o.PromptTokens, cfg.VocabSize),
		Seqs: make([]model.SeqID, o.PromptTokens)}
	for i := range prompt.Seqs {
		prompt.Seqs[i] = seq
	}
	logits := make([]float32, cfg.VocabSize)
	threads := o.Threads
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	var probe *bandwidthProbe
	if o.Bandwidth && o.GenTokens > 0 {
		if probe, err = newBandwidthProbe(o.BandwidthMiB, threads, m.ISA()); err != nil {
			return err
		}
		defer probe.close()
	}

	t0, c0 := time.Now(), cpuSeconds()
	if err := m.Forward(cache, prompt, logits); err != nil {
		return err
	}
	prefillS, c1 := time.Since(t0).Seconds(), cpuSeconds()

	// Greedy decode, one token per Forward call, as a single-user generation does. With the bandwidth probe,
	// a pass of it runs before the first step and after every probeEvery steps, outside the decode timing.
	const probeEvery = 4
	step := model.Batch{Tokens: make([]int32, 1), Seqs: []model.SeqID{seq}}
	var decode time.Duration
	var decodeCPU float64
	for i := 0; i < o.GenTokens; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if probe != nil && i%probeEvery == 0 {
			probe.pass()
		}
		t1, c1 := time.Now(), cpuSeconds()
		step.Tokens[0] = argmaxLogits(logits)
		if err := m.Forward(cache, step, logits); err != nil {
			return err
		}
		d := time.Since(t1)
		decode += d
		decodeCPU += cpuSeconds() - c1
		if probe != nil {
			probe.step(d)
		}
	}
	decodeS := decode.Seconds()

	res := benchResult{
		Model: o.Model, Threads: o.Threads, PromptTokens: o.PromptTokens, GenTokens: o.GenTokens,
		LoadS: loadS, PrefillS: prefillS, DecodeS: decodeS, WallS: time.Since(start).Seconds(),
		PrefillTokS: float64(o.PromptTokens) / prefillS, PrefillCPUS: c1 - c0, DecodeCPUS: decodeCPU,
		CPU: cpuModel(), ISA: m.ISA().String(), Layout: m.Layout().String(),
	}
	if res.Threads == 0 {
		res.Threads = -1 // one per CPU
	}
	if decodeS > 0 {
		res.DecodeTokS = float64(o.GenTokens) / decodeS
	}
	if probe != nil {
		l := probe.limit(m.WeightBytesPerToken(), res.DecodeTokS)
		res.BandwidthLimit = &l
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "model %s: dim %d, %d layers, %d/%d heads, ffn %d, vocab %d, output %s\n", o.Model, cfg.Dim,
		cfg.NLayers, cfg.NHeads, cfg.NKVHeads, cfg.HiddenDim, cfg.VocabSize, tensorType(ck))
	fmt.Fprintf(stdout, "cpu:     %s, kernels %s (layout %s), %d threads\n", res.CPU, res.ISA, res.Layout, threads)
	fmt.Fprintf(stdout, "load:    %8.3f s\n", loadS)
	fmt.Fprintf(stdout, "prefill: %5d tokens in %8.3f s = %9.2f tok/s\n", o.PromptTokens, prefillS, res.PrefillTokS)
	fmt.Fprintf(stdout, "decode:  %5d tokens in %8.3f s = %9.2f tok/s\n", o.GenTokens, decodeS, res.DecodeTokS)
	fmt.Fprintf(stdout, "cpu time: prefill %.3f s, decode %.3f s (all threads)\n", res.PrefillCPUS, res.DecodeCPUS)
	if res.BandwidthLimit != nil {
		fmt.Fprintf(stdout, "limit:   %v\n", res.BandwidthLimit)
	}
	return nil
}

// tensorType names the type of the first layer's attention query weight, as a summary of the file's type.
func tensorType(ck *weights.Checkpoint) string {
	if t := ck.Tensor("blk.0.attn_q.weight"); t != nil {
		return "weights " + t.Type.String()
	}
	return "weights ?"
}

// benchPrompt returns a deterministic prompt of n ordinary (non-special) token ids for a seed.
func benchPrompt(seed uint64, n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 0x62656e6368))
	prompt := make([]int32, n)
	for i := range prompt {
		prompt[i] = int32(3 + rng.IntN(max(1, vocab-3)))
	}
	return prompt
}

// argmaxLogits returns the index of the largest logit (the lowest index on ties).
func argmaxLogits(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// startCPUProfile starts a CPU profile written to path; the returned function stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
