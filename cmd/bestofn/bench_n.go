package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/bestofn/bestofn/engine"
)

// benchNResult is the JSON output of `bestofn bench --n N` (N > 1) and of the concurrency mode. The top-level
// prefill/decode/wall figures are those of the best-of-N request; Baseline holds the n=1 request with the same
// prompt and length, run in the same invocation.
type benchNResult struct {
	Model        string  `json:"model"`
	Threads      int     `json:"threads"`
	PromptTokens int     `json:"prompt_tokens"`
	GenTokens    int     `json:"gen_tokens"`
	N            int     `json:"n"`
	CPU          string  `json:"cpu"`
	ISA          string  `json:"kernels"`
	Layout       string  `json:"layout"`
	LoadS        float64 `json:"load_s"`
	PrefillS     float64 `json:"prefill_s"`
	DecodeS      float64 `json:"decode_s"`
	WallS        float64 `json:"wall_s"`
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"` // tokens of all N candidates per second
	// PrefillEvaluated is the number of prompt tokens the engine evaluated for the best-of-N request: equal to
	// PromptTokens when the prompt is prefilled once and shared by the N candidates.
	PrefillEvaluated int `json:"prefill_tokens_evaluated"`
	Baseline         struct {
		PrefillS   float64 `json:"prefill_s"`
		DecodeS    float64 `json:"decode_s"`
		WallS      float64 `json:"wall_s"`
		DecodeTokS float64 `json:"decode_tok_s"`
	} `json:"baseline_n1"`
	// DecodeRatio is the best-of-N decode wall time over the n=1 decode wall time.
	DecodeRatio float64 `json:"decode_ratio_vs_n1"`
	// With --repeat R > 1: the ratio of each of the R pairs (n=1 then n=N on the same prompt, the first pair
	// the one above) and their median, steadier than one pair on a shared machine.
	DecodeRatios      []float64 `json:"decode_ratios,omitempty"`
	DecodeRatioMedian float64   `json:"decode_ratio_median,omitempty"`

	// Concurrency mode: C concurrent requests of N candidates each versus one alone.
	Concurrency  int     `json:"concurrency,omitempty"`
	SingleWallS  float64 `json:"single_wall_s,omitempty"`
	ConcWallS    float64 `json:"concurrent_wall_s,omitempty"`
	ConcWallRate float64 `json:"concurrent_wall_ratio,omitempty"`
}

