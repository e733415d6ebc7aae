package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Instruction is one verifiable instruction: an IFEval-style id with its keyword arguments, and its check.
type Instruction struct {
	// ID names the check, e.g. "length_constraints:number_words".
	ID string
	// Kwargs are its arguments, e.g. {"num_words": 80, "relation": "less than"}; numbers as float64 or int.
	Kwargs map[string]any

	check checkFunc
	desc  string
}

// Result is the outcome of checking one instruction on one answer.
type Result struct {
	// Followed is true when the answer follows the instruction.
	Followed bool
	// Credit is in [0, 1]: 1 when followed, else how near the answer came (see the package doc).
	Credit float64
}

type checkFunc func(response string) Result

// Check checks the answer as it is (strict).
func (in Instruction) Check(response string) Result {
	if in.check == nil {
		return Result{}
	}
	r := in.check(response)
	if r.Followed {
		r.Credit = 1
	}
	r.Credit = math.Max(0, math.Min(1, r.Credit))
	return r
}

// CheckLoose checks the answer and IFEval's loose variants of it (first and/or last line removed, '*' removed):
// followed when any non-empty variant follows.
func (in Instruction) CheckLoose(response string) Result {
	best := Result{}
	for i, v := range looseVariants(response) {
		if i > 0 && strings.TrimSpace(v) == "" {
			continue // as IFEval, an empty variant proves nothing
		}
		r := in.Check(v)
		if r.Followed {
			return r
		}
		best.Credit = math.Max(best.Credit, r.Credit)
	}
	return best
}

// String describes the instruction in words, e.g. "fewer than 80 words".
func (in Instruction) String() string { return in.desc }

// MarshalJSON writes {"id": ..., "kwargs": {...}}.
func (in Instruction) MarshalJSON() ([]byte, error) {
	kw := in.Kwargs
	if kw == nil {
		kw = map[string]any{}
	}
	return json.Marshal(struct {
		ID     string         `json:"id"`
		Kwargs map[string]any `json:"kwargs"`
	}{in.ID, kw})
}

func looseVariants(r string) []string {
	lines := strings.Split(r, "\n")
	noFirst := strings.Join(lines[min(1, len(lines)):], "\n")
	noLast := strings.Join(lines[:max(0, len(lines)-1)], "\n")
	noBoth := ""
	if len(lines) > 2 {
		noBoth = strings.Join(lines[1:len(lines)-1], "\n")
	}
	base := []string{r, noFirst, noLast, noBoth}
	out := make([]string, 0, 2*len(base))
	for _, v := range base {
		out = append(out, v)
	}
	for _, v := range base {
		out = append(out, strings.ReplaceAll(v, "*", ""))
	}
	return out
}

