package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"math/rand/v2"
	"time"
)

// Config is what the training loops (TrainReward, TrainSFT) share. Zero values mean zero except where
// noted; DefaultConfig is a reasonable start.
type Config struct {
	// Epochs is the number of passes over the training examples; 0 means 1.
	Epochs int
	// MaxSteps stops training after this many optimizer steps (0: Epochs decide). The schedule spans
	// the smaller of the two.
	MaxSteps int
	// BatchSize is the number of examples per optimizer step (pairs for a reward model, examples or packed
	// blocks for SFT); 0 means 32. A step's examples run in micro-batches of at most the model's MaxTokens
	// tokens whose gradients accumulate; the loss is the mean over the step (over pairs, or over target
	// tokens for SFT), whatever the split.
	BatchSize int
	// LR is the peak learning rate (0 means 1e-4), reached after WarmupSteps linear steps, then decayed
	// along a half cosine to LR·MinLRRatio at the last step.
	LR          float64
	WarmupSteps int
	MinLRRatio  float64
	// AdamW holds the optimizer's settings; the zero value means DefaultAdamW.
	AdamW AdamWConfig
	// ClipNorm clips the global gradient norm to this value before each step; 0 disables clipping.
	ClipNorm float64
	// EvalFraction is the share of examples held out for evaluation (a seeded split); 0 disables
	// evaluation and early stopping.
	EvalFraction float64
	// EvalEvery evaluates every this many optimizer steps; 0 means at the end of each epoch. The run
	// always ends with an evaluation when there is a held-out set.
	EvalEvery int
	// Patience stops training after this many evaluations without improvement of the held-out metric
	// (accuracy for a reward model, loss for SFT) and restores the best weights, as TRL's
	// load_best_model_at_end; 0 disables early stopping.
	Patience int
	// Seed fixes the held-out split and the order of examples in each epoch.
	Seed uint64
	// CheckpointPath is the file the loop's state (weights, optimizer moments, position in the data) is
	// written to at the end of each epoch, every CheckpointEvery steps, at the last step and when ctx is
	// cancelled; a run started with an existing file resumes from it (one that had finished trains no further and
	// returns its results). The file stays when the run ends; a file of another run (other data, configuration
	// or model) is an error wrapping ErrCheckpointMismatch. "" disables checkpoints.
	CheckpointPath  string
	CheckpointEvery int
}

// DefaultConfig returns the settings the loops use when a caller has no opinion: 1 epoch, batch 32, LR
// 1e-4 with 10 warmup steps decaying to 0.1 of it, DefaultAdamW, clipping at 1, a fifth held out,
// evaluated each epoch, patience 3.
func DefaultConfig() Config {
	return Config{Epochs: 1, BatchSize: 32, LR: 1e-4, WarmupSteps: 10, MinLRRatio: 0.1, AdamW: DefaultAdamW,
		ClipNorm: 1, EvalFraction: 0.2, Patience: 3}
}

func (c *Config) fill() error {
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.LR == 0 {
		c.LR = 1e-4
	}
	if c.AdamW == (AdamWConfig{}) {
		c.AdamW = DefaultAdamW
	}
	switch {
	case c.Epochs < 0 || c.MaxSteps < 0 || c.BatchSize < 0 || c.WarmupSteps < 0 || c.EvalEvery < 0 || c.Patience < 0 ||
		c.CheckpointEvery < 0:
		return fmt.Errorf("train: negative count in %+v", *c)
	case !(c.LR > 0) || math.IsInf(c.LR, 0) || !(c.MinLRRatio >= 0 && c.MinLRRatio <= 1):
		return fmt.Errorf("train: bad learning rate %g or min ratio %g", c.LR, c.MinLRRatio)
	case !(c.ClipNorm >= 0):
		return fmt.Errorf("train: bad ClipNorm %g", c.ClipNorm)
	case !(c.EvalFraction >= 0 && c.EvalFraction < 1):
		return fmt.Errorf("train: EvalFraction %g is not in [0, 1)", c.EvalFraction)
	}
	return c.AdamW.check()
}

// Metrics are evaluation results by name: for a reward model TRL's and OpenRLHF's "loss", "accuracy",
// "margin", "chosen_reward", "rejected_reward"; for SFT "loss" and "perplexity".
type Metrics map[string]float64

