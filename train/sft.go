package train

import (
	"context"
	"fmt"
	"math"
)

// Example is one tokenized supervised fine-tuning example.
type Example struct {
	// Tokens is the whole text: prompt, response, end of sequence.
	Tokens []int32
	// Loss[i] marks Tokens[i] as a target, predicted from Tokens[:i] (the response's tokens and the final
	// EOS); Loss[0] is ignored. Same length as Tokens.
	Loss []bool
}

// SFTOptions are the SFT loop's own settings.
type SFTOptions struct {
	// Packing concatenates the examples of each epoch (in their shuffled order) into blocks of PackLen
	// tokens, as TRL's packing=True: attention then crosses example boundaries inside a block, and
	// Config.BatchSize counts blocks. Without it each example is its own sequence (no padding is ever
	// computed either way: sequences of a micro-batch are packed without attending to each other).
	Packing bool
	// PackLen is the block length; 0 means the model's MaxSeqLen.
	PackLen int
}

// SFTResult is what TrainSFT reports.
type SFTResult struct {
	Steps        int
	StoppedEarly bool
	BestStep     int
	// Eval holds the held-out "loss" (mean over response tokens) and "perplexity" of the returned weights.
	Eval    Metrics
	History []EvalLog
	// Losses is the mean training loss of every optimizer step of this process (the loss curve).
	Losses                      []float64
	TrainExamples, EvalExamples int
	Tokens                      int64
}