// IDs lists the instruction ids Parse knows, sorted.
func IDs() []string {
	bs := builders()
	ids := make([]string, 0, len(bs))
	for id := range bs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// New builds an instruction from its id and keyword arguments. Null arguments are ignored (IFEval's published
// rows carry every argument of every instruction, mostly null); a missing, mistyped or unknown argument is an
// error naming it.
func New(id string, kwargs map[string]any) (Instruction, error) {
	b, ok := builders()[id]
	if !ok {
		return Instruction{}, fmt.Errorf("rules: unknown instruction id %q (known: %s)", id, strings.Join(IDs(), ", "))
	}
	clean := map[string]any{}
	for k, v := range kwargs {
		if v != nil {
			clean[k] = v
		}
	}
	a := &args{id: id, kw: clean, used: map[string]bool{}}
	check, desc := b(a)
	if a.err != nil {
		return Instruction{}, a.err
	}
	for k := range clean {
		if !a.used[k] {
			return Instruction{}, fmt.Errorf("rules: %s: unknown argument %q", id, k)
		}
	}
	return Instruction{ID: id, Kwargs: clean, check: check, desc: desc}, nil
}

// Parse builds the instructions of IFEval's parallel lists; kwargs may be shorter than ids (missing entries mean
// no arguments).
func Parse(ids []string, kwargs []map[string]any) ([]Instruction, error) {
	if len(kwargs) > len(ids) {
		return nil, fmt.Errorf("rules: %d kwargs for %d instruction ids", len(kwargs), len(ids))
	}
	out := make([]Instruction, 0, len(ids))
	for i, id := range ids {
		var kw map[string]any
		if i < len(kwargs) {
			kw = kwargs[i]
		}
		in, err := New(id, kw)
		if err != nil {
			return nil, fmt.Errorf("rules: instruction %d: %w", i, err)
		}
		out = append(out, in)
	}
	return out, nil
}

// Spec is the machine-readable form of a question's instructions, IFEval's shape; it is embedded in question
// rows.
type Spec struct {
	InstructionIDs []string         `json:"instruction_id_list,omitempty"`
	Kwargs         []map[string]any `json:"kwargs,omitempty"`
}

// Instructions parses the spec.
func (s Spec) Instructions() ([]Instruction, error) { return Parse(s.InstructionIDs, s.Kwargs) }

// SpecOf is the machine-readable form of instructions.
func SpecOf(ins []Instruction) Spec {
	var s Spec
	for _, in := range ins {
		s.InstructionIDs = append(s.InstructionIDs, in.ID)
		kw := in.Kwargs
		if kw == nil {
			kw = map[string]any{}
		}
		s.Kwargs = append(s.Kwargs, kw)
	}
	return s
}

// Outcome is every instruction's result on one answer, strict and loose.
type Outcome struct {
	Strict []Result
	Loose  []Result
}

// Evaluate checks every instruction on the answer.
func Evaluate(ins []Instruction, response string) Outcome {
	o := Outcome{Strict: make([]Result, len(ins)), Loose: make([]Result, len(ins))}
	for i, in := range ins {
		o.Strict[i] = in.Check(response)
		o.Loose[i] = in.CheckLoose(response)
	}
	return o
}

// AllFollowed reports whether every result is followed (true for none).
func AllFollowed(rs []Result) bool {
	return !slices.ContainsFunc(rs, func(r Result) bool { return !r.Followed })
}

// FractionFollowed is the share of results followed; 0 for none.
func FractionFollowed(rs []Result) float64 {
	if len(rs) == 0 {
		return 0
	}
	n := 0
	for _, r := range rs {
		if r.Followed {
			n++
		}
	}
	return float64(n) / float64(len(rs))
}

// Accuracy accumulates IFEval's four accuracies over prompts.
type Accuracy struct {
	Prompts      int `json:"prompts"`
	Instructions int `json:"instructions"`
	// PromptStrict etc. count prompts with every instruction followed and instructions followed.
	PromptStrict      int `json:"prompt_strict"`
	PromptLoose       int `json:"prompt_loose"`
	InstructionStrict int `json:"instruction_strict"`
	InstructionLoose  int `json:"instruction_loose"`
}

// Add counts one prompt's outcome; prompts without instructions are not counted.
func (a *Accuracy) Add(o Outcome) {
	if len(o.Strict) == 0 {
		return
	}
	a.Prompts++
	a.Instructions += len(o.Strict)
	if AllFollowed(o.Strict) {
		a.PromptStrict++
	}
	if AllFollowed(o.Loose) {
		a.PromptLoose++
	}
	for i := range o.Strict {
		if o.Strict[i].Followed {
			a.InstructionStrict++
		}
		if o.Loose[i].Followed {
			a.InstructionLoose++
		}
	}
}

// Rates are the four accuracies as fractions.
type Rates struct {
	PromptStrict      float64 `json:"prompt_level_strict"`
	PromptLoose       float64 `json:"prompt_level_loose"`
	InstructionStrict float64 `json:"instruction_level_strict"`
	InstructionLoose  float64 `json:"instruction_level_loose"`
}

// Rates divides the counts; zero counts give zero rates.
func (a Accuracy) Rates() Rates {
	div := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	return Rates{
		PromptStrict:      div(a.PromptStrict, a.Prompts),
		PromptLoose:       div(a.PromptLoose, a.Prompts),
		InstructionStrict: div(a.InstructionStrict, a.Instructions),
		InstructionLoose:  div(a.InstructionLoose, a.Instructions),
	}
}