// benchEngine runs `bestofn bench --n N [--concurrency C]` through the engine: one n=1 request and then one
// best-of-N request with the same prompt and length (the engine prefills the prompt once, forks it N ways and
// decodes the N candidates in one batch per step), reporting the decode wall-time ratio of the two; with C > 1,
// also C concurrent best-of-N requests (distinct prompts of the same length) against one alone.
func benchEngine(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	concurrency := o.Concurrency
	start := time.Now()
	ck, m, closeModel, err := loadBenchModel(o)
	if err != nil {
		return err
	}
	defer closeModel()
	cfg := m.Config()
	const blockSize = 16
	perRequest := o.PromptTokens + o.N*(o.GenTokens+2*blockSize)
	eng, err := engine.New(m, nil, nil, engine.Config{
		MaxQueue:      concurrency,
		MaxActiveSeqs: concurrency * o.N,
		MaxN:          o.N,
		KVTokens:      concurrency*perRequest + blockSize,
		KVBlockSize:   blockSize,
		PrefillChunk:  o.PromptTokens, // one prefill Forward per prompt, like the n=1 bench
	})
	if err != nil {
		return err
	}
	defer eng.Close()
	res := benchNResult{Model: o.Model, Threads: o.Threads, PromptTokens: o.PromptTokens, GenTokens: o.GenTokens,
		N: o.N, CPU: cpuModel(), ISA: m.ISA().String(), Layout: m.Layout().String(), LoadS: time.Since(start).Seconds()}
	if res.Threads == 0 {
		res.Threads = -1 // one per CPU
	}

	request := func(seed uint64, n, gen int) engine.Request {
		return engine.Request{PromptTokens: benchPrompt(seed, o.PromptTokens, cfg.VocabSize), N: n, MaxTokens: gen,
			Sampling: engine.SamplingParams{Temperature: 1, Seed: seed}}
	}
	generate := func(req engine.Request) (*engine.Result, float64, error) {
		t0 := time.Now()
		r, err := eng.Generate(ctx, req)
		return r, time.Since(t0).Seconds(), err
	}

	// Warm up (page in the weights) on a different prompt, then n=1 and n=N on the same prompt.
	if _, _, err := generate(request(o.Seed+1000, 1, 2)); err != nil {
		return err
	}
	base, baseWall, err := generate(request(o.Seed, 1, o.GenTokens))
	if err != nil {
		return err
	}
	before := eng.Stats().PrefillTokens
	best, wall, err := generate(request(o.Seed, o.N, o.GenTokens))
	if err != nil {
		return err
	}
	res.PrefillEvaluated = int(eng.Stats().PrefillTokens - before)
	res.Baseline.PrefillS = base.Timings.Prefill.Seconds()
	res.Baseline.DecodeS = base.Timings.Decode.Seconds()
	res.Baseline.WallS = baseWall
	res.Baseline.DecodeTokS = rate(countTokens(base)-1, base.Timings.Decode)
	res.PrefillS = best.Timings.Prefill.Seconds()
	res.DecodeS = best.Timings.Decode.Seconds()
	res.WallS = wall
	res.PrefillTokS = rate(o.PromptTokens, best.Timings.Prefill)
	res.DecodeTokS = rate(countTokens(best)-o.N, best.Timings.Decode)
	if res.Baseline.DecodeS > 0 {
		res.DecodeRatio = res.DecodeS / res.Baseline.DecodeS
	}
	if o.Repeat > 1 {
		res.DecodeRatios = []float64{res.DecodeRatio}
		for range o.Repeat - 1 {
			b, _, err := generate(request(o.Seed, 1, o.GenTokens))
			if err != nil {
				return err
			}
			n, _, err := generate(request(o.Seed, o.N, o.GenTokens))
			if err != nil {
				return err
			}
			res.DecodeRatios = append(res.DecodeRatios, n.Timings.Decode.Seconds()/b.Timings.Decode.Seconds())
		}
		sorted := slices.Sorted(slices.Values(res.DecodeRatios))
		res.DecodeRatioMedian = sorted[len(sorted)/2]
	}

	if concurrency > 1 {
		res.Concurrency = concurrency
		if _, res.SingleWallS, err = generate(request(o.Seed+1, o.N, o.GenTokens)); err != nil {
			return err
		}
		errs := make([]error, concurrency)
		var wg sync.WaitGroup
		t0 := time.Now()
		for k := range concurrency {
			wg.Go(func() { _, _, errs[k] = generate(request(o.Seed+2+uint64(k), o.N, o.GenTokens)) })
		}
		wg.Wait()
		res.ConcWallS = time.Since(t0).Seconds()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		res.ConcWallRate = res.ConcWallS / res.SingleWallS
	}

	if o.JSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "model %s: dim %d, %d layers, %d/%d heads, ffn %d, vocab %d, %s\n", o.Model, cfg.Dim,
		cfg.NLayers, cfg.NHeads, cfg.NKVHeads, cfg.HiddenDim, cfg.VocabSize, tensorType(ck))
	fmt.Fprintf(stdout, "cpu:           %s, kernels %s (layout %s)\n", res.CPU, res.ISA, res.Layout)
	fmt.Fprintf(stdout, "load:          %8.3f s\n", res.LoadS)
	fmt.Fprintf(stdout, "n=1   prefill: %5d tokens in %8.3f s; decode: %5d tokens in %8.3f s = %9.2f tok/s; wall %.3f s\n",
		o.PromptTokens, res.Baseline.PrefillS, countTokens(base)-1, res.Baseline.DecodeS, res.Baseline.DecodeTokS,
		res.Baseline.WallS)
	fmt.Fprintf(stdout, "n=%-3d prefill: %5d tokens in %8.3f s = %9.2f tok/s (evaluated %d prompt tokens)\n", o.N,
		o.PromptTokens, res.PrefillS, res.PrefillTokS, res.PrefillEvaluated)
	fmt.Fprintf(stdout, "n=%-3d decode:  %5d tokens in %8.3f s = %9.2f tok/s; wall %.3f s\n", o.N,
		countTokens(best)-o.N, res.DecodeS, res.DecodeTokS, res.WallS)
	fmt.Fprintf(stdout, "decode wall ratio n=%d / n=1: %.3f\n", o.N, res.DecodeRatio)
	if o.Repeat > 1 {
		fmt.Fprintf(stdout, "over %d pairs: median %.3f (%.3f)\n", o.Repeat, res.DecodeRatioMedian, res.DecodeRatios)
	}
	if concurrency > 1 {
		fmt.Fprintf(stdout, "concurrency %d: %.3f s vs one request %.3f s: wall ratio %.3f\n", concurrency,
			res.ConcWallS, res.SingleWallS, res.ConcWallRate)
	}
	return nil
}

// countTokens is the number of tokens generated over all candidates of a result.
func countTokens(r *engine.Result) int {
	n := 0
	for _, c := range r.Candidates {
		n += len(c.Tokens)
	}
	return n
}

// rate is tokens per second, 0 for an empty duration.
func rate(tokens int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(tokens) / d.Seconds()
}
