package main

import (
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/rules"
)

// rewardModelRules is the --reward-model (and reward_model: in the config file) value that ranks candidates with
// the rule checks of verifiable instructions (package rules) instead of an ONNX reward model: each candidate
// scores the fraction of the instructions stated in the request's own words ("under 60 words", "mention a
// ball", "a cat named Tom", rules.FromText) that it follows, plus a small tie-break for near misses. A
// directory of that name is given as ./rules.
const rewardModelRules = "rules"

// loadScorer opens the scorer a generator's reward_model names: the rule checks for "rules", else an ONNX reward
// model directory. owned is the loaded reward model the caller must close (nil for the rules, which hold
// nothing).
func loadScorer(g generatorConfig) (s engine.Scorer, owned *closingScorer, err error) {
	if g.RewardModel == rewardModelRules {
		return &rules.Scorer{}, nil, nil
	}
	rm, err := reward.Load(g.RewardModel, reward.Options{Runtime: g.RewardRuntime})
	if err != nil {
		return nil, nil, err
	}
	return rm, &closingScorer{Model: rm}, nil
}