// TrainSFT fine-tunes a language model (HeadLM) on examples with the next-token loss on their target
// tokens only, averaged over the target tokens of each optimizer step. The held-out split, evaluation
// ("loss", "perplexity"), early stopping (on held-out loss) and checkpoints work as in TrainReward.
//
// An example with no target token, tokens outside the vocabulary, a Loss mask of the wrong length or
// (without packing) more than MaxSeqLen tokens is an error naming it.
func TrainSFT(ctx context.Context, m *Model, examples []Example, cfg Config, opts SFTOptions, hooks Hooks) (*SFTResult, error) {
	if m.opts.Head != HeadLM {
		return nil, fmt.Errorf("%w: TrainSFT needs a language model", ErrHead)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if opts.PackLen == 0 {
		opts.PackLen = m.opts.MaxSeqLen
	}
	if opts.PackLen < 2 || opts.PackLen > m.opts.MaxSeqLen {
		return nil, fmt.Errorf("train: PackLen %d is not in [2, MaxSeqLen = %d]", opts.PackLen, m.opts.MaxSeqLen)
	}
	seqs := make([]Sequence, len(examples))
	for i, ex := range examples {
		if len(ex.Loss) != len(ex.Tokens) {
			return nil, fmt.Errorf("train: example %d has %d tokens but a loss mask of %d", i, len(ex.Tokens), len(ex.Loss))
		}
		toks := ex.Tokens
		if opts.Packing && len(toks) > m.opts.MaxSeqLen {
			toks = toks[:m.opts.MaxSeqLen] // checked below for the vocabulary only
		}
		if err := m.checkSeq(toks); err != nil {
			return nil, fmt.Errorf("train: example %d: %w", i, err)
		}
		if opts.Packing {
			for j, t := range ex.Tokens {
				if t < 0 || int(t) >= m.cfg.VocabSize {
					return nil, fmt.Errorf("train: example %d: token %d at %d is outside the vocabulary", i, t, j)
				}
			}
		}
		seqs[i] = Sequence{Tokens: ex.Tokens, Targets: make([]int32, len(ex.Tokens))}
		n := 0
		for j := range ex.Tokens {
			seqs[i].Targets[j] = -1
			if j+1 < len(ex.Tokens) && ex.Loss[j+1] {
				seqs[i].Targets[j] = ex.Tokens[j+1]
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("train: example %d has no target token (an empty response?)", i)
		}
	}
	trainIdx, evalIdx := splitIndices(len(examples), cfg.EvalFraction, cfg.Seed)
	t := &sftTask{m: m, seqs: seqs, evalIdx: evalIdx, opts: opts}
	packing := int32(0)
	if opts.Packing {
		packing = 1
	}
	fp := fingerprintOf("sft", cfg, m, func(h func([]int32)) {
		h([]int32{int32(opts.PackLen), packing})
		for _, s := range seqs {
			h(s.Tokens)
			h(s.Targets)
		}
	})
	res := &SFTResult{TrainExamples: len(trainIdx), EvalExamples: len(evalIdx)}
	userStep := hooks.Step
	hooks.Step = func(s StepInfo) {
		res.Losses = append(res.Losses, s.Loss)
		if userStep != nil {
			userStep(s)
		}
	}
	l, err := newLoop(m, cfg, t, hooks, trainIdx, len(evalIdx) > 0, fp)
	if err != nil {
		return nil, err
	}
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	res.Steps, res.StoppedEarly, res.BestStep, res.History, res.Tokens = l.st.Step, l.st.Stopped, l.st.BestStep,
		l.st.History, l.st.Tokens
	if len(evalIdx) > 0 {
		if res.Eval, err = t.evaluate(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// sftTask is SFT's part of the loop: items are examples, or packed blocks.
type sftTask struct {
	m       *Model
	seqs    []Sequence // every example with its targets
	evalIdx []int
	opts    SFTOptions
	items   []Sequence // the epoch's items
	batch   []Sequence
}

func (t *sftTask) startEpoch(order []int) int {
	t.items = t.items[:0]
	if !t.opts.Packing {
		for _, i := range order {
			t.items = append(t.items, t.seqs[i])
		}
		return len(t.items)
	}
	// One stream of the epoch's examples cut into blocks; a block's last token has no target (its next
	// token opens the next block).
	var toks, tgts []int32
	for _, i := range order {
		toks = append(toks, t.seqs[i].Tokens...)
		tgts = append(tgts, t.seqs[i].Targets...)
	}
	L := t.opts.PackLen
	for lo := 0; lo < len(toks); lo += L {
		hi := min(lo+L, len(toks))
		tg := append([]int32(nil), tgts[lo:hi]...)
		tg[len(tg)-1] = -1
		t.items = append(t.items, Sequence{Tokens: toks[lo:hi], Targets: tg})
	}
	return len(t.items)
}

func (t *sftTask) itemTokens(j int) int { return len(t.items[j].Tokens) }

func (t *sftTask) norm(items []int) float64 {
	n := 0
	for _, j := range items {
		for _, tg := range t.items[j].Targets {
			if tg >= 0 {
				n++
			}
		}
	}
	return float64(n)
}

func (t *sftTask) higherIsBetter() bool { return false }
func (t *sftTask) bestKey() string      { return "loss" }

func (t *sftTask) run(items []int, scale float32) (float64, error) {
	t.batch = t.batch[:0]
	for _, j := range items {
		t.batch = append(t.batch, t.items[j])
	}
	sum, _, err := t.m.LMLoss(t.batch, scale, true)
	return sum, err
}

// evaluate computes the mean loss over the target tokens of the held-out examples.
func (t *sftTask) evaluate(ctx context.Context) (Metrics, error) {
	var sum float64
	count := 0
	for lo := 0; lo < len(t.evalIdx); {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		t.batch = t.batch[:0]
		hi, n := lo, 0
		for hi < len(t.evalIdx) && (hi == lo || n+len(t.seqs[t.evalIdx[hi]].Tokens) <= t.m.opts.MaxTokens) {
			s := t.seqs[t.evalIdx[hi]]
			if len(s.Tokens) > t.m.opts.MaxSeqLen { // a long example under packing: its first MaxSeqLen tokens
				s = Sequence{Tokens: s.Tokens[:t.m.opts.MaxSeqLen], Targets: s.Targets[:t.m.opts.MaxSeqLen]}
			}
			t.batch = append(t.batch, s)
			n += len(s.Tokens)
			hi++
		}
		s, c, err := t.m.LMLoss(t.batch, 0, false)
		if err != nil {
			return nil, err
		}
		sum += s
		count += c
		lo = hi
	}
	loss := sum / math.Max(1, float64(count))
	return Metrics{"loss": loss, "perplexity": math.Exp(loss)}, nil
}
