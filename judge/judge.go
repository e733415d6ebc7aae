package judge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bestofn/bestofn/rules"
)

// Pair is one question with the two answers to compare.
type Pair struct {
	Question string
	// Model is the evaluated system's answer, Opponent the reference system's.
	Model, Opponent string
	// Instructions are the question's verifiable instructions (for the rules judge); may be nil.
	Instructions []rules.Instruction
}

// Verdict is a judge's decision on one pair.
type Verdict struct {
	// Judge names the judge ("llm", "reward", "rules").
	Judge string `json:"judge"`
	// OK is false when the judge gave no usable scores (a parse failure); Model and Opponent are then 0 and
	// Failure says why.
	OK       bool    `json:"ok"`
	Model    float64 `json:"model"`
	Opponent float64 `json:"opponent"`
	Failure  string  `json:"failure,omitempty"`
	// Orders are the LLM judge's two readings (model first, opponent first), each with its raw output.
	Orders []Order `json:"orders,omitempty"`
	// Raw holds other judges' raw numbers (reward scores; rule results).
	Raw map[string]any `json:"raw,omitempty"`
}

// Order is one reading of the LLM judge.
type Order struct {
	// ModelFirst is true when the model's answer was Assistant 1.
	ModelFirst bool `json:"model_first"`
	// Text is the judge's answer, RawResponse the HTTP body it came in.
	Text        string `json:"text"`
	RawResponse string `json:"raw_response,omitempty"`
	OK          bool   `json:"ok"`
	// Model and Opponent are the scores read (0 unless OK); Failure says why parsing failed.
	Model    float64 `json:"model"`
	Opponent float64 `json:"opponent"`
	Failure  string  `json:"failure,omitempty"`
}

// Judge compares the two answers of a pair. An error is a failure to ask (the endpoint is down, ctx ended); an
// answer the judge gave but that holds no scores is a Verdict with OK false, not an error.
type Judge interface {
	Name() string
	Judge(ctx context.Context, p Pair) (Verdict, error)
}

// ChatOptions are the decoding options of one judge request.
type ChatOptions struct {
	Temperature float64
	MaxTokens   int
	Seed        *int64
}

// Chatter is what the LLM judge needs of a chat endpoint: one system and one user message in, the assistant's
// text and the raw response body out. The teacher client (OpenAI-compatible or Ollama) satisfies it.
type Chatter interface {
	Chat(ctx context.Context, system, user string, opts ChatOptions) (text, raw string, err error)
}

// LLM is the pairwise LLM judge.
type LLM struct {
	Client Chatter
	// Temperature of the judge; Vicuna's reviewer used 0.2 (the zero value means 0, greedy).
	Temperature float64
	// MaxTokens bounds the judge's output; 0 means 512.
	MaxTokens int
	// OneOrder judges only with the model's answer first (Vicuna's original reviewer); by default both orders.
	OneOrder bool
	// Seed, when not nil, is passed to the endpoint for reproducible judging.
	Seed *int64
}

// Name implements Judge.
func (j *LLM) Name() string { return "llm" }

