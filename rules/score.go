package rules

import (
	"context"
	"strings"
)

// TieBreak weighs the mean partial credit in a Scorer's score (see the package doc).
const TieBreak = 0.01

// Scorer scores candidates by the instructions of their prompt; it satisfies engine.Scorer, so rules can rank
// best-of-N candidates where a reward model would.
type Scorer struct {
	// Known maps a prompt (trimmed) to its machine-readable instructions; prompts not in it are read with
	// FromText. May be nil.
	Known map[string][]Instruction
	// Loose scores with CheckLoose instead of Check.
	Loose bool
}

// Instructions returns the instructions the scorer applies to prompt.
func (s *Scorer) Instructions(prompt string) []Instruction {
	if ins, ok := s.Known[strings.TrimSpace(prompt)]; ok {
		return ins
	}
	return FromText(prompt)
}

// Score returns, per candidate, the fraction of the prompt's instructions it follows plus TieBreak times its
// mean partial credit. A prompt without instructions scores every candidate 0.
func (s *Scorer) Score(ctx context.Context, prompt string, candidates []string) ([]float32, error) {
	ins := s.Instructions(prompt)
	out := make([]float32, len(candidates))
	for i, c := range candidates {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = float32(ScoreAnswer(ins, c, s.Loose))
	}
	return out, nil
}

// ScoreAnswer is the Scorer's score of one answer: followed fraction + TieBreak * mean credit; 0 without
// instructions.
func ScoreAnswer(ins []Instruction, answer string, loose bool) float64 {
	if len(ins) == 0 {
		return 0
	}
	followed, credit := 0, 0.0
	for _, in := range ins {
		var r Result
		if loose {
			r = in.CheckLoose(answer)
		} else {
			r = in.Check(answer)
		}
		if r.Followed {
			followed++
		}
		credit += r.Credit
	}
	n := float64(len(ins))
	return float64(followed)/n + TieBreak*credit/n
}
