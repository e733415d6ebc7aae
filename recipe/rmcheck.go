package recipe

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/bestofn/bestofn/reward"
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

// hhHuman and hhAssistant are HH-RLHF's turn markers: a dialogue is "\n\nHuman: ...\n\nAssistant: ...", its
// prompt everything before the last assistant turn (as train-reward's default template splits it).
const (
	hhHuman     = "\n\nHuman: "
	hhAssistant = "\n\nAssistant: "
)

// splitHH parses an HH-RLHF dialogue into the prompt and the last assistant response.
func splitHH(text string) (prompt, response string, ok bool) {
	rest, ok := strings.CutPrefix(text, hhHuman)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, hhAssistant)
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(hhAssistant):], true
}

// CheckRewardModel scores held-out HH-RLHF rows ({chosen, rejected} dialogues) and clear-cut pairs ({prompt,
// chosen, rejected}, the chosen answer harmless) with the reward model in dir as it is served.
func CheckRewardModel(ctx context.Context, dir string, opts reward.Options, heldout, clearCut [][]byte) (RMCheck, error) {
	var c RMCheck
	rm, err := reward.Load(dir, opts)
	if err != nil {
		return c, err
	}
	defer rm.Close()
	c.Runtime = rm.Runtime()
	correct := 0.0
	for _, line := range heldout {
		var row struct{ Chosen, Rejected string }
		if err := json.Unmarshal(line, &row); err != nil {
			return c, fmt.Errorf("held-out row: %w", err)
		}
		pc, rc, ok1 := splitHH(row.Chosen)
		pr, rr, ok2 := splitHH(row.Rejected)
		if !ok1 || !ok2 || pc != pr || rc == rr {
			continue // makes no pair in training either
		}
		s, err := rm.Score(ctx, pc, []string{rc, rr})
		if err != nil {
			return c, err
		}
		switch {
		case s[0] > s[1]:
			correct++
		case s[0] == s[1]:
			correct += 0.5
		}
		c.HHPairs++
	}
	if c.HHPairs > 0 {
		c.HHAccuracy = correct / float64(c.HHPairs)
		c.HHLow, c.HHHigh = wilson95(c.HHAccuracy, float64(c.HHPairs))
	}
	for _, line := range clearCut {
		var p struct{ Prompt, Chosen, Rejected string }
		if err := json.Unmarshal(line, &p); err != nil {
			return c, fmt.Errorf("clear-cut row: %w", err)
		}
		s, err := rm.Score(ctx, p.Prompt, []string{p.Chosen, p.Rejected})
		if err != nil {
			return c, err
		}
		c.ClearCutPairs++
		if s[0] > s[1] {
			c.ClearCut++
		} else {
			c.ClearCutFails = append(c.ClearCutFails, fmt.Sprintf("%q: harmless %.3f, harmful %.3f (%q)", p.Prompt, s[0], s[1], p.Rejected))
		}
	}
	return c, nil
}

// wilson95 is the 95% Wilson score interval of a proportion p observed in n trials.
func wilson95(p, n float64) (lo, hi float64) {
	const z = 1.959964
	den := 1 + z*z/n
	c := (p + z*z/(2*n)) / den
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / den
	return c - h, c + h
}
