package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/bestofn/bestofn/kernels/gemm"
	"github.com/bestofn/bestofn/train"
)

// trainBenchArgs reports whether args ask for the training benchmark (--train anywhere among them) and
// returns them without that flag.
func trainBenchArgs(args []string) ([]string, bool) {
	for i, a := range args {
		if a == "--train" || a == "-train" {
			return append(append([]string(nil), args[:i]...), args[i+1:]...), true
		}
	}
	return args, false
}

// trainBenchReport is the JSON output of `bestofn bench --train --json`.
type trainBenchReport struct {
	CPU     string `json:"cpu"`
	ISA     string `json:"isa"`
	Threads int    `json:"threads"`
	// PeakFLOPS is the FP32 FMA peak measured on Threads threads (gemm.PeakFLOPS).
	PeakFLOPS float64            `json:"peak_flop_s"`
	Shapes    []trainBenchResult `json:"shapes"`
}

type trainBenchResult struct {
	train.BenchResult
	// PeakShare is FLOPS (6 per parameter per token) over PeakFLOPS.
	PeakShare float64 `json:"peak_share"`
	// PeakRSSMB is the process's peak resident memory while this shape ran (VmHWM, reset before each).
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// runBenchTrain is `bestofn bench --train`: training tokens/s, share of the FP32 peak and peak memory at
// the shapes of train.BenchShapes.
func runBenchTrain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench --train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	shapes := fs.String("shape", "all", "shape to run: 260k, 1m, 15m or all")
	steps := fs.Int("steps", 3, "timed optimizer steps per shape, after one warm-up step")
	threads := fs.Int("threads", 2, "training threads (0: one per CPU); leave cores free for serving")
	peakFor := fs.Duration("peak-time", time.Second, "how long to measure the FP32 FMA peak")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *steps < 1 || *threads < 0 {
		return fmt.Errorf("--steps must be >= 1 and --threads >= 0")
	}
	if *threads == 0 {
		*threads = runtime.NumCPU()
	}
	var run []train.BenchShape
	for _, sh := range train.BenchShapes() {
		if *shapes == "all" || *shapes == sh.Name {
			run = append(run, sh)
		}
	}
	if len(run) == 0 {
		return fmt.Errorf("unknown --shape %q (260k, 1m, 15m or all)", *shapes)
	}
	rep := trainBenchReport{CPU: cpuModel(), ISA: gemm.ISA(), Threads: *threads,
		PeakFLOPS: gemm.PeakFLOPS(*threads, *peakFor)}
	if !*asJSON {
		fmt.Fprintf(stdout, "cpu: %s (%s), %d threads, FP32 peak %.1f GFLOP/s\n", rep.CPU, rep.ISA, rep.Threads,
			rep.PeakFLOPS/1e9)
	}
	for _, sh := range run {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		res, err := train.BenchTrain(sh, *threads, *steps)
		if err != nil {
			return fmt.Errorf("shape %s: %w", sh.Name, err)
		}
		r := trainBenchResult{BenchResult: res, PeakRSSMB: peakRSSMB()}
		if rep.PeakFLOPS > 0 {
			r.PeakShare = res.FLOPS / rep.PeakFLOPS
		}
		rep.Shapes = append(rep.Shapes, r)
		if !*asJSON {
			fmt.Fprintf(stdout, "%-5s %6.2fM params, batch %d x %d: %8.1f tok/s, %6.2f GFLOP/s (%4.1f%% of peak), peak RSS %.0f MB\n",
				sh.Name, float64(res.Params)/1e6, res.Batch, res.SeqLen, res.TokensPerSecond, res.FLOPS/1e9,
				100*r.PeakShare, r.PeakRSSMB)
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	return nil
}

// cpuModel is /proc/cpuinfo's first "model name", or the architecture when there is none.
func cpuModel() string {
	if v := cpuInfoField("model name"); v != "" {
		return v
	}
	return runtime.GOARCH
}

// cpuInfoField returns the value of /proc/cpuinfo's first line for key ("model name", "vendor_id"), or "".
func cpuInfoField(key string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// resetPeakRSS restarts the kernel's peak-RSS count (VmHWM) of this process (Linux; a no-op elsewhere).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB is VmHWM from /proc/self/status in MB (0 when unavailable).
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
