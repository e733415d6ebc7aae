package train

import (
	"context"
	"fmt"
	"math"
)

// Pair is one tokenized preference comparison: the chosen and rejected sequences (prompt and response
// together, as the reward model sees them) and an optional margin.
type Pair struct {
	Chosen, Rejected []int32
	// Margin is subtracted inside the loss, -log sigmoid(r_chosen - r_rejected - Margin) (TRL's margin
	// column; Llama 2's rating-gap margin). 0 gives the plain pairwise loss.
	Margin float64
}

// RewardResult is what TrainReward reports.
type RewardResult struct {
	// Steps is the number of optimizer steps taken in all (resumed runs included).
	Steps int
	// StoppedEarly reports that held-out accuracy stopped improving (Config.Patience); the weights are
	// then those of BestStep.
	StoppedEarly bool
	BestStep     int
	// Eval holds the held-out metrics of the returned weights (empty without a held-out set).
	Eval Metrics
	// History lists every evaluation.
	History []EvalLog
	// RewardMean and RewardStd are the mean and standard deviation of the returned model's scores over
	// every training response (chosen and rejected), to normalize scores as (r - mean) / std.
	RewardMean, RewardStd float64
	TrainPairs, EvalPairs int
	// Tokens is the number of tokens trained on.
	Tokens int64
}

// TrainReward trains a reward model (HeadReward) on preference pairs with the pairwise loss
// -log sigmoid(r_c - r_r - margin), averaged over the pairs of each optimizer step. A seeded fraction of
// the pairs is held out (Config.EvalFraction) and evaluated with TRL/OpenRLHF's metrics: loss, accuracy
// (ties count one half), margin (mean r_c - r_r), chosen_reward, rejected_reward, plus the accuracy's 95%
// Wilson interval (accuracy_ci95_low, accuracy_ci95_high). Early stopping watches held-out accuracy. With
// Config.CheckpointPath set, a run killed at any point and started again with the same arguments resumes
// from its last checkpoint and ends with the same weights as an uninterrupted run.
//
// A pair whose sequences are empty, longer than the model's MaxSeqLen, hold more than MaxTokens tokens
// together or hold tokens outside the vocabulary is an error naming the pair.
func TrainReward(ctx context.Context, m *Model, pairs []Pair, cfg Config, hooks Hooks) (*RewardResult, error) {
	if m.opts.Head != HeadReward {
		return nil, fmt.Errorf("%w: TrainReward needs a reward model (Options.Head = HeadReward)", ErrHead)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	for i, p := range pairs {
		if err := m.checkSeq(p.Chosen); err != nil {
			return nil, fmt.Errorf("train: pair %d: chosen: %w", i, err)
		}
		if err := m.checkSeq(p.Rejected); err != nil {
			return nil, fmt.Errorf("train: pair %d: rejected: %w", i, err)
		}
		if n := len(p.Chosen) + len(p.Rejected); n > m.opts.MaxTokens {
			return nil, fmt.Errorf("train: pair %d holds %d tokens, more than MaxTokens = %d", i, n, m.opts.MaxTokens)
		}
		if math.IsNaN(p.Margin) || math.IsInf(p.Margin, 0) {
			return nil, fmt.Errorf("train: pair %d has margin %g", i, p.Margin)
		}
	}
	trainIdx, evalIdx := splitIndices(len(pairs), cfg.EvalFraction, cfg.Seed)
	t := &rewardTask{m: m, pairs: pairs, evalIdx: evalIdx}
	fp := fingerprintOf("reward", cfg, m, func(h func([]int32)) {
		for _, p := range pairs {
			h(p.Chosen)
			h(p.Rejected)
			h([]int32{int32(math.Float32bits(float32(p.Margin)))})
		}
	})
	l, err := newLoop(m, cfg, t, hooks, trainIdx, len(evalIdx) > 0, fp)
	if err != nil {
		return nil, err
	}
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	res := &RewardResult{Steps: l.st.Step, StoppedEarly: l.st.Stopped, BestStep: l.st.BestStep, History: l.st.History,
		TrainPairs: len(trainIdx), EvalPairs: len(evalIdx), Tokens: l.st.Tokens}
	if len(evalIdx) > 0 {
		if res.Eval, err = t.evaluate(ctx); err != nil {
			return nil, err
		}
	}
	var seqs [][]int32
	for _, i := range trainIdx {
		seqs = append(seqs, pairs[i].Chosen, pairs[i].Rejected)
	}
	scores, err := m.ScoreAll(ctx, seqs)
	if err != nil {
		return nil, err
	}
	res.RewardMean, res.RewardStd = meanStd(scores)
	return res, nil
}

// checkSeq checks one sequence against the model's limits and vocabulary.
func (m *Model) checkSeq(toks []int32) error {
	if len(toks) == 0 {
		return fmt.Errorf("empty sequence")
	}
	if len(toks) > m.opts.MaxSeqLen {
		return fmt.Errorf("%d tokens, more than MaxSeqLen = %d", len(toks), m.opts.MaxSeqLen)
	}
	for j, t := range toks {
		if t < 0 || int(t) >= m.cfg.VocabSize {
			return fmt.Errorf("token %d at %d is outside the vocabulary of %d", t, j, m.cfg.VocabSize)
		}
	}
	return nil
}

// ScoreAll returns a reward model's score of every sequence, running as many micro-batches (of at most
// MaxTokens tokens) as needed; ctx is checked between them.
func (m *Model) ScoreAll(ctx context.Context, seqs [][]int32) ([]float32, error) {
	out := make([]float32, len(seqs))
	for lo := 0; lo < len(seqs); {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		hi, n := lo, 0
		for hi < len(seqs) && (hi == lo || n+len(seqs[hi]) <= m.opts.MaxTokens) {
			n += len(seqs[hi])
			hi++
		}
		if err := m.Scores(seqs[lo:hi], out[lo:hi]); err != nil {
			return nil, fmt.Errorf("train: sequences %d..%d: %w", lo, hi-1, err)
		}
		lo = hi
	}
	return out, nil
}

func meanStd(x []float32) (mean, std float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)))
}