// StepInfo describes one optimizer step, for progress reports.
type StepInfo struct {
	Step, TotalSteps int
	// Epoch is the fractional number of epochs done.
	Epoch float64
	// Loss is the step's mean training loss.
	Loss float64
	// LR is the learning rate the step used.
	LR float64
	// GradNorm is the global gradient norm before clipping.
	GradNorm float64
	// Tokens counts the tokens trained on so far (this run and the runs it resumed).
	Tokens int64
	// TokensPerSecond is the rate of this process so far.
	TokensPerSecond float64
}

// EvalInfo is one evaluation on the held-out set.
type EvalInfo struct {
	Step    int
	Metrics Metrics
	// Best reports that these are the best held-out results so far.
	Best bool
}

// CheckpointInfo describes a checkpoint file just written.
type CheckpointInfo struct {
	Step int
	Path string
}

// Hooks are the loops' callbacks; any may be nil. They run on the training goroutine, between steps.
type Hooks struct {
	Step       func(StepInfo)
	Eval       func(EvalInfo)
	Checkpoint func(CheckpointInfo)
}

// loopState is where a run is: saved in checkpoints so that a resumed run continues exactly.
type loopState struct {
	Step       int       `json:"step"`
	Epoch      int       `json:"epoch"`
	Pos        int       `json:"pos"` // next item of the epoch's order
	Tokens     int64     `json:"tokens"`
	BestMetric float64   `json:"best_metric"`
	BestStep   int       `json:"best_step"`
	HaveBest   bool      `json:"have_best"`
	BadEvals   int       `json:"bad_evals"`
	Stopped    bool      `json:"stopped"` // early stopping fired
	History    []EvalLog `json:"history"`
}

// EvalLog is one entry of a run's evaluation history.
type EvalLog struct {
	Step    int     `json:"step"`
	Metrics Metrics `json:"metrics"`
}

// trainTask is what differs between the reward and SFT loops.
type trainTask interface {
	// startEpoch sets up an epoch's items from its shuffled order of training examples and returns
	// their count (the same for every epoch).
	startEpoch(order []int) int
	// itemTokens is the number of tokens item j of the current epoch puts into a micro-batch.
	itemTokens(j int) int
	// norm returns the number the loss of a step over items is divided by (pairs, target tokens).
	norm(items []int) float64
	// run adds scale times the gradient of the summed loss of a micro-batch of items, and returns that
	// loss sum.
	run(items []int, scale float32) (float64, error)
	// evaluate computes the held-out metrics.
	evaluate(ctx context.Context) (Metrics, error)
	// higherIsBetter says how to compare the early-stopping metric, Metrics[bestKey].
	higherIsBetter() bool
	bestKey() string
}

// loop runs a trainTask: steps, schedule, evaluation, early stopping, checkpoints.
type loop struct {
	m           *Model
	opt         *Optimizer
	cfg         Config
	task        trainTask
	hooks       Hooks
	trainIdx    []int // training examples
	hasEval     bool
	fingerprint string
	st          loopState
	best        []float32 // the best parameters so far (early stopping), nil without
	items       int       // items per epoch
	total       int       // optimizer steps of the run
	epochReady  int       // epoch whose order startEpoch was called with, -1 before
}

// splitIndices returns a seeded held-out split of n examples: the first round(frac·n) of a permutation
// are held out (at least one when frac > 0 and n > 1).
func splitIndices(n int, frac float64, seed uint64) (train, eval []int) {
	perm := rand.New(rand.NewPCG(seed, 0x73706c6974)).Perm(n) // "split"
	k := int(math.Round(frac * float64(n)))
	if frac > 0 && k == 0 && n > 1 {
		k = 1
	}
	return perm[k:], perm[:k]
}

