package pipeline

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/rules"
)

// ScorerRewardModel is the built-in scorer kind: an ONNX reward model (package reward), from a directory
// (spec.Path) or a registered reward model (spec.Model, spec.Version).
const ScorerRewardModel = "reward-model"

// ScorerRules is the built-in rule scorer (package rules): the fraction of the prompt's verifiable
// instructions an answer follows; params {"loose": true} checks loosely.
const ScorerRules = "rules"

// checkScorer validates a scorer spec without loading anything.
func (o Options) checkScorer(field string, spec ScorerSpec) error {
	if spec.Kind == ScorerRewardModel {
		if (spec.Path == "") == (spec.Model == "") {
			return paramErr(field+".path", "give path (a reward model directory) or model (a registered reward model)")
		}
		if spec.Path != "" {
			if st, err := os.Stat(spec.Path); err != nil || !st.IsDir() {
				return paramErr(field+".path", "%q is not a directory", spec.Path)
			}
		}
		switch spec.Runtime {
		case "", reward.RuntimeAuto, reward.RuntimeGo, reward.RuntimeORT:
		default:
			return paramErr(field+".runtime", "must be auto, go or ort")
		}
		return nil
	}
	if spec.Kind == ScorerRules {
		_, err := rulesScorer(spec)
		return err
	}
	if _, ok := o.Scorers[spec.Kind]; !ok {
		kinds := []string{ScorerRewardModel, ScorerRules}
		for k := range o.Scorers {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return paramErr(field+".kind", "unknown scorer %q (known: %s)", spec.Kind, strings.Join(kinds, ", "))
	}
	return nil
}

// openScorer opens the scorer a spec names.
func (o Options) openScorer(ctx context.Context, r runner, spec ScorerSpec) (Scorer, func() error, error) {
	if err := o.checkScorer("scorer", spec); err != nil {
		return nil, nil, err
	}
	switch spec.Kind {
	case ScorerRules:
		s, err := rulesScorer(spec)
		return s, func() error { return nil }, err
	case ScorerRewardModel:
	default:
		return o.Scorers[spec.Kind](ctx, spec)
	}
	dir := spec.Path
	if spec.Model != "" {
		if r == nil {
			return nil, nil, fmt.Errorf("a registered model needs the job platform")
		}
		var err error
		if dir, _, err = r.ModelPath(ctx, spec.Model, spec.Version); err != nil {
			return nil, nil, fmt.Errorf("reward model %q: %w", spec.Model, err)
		}
	}
	m, err := reward.Load(dir, reward.Options{Runtime: spec.Runtime})
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

func rulesScorer(spec ScorerSpec) (*rules.Scorer, error) {
	var p struct {
		Loose bool `json:"loose"`
	}
	if len(spec.Params) > 0 {
		if err := jobs.DecodeParams(spec.Params, &p); err != nil {
			return nil, paramErr("scorer.params", "%v", err)
		}
	}
	return &rules.Scorer{Loose: p.Loose}, nil
}