// rewardTask is the reward model's part of the loop: items are pairs.
type rewardTask struct {
	m       *Model
	pairs   []Pair
	order   []int // the epoch's pairs
	evalIdx []int
	seqs    [][]int32
	scores  []float32
	dscores []float32
}

func (t *rewardTask) startEpoch(order []int) int { t.order = order; return len(order) }

func (t *rewardTask) itemTokens(j int) int {
	p := &t.pairs[t.order[j]]
	return len(p.Chosen) + len(p.Rejected)
}

func (t *rewardTask) norm(items []int) float64 { return float64(len(items)) }

func (t *rewardTask) higherIsBetter() bool { return true }
func (t *rewardTask) bestKey() string      { return "accuracy" }

// run scores the chosen sequences of the items, then their rejected ones, in one micro-batch, and
// back-propagates scale times the summed pairwise loss.
func (t *rewardTask) run(items []int, scale float32) (float64, error) {
	n := len(items)
	t.seqs = t.seqs[:0]
	for _, j := range items {
		t.seqs = append(t.seqs, t.pairs[t.order[j]].Chosen)
	}
	for _, j := range items {
		t.seqs = append(t.seqs, t.pairs[t.order[j]].Rejected)
	}
	t.scores = grow(t.scores, 2*n)
	t.dscores = grow(t.dscores, 2*n)
	if err := t.m.Scores(t.seqs, t.scores); err != nil {
		return 0, err
	}
	var sum float64
	for i, j := range items {
		loss, dc := pairLoss(float64(t.scores[i]), float64(t.scores[n+i]), t.pairs[t.order[j]].Margin)
		sum += loss
		t.dscores[i] = scale * float32(dc)
		t.dscores[n+i] = -scale * float32(dc)
	}
	return sum, t.m.BackwardScores(t.dscores)
}

// evaluate scores the held-out pairs.
func (t *rewardTask) evaluate(ctx context.Context) (Metrics, error) {
	var seqs [][]int32
	for _, i := range t.evalIdx {
		seqs = append(seqs, t.pairs[i].Chosen, t.pairs[i].Rejected)
	}
	scores, err := t.m.ScoreAll(ctx, seqs)
	if err != nil {
		return nil, err
	}
	return pairMetrics(t.pairs, t.evalIdx, scores), nil
}

// pairMetrics computes the held-out metrics from the scores of idx's pairs (chosen, rejected, chosen, ...).
func pairMetrics(pairs []Pair, idx []int, scores []float32) Metrics {
	var loss, acc, margin, rc, rr float64
	for k, i := range idx {
		c, r := float64(scores[2*k]), float64(scores[2*k+1])
		l, _ := pairLoss(c, r, pairs[i].Margin)
		loss += l
		switch {
		case c > r:
			acc++
		case c == r:
			acc += 0.5
		}
		margin += c - r
		rc += c
		rr += r
	}
	n := float64(len(idx))
	lo, hi := wilson(acc, n)
	return Metrics{"loss": loss / n, "accuracy": acc / n, "margin": margin / n, "chosen_reward": rc / n,
		"rejected_reward": rr / n, "accuracy_ci95_low": lo, "accuracy_ci95_high": hi}
}

// wilson returns the 95% Wilson score interval of k successes in n trials.
func wilson(k, n float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p := k / n
	d := 1 + z*z/n
	c := (p + z*z/(2*n)) / d
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	return c - h, c + h
}

// grow returns s resized to n, reallocating only when it is too small.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