// Judge asks the judge once or twice and averages the orders that parsed: when one order fails to parse, the
// verdict rests on the other; when all fail, it is a parse failure with the reasons of each.
func (j *LLM) Judge(ctx context.Context, p Pair) (Verdict, error) {
	if j.Client == nil {
		return Verdict{}, errors.New("judge: LLM judge has no client")
	}
	maxTokens := j.MaxTokens
	if maxTokens == 0 {
		maxTokens = 512
	}
	opts := ChatOptions{Temperature: j.Temperature, MaxTokens: maxTokens, Seed: j.Seed}
	v := Verdict{Judge: j.Name()}
	orders := []bool{true, false}
	if j.OneOrder {
		orders = orders[:1]
	}
	var sumM, sumO float64
	var failures []string
	for _, modelFirst := range orders {
		a1, a2 := p.Model, p.Opponent
		if !modelFirst {
			a1, a2 = a2, a1
		}
		text, raw, err := j.Client.Chat(ctx, SystemPrompt, FormatPair(p.Question, a1, a2), opts)
		if err != nil {
			return Verdict{}, fmt.Errorf("judge: ask the LLM judge: %w", err)
		}
		o := Order{ModelFirst: modelFirst, Text: text, RawResponse: raw}
		s1, s2, perr := ParseScores(text)
		if perr != nil {
			o.Failure = perr.Error()
			failures = append(failures, orderName(modelFirst)+": "+perr.Error())
		} else {
			o.OK = true
			o.Model, o.Opponent = s1, s2
			if !modelFirst {
				o.Model, o.Opponent = s2, s1
			}
			sumM += o.Model
			sumO += o.Opponent
		}
		v.Orders = append(v.Orders, o)
	}
	ok := 0
	for _, o := range v.Orders {
		if o.OK {
			ok++
		}
	}
	if ok == 0 {
		v.Failure = strings.Join(failures, "; ")
		return v, nil
	}
	v.OK = true
	v.Model, v.Opponent = sumM/float64(ok), sumO/float64(ok)
	return v, nil
}

func orderName(modelFirst bool) string {
	if modelFirst {
		return "model first"
	}
	return "opponent first"
}

// Scorer scores candidate answers of one prompt; reward.Model and rules.Scorer satisfy it.
type Scorer interface {
	Score(ctx context.Context, prompt string, candidates []string) ([]float32, error)
}

// Reward judges with a reward model.
type Reward struct {
	Scorer Scorer
}

// Name implements Judge.
func (j *Reward) Name() string { return "reward" }

// Judge scores both answers and returns the Bradley-Terry preference probabilities.
func (j *Reward) Judge(ctx context.Context, p Pair) (Verdict, error) {
	s, err := j.Scorer.Score(ctx, p.Question, []string{p.Model, p.Opponent})
	if err != nil {
		return Verdict{}, fmt.Errorf("judge: reward model: %w", err)
	}
	if len(s) != 2 {
		return Verdict{}, fmt.Errorf("judge: reward model returned %d scores for 2 answers", len(s))
	}
	rm, ro := float64(s[0]), float64(s[1])
	if math.IsNaN(rm) || math.IsNaN(ro) {
		return Verdict{Judge: j.Name(), Failure: "reward model returned NaN", Raw: map[string]any{}}, nil
	}
	pm := 1 / (1 + math.Exp(-(rm - ro)))
	return Verdict{Judge: j.Name(), OK: true, Model: pm, Opponent: 1 - pm,
		Raw: map[string]any{"reward_model": rm, "reward_opponent": ro}}, nil
}

// Rules judges by the question's verifiable instructions.
type Rules struct {
	// FromText, when set, reads instructions from the question's words when the pair carries none.
	FromText bool
}

// Name implements Judge.
func (j *Rules) Name() string { return "rules" }

// Judge checks both answers. A pair without instructions is not judged (OK false, Failure "no instructions").
func (j *Rules) Judge(_ context.Context, p Pair) (Verdict, error) {
	ins := p.Instructions
	if len(ins) == 0 && j.FromText {
		ins = rules.FromText(p.Question)
	}
	v := Verdict{Judge: j.Name()}
	if len(ins) == 0 {
		v.Failure = "no instructions"
		return v, nil
	}
	om, oo := rules.Evaluate(ins, p.Model), rules.Evaluate(ins, p.Opponent)
	v.OK = true
	v.Model, v.Opponent = rules.FractionFollowed(om.Strict), rules.FractionFollowed(oo.Strict)
	v.Raw = map[string]any{
		"instructions":    ins,
		"model_strict":    followed(om.Strict),
		"model_loose":     followed(om.Loose),
		"opponent_strict": followed(oo.Strict),
		"opponent_loose":  followed(oo.Loose),
	}
	return v, nil
}

func followed(rs []rules.Result) []bool {
	out := make([]bool, len(rs))
	for i, r := range rs {
		out[i] = r.Followed
	}
	return out
}
