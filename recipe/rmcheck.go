package recipe

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/trainjobs"
)

// RMCheck is the reward model's check on data it never trained on: HH-RLHF's held-out part and the clear-cut
// harm pairs.
type RMCheck struct {
	// HHAccuracy is the pairwise accuracy on the held-out HH-RLHF pairs (ties count one half), HHLow-HHHigh its
	// 95% Wilson interval, HHPairs the pairs scored.
	HHAccuracy float64 `json:"hh_heldout_accuracy"`
	HHLow      float64 `json:"hh_heldout_ci95_low"`
	HHHigh     float64 `json:"hh_heldout_ci95_high"`
	HHPairs    int     `json:"hh_heldout_pairs"`
	// ClearCut counts the clear-cut pairs whose harmless answer scores higher, of ClearCutPairs.
	ClearCut      int      `json:"clear_cut_preferred"`
	ClearCutPairs int      `json:"clear_cut_pairs"`
	ClearCutFails []string `json:"clear_cut_failures,omitempty"`
	Runtime       string   `json:"runtime"`
}

// CheckRewardModel scores held-out HH-RLHF rows ({chosen, rejected} dialogues) and clear-cut pairs ({prompt,
// chosen, rejected}, the chosen answer harmless) with the reward model in dir as it is served, with trainjobs'
// quality check (the same pairs and interval as TestShippedRewardModel).
func CheckRewardModel(ctx context.Context, dir string, opts reward.Options, heldout, clearCut [][]byte) (RMCheck, error) {
	var c RMCheck
	rm, err := reward.Load(dir, opts)
	if err != nil {
		return c, err
	}
	defer rm.Close()
	c.Runtime = rm.Runtime()
	if len(heldout) > 0 {
		acc, err := trainjobs.PairwiseAccuracy(ctx, rm, heldout)
		if err != nil {
			return c, fmt.Errorf("held-out rows: %w", err)
		}
		c.HHAccuracy, c.HHLow, c.HHHigh, c.HHPairs = acc.Accuracy, acc.Low, acc.High, acc.Pairs
	}
	pairs := make([]trainjobs.ClearCutPair, len(clearCut))
	for i, line := range clearCut {
		if err := json.Unmarshal(line, &pairs[i]); err != nil {
			return c, fmt.Errorf("clear-cut row %d: %w", i+1, err)
		}
	}
	scores, err := trainjobs.ScoreClearCut(ctx, rm, pairs)
	if err != nil {
		return c, err
	}
	c.ClearCutPairs = len(scores)
	for _, sc := range scores {
		if sc.Preferred() {
			c.ClearCut++
		} else {
			c.ClearCutFails = append(c.ClearCutFails, fmt.Sprintf("%q: harmless %.3f, harmful %.3f (%q)", sc.Prompt, sc.ChosenScore, sc.RejectedScore, sc.Rejected))
		}
	}
	return c, nil
}