// epochOrder returns the training examples in epoch e's seeded order.
func (l *loop) epochOrder(e int) []int {
	order := append([]int(nil), l.trainIdx...)
	rng := rand.New(rand.NewPCG(l.cfg.Seed, 0x65706f6368+uint64(e))) // "epoch"+e
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// fingerprintOf hashes what makes a run itself: kind, configuration (minus checkpoint settings), model
// shape and the training data.
func fingerprintOf(kind string, cfg Config, m *Model, data func(h func([]int32))) string {
	h := fnv.New64a()
	c := cfg
	c.CheckpointPath, c.CheckpointEvery = "", 0
	js, _ := json.Marshal(struct {
		Kind   string
		Config Config
		Model  any
		Head   Head
		Params int
	}{kind, c, m.cfg, m.opts.Head, m.layout.size})
	h.Write(js)
	var buf [4]byte
	data(func(toks []int32) {
		for _, t := range toks {
			buf[0], buf[1], buf[2], buf[3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
			h.Write(buf[:])
		}
		h.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xfe})
	})
	return fmt.Sprintf("%s-%016x", kind, h.Sum64())
}

// newLoop prepares a loop, resuming from cfg.CheckpointPath when the file exists.
func newLoop(m *Model, cfg Config, task trainTask, hooks Hooks, trainIdx []int, hasEval bool, fp string) (*loop, error) {
	opt, err := NewAdamW(m, cfg.AdamW)
	if err != nil {
		return nil, err
	}
	l := &loop{m: m, opt: opt, cfg: cfg, task: task, hooks: hooks, trainIdx: trainIdx, hasEval: hasEval,
		fingerprint: fp, epochReady: -1}
	if len(trainIdx) == 0 {
		return nil, errors.New("train: no training examples")
	}
	l.items = task.startEpoch(l.epochOrder(0))
	l.epochReady = 0
	stepsPerEpoch := (l.items + cfg.BatchSize - 1) / cfg.BatchSize
	l.total = cfg.Epochs * stepsPerEpoch
	if cfg.MaxSteps > 0 {
		l.total = min(l.total, cfg.MaxSteps)
	}
	if hasEval && cfg.Patience > 0 {
		l.best = make([]float32, m.layout.size)
	}
	if cfg.CheckpointPath != "" {
		if err := l.resume(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// resume loads the checkpoint file if there is one.
func (l *loop) resume() error {
	s, err := readState(l.cfg.CheckpointPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.Fingerprint != l.fingerprint || s.NumParams != l.m.layout.size {
		return fmt.Errorf("%w: %s was written by run %s with %d parameters, this run is %s with %d",
			ErrCheckpointMismatch, l.cfg.CheckpointPath, s.Fingerprint, s.NumParams, l.fingerprint, l.m.layout.size)
	}
	if !s.array("params", l.m.flat) || !s.array("adam_m", l.opt.m) || !s.array("adam_v", l.opt.v) {
		return fmt.Errorf("%w: %s lacks parameters or optimizer moments", ErrCheckpointMismatch, l.cfg.CheckpointPath)
	}
	if l.best != nil && !s.array("best", l.best) {
		copy(l.best, l.m.flat)
	}
	l.opt.steps = s.OptSteps
	l.st = s.Loop
	return nil
}

// checkpoint writes the loop's state.
func (l *loop) checkpoint() error {
	if l.cfg.CheckpointPath == "" {
		return nil
	}
	h := stateHeader{Fingerprint: l.fingerprint, NumParams: l.m.layout.size, OptSteps: l.opt.steps, Loop: l.st,
		Arrays: []string{"params", "adam_m", "adam_v"}}
	arrays := [][]float32{l.m.flat, l.opt.m, l.opt.v}
	if l.best != nil && l.st.HaveBest {
		h.Arrays = append(h.Arrays, "best")
		arrays = append(arrays, l.best)
	}
	if err := saveState(l.cfg.CheckpointPath, h, arrays); err != nil {
		return err
	}
	if l.hooks.Checkpoint != nil {
		l.hooks.Checkpoint(CheckpointInfo{Step: l.st.Step, Path: l.cfg.CheckpointPath})
	}
	return nil
}

// run trains until the last step, early stopping or ctx's end. On cancellation it writes a checkpoint and
// returns ctx's error.
func (l *loop) run(ctx context.Context) error {
	cfg := &l.cfg
	sched := Schedule{LR: cfg.LR, Warmup: cfg.WarmupSteps, Steps: l.total, MinLRRatio: cfg.MinLRRatio}
	start, startTokens := time.Now(), l.st.Tokens
	for l.st.Step < l.total && !l.st.Stopped {
		if err := ctx.Err(); err != nil {
			if cerr := l.checkpoint(); cerr != nil {
				return errors.Join(err, cerr)
			}
			return fmt.Errorf("train: %w", err)
		}
		if l.epochReady != l.st.Epoch {
			l.task.startEpoch(l.epochOrder(l.st.Epoch))
			l.epochReady = l.st.Epoch
		}
		items := make([]int, 0, cfg.BatchSize)
		for j := l.st.Pos; j < min(l.st.Pos+cfg.BatchSize, l.items); j++ {
			items = append(items, j)
		}
		loss, tokens, err := l.step(items)
		if err != nil {
			return err
		}
		norm := l.m.ClipGradNorm(cfg.ClipNorm)
		lr := sched.At(l.st.Step)
		l.opt.Step(lr)
		l.st.Step++
		l.st.Tokens += int64(tokens)
		l.st.Pos += len(items)
		epochEnd := l.st.Pos >= l.items
		if epochEnd {
			l.st.Epoch++
			l.st.Pos = 0
		}
		if l.hooks.Step != nil {
			el := time.Since(start).Seconds()
			l.hooks.Step(StepInfo{Step: l.st.Step, TotalSteps: l.total,
				Epoch: float64(l.st.Epoch) + float64(l.st.Pos)/float64(l.items),
				Loss:  loss, LR: lr, GradNorm: norm, Tokens: l.st.Tokens,
				TokensPerSecond: float64(l.st.Tokens-startTokens) / math.Max(el, 1e-9)})
		}
		last := l.st.Step == l.total
		if l.hasEval && ((cfg.EvalEvery > 0 && l.st.Step%cfg.EvalEvery == 0) || (cfg.EvalEvery == 0 && epochEnd) || last) {
			if err := l.evaluate(ctx); err != nil {
				return err
			}
		}
		if epochEnd || last || l.st.Stopped || (cfg.CheckpointEvery > 0 && l.st.Step%cfg.CheckpointEvery == 0) {
			if err := l.checkpoint(); err != nil {
				return err
			}
		}
	}
	if l.best != nil && l.st.HaveBest && l.st.BestStep != l.st.Step {
		copy(l.m.flat, l.best)
	}
	return nil
}

// step accumulates the gradients of one optimizer step over micro-batches and returns its mean loss and
// the tokens it trained on.
func (l *loop) step(items []int) (float64, int, error) {
	l.m.ZeroGrad()
	norm := l.task.norm(items)
	if norm == 0 {
		return 0, 0, nil
	}
	scale := float32(1 / norm)
	var sum float64
	tokens := 0
	for lo := 0; lo < len(items); {
		hi, n := lo, 0
		for hi < len(items) && (hi == lo || n+l.task.itemTokens(items[hi]) <= l.m.opts.MaxTokens) {
			n += l.task.itemTokens(items[hi])
			hi++
		}
		s, err := l.task.run(items[lo:hi], scale)
		if err != nil {
			return 0, 0, err
		}
		sum += s
		tokens += n
		lo = hi
	}
	return sum / norm, tokens, nil
}

// evaluate runs the held-out evaluation and the early-stopping bookkeeping.
func (l *loop) evaluate(ctx context.Context) error {
	mt, err := l.task.evaluate(ctx)
	if err != nil {
		return err
	}
	l.st.History = append(l.st.History, EvalLog{Step: l.st.Step, Metrics: mt})
	v := mt[l.task.bestKey()]
	better := !l.st.HaveBest || (l.task.higherIsBetter() && v > l.st.BestMetric) ||
		(!l.task.higherIsBetter() && v < l.st.BestMetric)
	if better {
		l.st.BestMetric, l.st.BestStep, l.st.HaveBest, l.st.BadEvals = v, l.st.Step, true, 0
		if l.best != nil {
			copy(l.best, l.m.flat)
		}
	} else {
		l.st.BadEvals++
		if l.cfg.Patience > 0 && l.st.BadEvals >= l.cfg.Patience {
			l.st.Stopped = true
		}
	}
	if l.hooks.Eval != nil {
		l.hooks.Eval(EvalInfo{Step: l.st.Step, Metrics: mt, Best: better})
	}
	return nil
}
