package evaluate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bestofn/bestofn/jobs"
)

// Params are the evaluate job's parameters (POST /admin/v1/jobs {"type": "evaluate", "params": {...}}).
type Params struct {
	// QuestionsFile is the id of an uploaded question set (JSONL; see ParseQuestions for the row shapes).
	QuestionsFile string `json:"questions_file"`
	// Limit > 0 keeps the first Limit questions.
	Limit int `json:"limit,omitempty"`
	// Language "zh" translates every question into Chinese with Translator first; the systems answer the
	// translation and the judges read Chinese (the paper's Fig. 5). "" or "en" asks the questions as they are.
	Language string `json:"language,omitempty"`
	// Translator translates for Language "zh"; nil means the LLM judge's endpoint.
	Translator *Endpoint `json:"translator,omitempty"`
	// Groups are the evaluated systems.
	Groups []Group `json:"groups"`
	// Opponent is the system every group is compared with.
	Opponent Opponent `json:"opponent"`
	// Judges: at least one.
	Judges Judges `json:"judges"`
	// Bootstrap configures the confidence intervals: Resamples 0 means 10,000, Seed 0 is a valid seed.
	Bootstrap struct {
		Resamples int    `json:"resamples,omitempty"`
		Seed      uint64 `json:"seed,omitempty"`
	} `json:"bootstrap,omitempty"`
	// Concurrency is the number of requests in flight; 0 means 2.
	Concurrency int `json:"concurrency,omitempty"`
}

// Group is one evaluated system, or a ranked family of them.
type Group struct {
	// Name names the group (e.g. "B"); for a ranked group it is the prefix of its K groups ("R": R1..RK).
	Name string `json:"name"`
	// Endpoint answers the questions; AnswersFile instead gives the answers (JSONL rows {question_id,
	// answer}; "text", "output" or FastChat's choices[0].turns[0] are read too).
	Endpoint    *Endpoint `json:"endpoint,omitempty"`
	AnswersFile string    `json:"answers_file,omitempty"`
	// K > 0 makes a ranked group (the paper's Fig. 4a/b): each question is asked once with best_of K and
	// return_candidates, and the candidate ranked k-th of K forms group Name+k. Needs an OpenAI-compatible
	// bestofn endpoint.
	K int `json:"k,omitempty"`
	// RankWith is "server" (the ranks the server returns; the default) or "reward" (rank the K candidates with
	// RankRewardModel here, e.g. a model the server does not serve).
	RankWith        string          `json:"rank_with,omitempty"`
	RankRewardModel *RewardModelRef `json:"rank_reward_model,omitempty"`
	// Baseline, when set, names one more group made of each question's first-sampled candidate (index 0,
	// before ranking): one sample from the same pool, the paper's B at no extra request.
	Baseline string `json:"baseline,omitempty"`
}

// Opponent is the reference system: an endpoint, a file of answers, or one of the evaluated groups (e.g. the
// baseline B of a ranked group, to compare R1..RK with one sample directly). A group that is the opponent is
// not judged against itself.
type Opponent struct {
	// Name labels the opponent in reports; "" means the group's name, else "opponent".
	Name        string    `json:"name,omitempty"`
	Endpoint    *Endpoint `json:"endpoint,omitempty"`
	AnswersFile string    `json:"answers_file,omitempty"`
	Group       string    `json:"group,omitempty"`
}

// RewardModelRef names a reward model: a registered one (Name, Version 0 for the latest) or a directory on the
// server (Path: model.onnx, tokenizer.json, config.json).
type RewardModelRef struct {
	Name    string `json:"name,omitempty"`
	Version int    `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
	// Runtime is "auto" (default), "go" or "ort".
	Runtime string `json:"runtime,omitempty"`
}

// Judges selects the judges.
type Judges struct {
	// LLM is the pairwise LLM judge; its Endpoint's Temperature defaults to 0.2 (Vicuna's reviewer) and
	// MaxTokens to 512.
	LLM *LLMJudge `json:"llm,omitempty"`
	// Reward judges with a reward model (use one that did not rank the candidates).
	Reward *RewardModelRef `json:"reward,omitempty"`
	// Rules checks the questions' verifiable instructions.
	Rules *RulesJudge `json:"rules,omitempty"`
}

// LLMJudge configures the LLM judge.
type LLMJudge struct {
	Endpoint
	// OneOrder judges with the model's answer first only; by default both orders, averaged.
	OneOrder bool `json:"one_order,omitempty"`
}

// RulesJudge configures the rules judge.
type RulesJudge struct {
	// FromText also reads instructions from the question's words when the row carries none.
	FromText bool `json:"from_text,omitempty"`
}

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$`)

func paramErr(field, format string, v ...any) error {
	return &jobs.ParamError{Field: field, Message: fmt.Sprintf(format, v...)}
}

// check validates params without I/O (Validate adds the file lookups). It returns the names of all groups.
func (p *Params) check() ([]string, error) {
	if p.QuestionsFile == "" {
		return nil, paramErr("questions_file", "is required")
	}
	if p.Limit < 0 {
		return nil, paramErr("limit", "must not be negative")
	}
	switch p.Language {
	case "", "en", "zh":
	default:
		return nil, paramErr("language", `must be "en" or "zh", not %q`, p.Language)
	}
	if p.Language == "zh" && p.Translator == nil && p.Judges.LLM == nil {
		return nil, paramErr("translator", `language "zh" needs a translator (or an LLM judge to translate)`)
	}
	if p.Translator != nil {
		if err := p.Translator.validate("translator"); err != nil {
			return nil, err
		}
	}
	if len(p.Groups) == 0 {
		return nil, paramErr("groups", "at least one group is required")
	}
	if p.Concurrency < 0 || p.Concurrency > 64 {
		return nil, paramErr("concurrency", "must be in 0..64")
	}
	if p.Bootstrap.Resamples < 0 || p.Bootstrap.Resamples > 1_000_000 {
		return nil, paramErr("bootstrap.resamples", "must be in 0..1000000")
	}
	var names []string
	seen := map[string]bool{}
	addName := func(field, n string) error {
		if !groupName.MatchString(n) {
			return paramErr(field, "%q is not a group name (letters, digits, _.:+-, at most 64)", n)
		}
		if seen[n] {
			return paramErr(field, "group %q is named twice", n)
		}
		seen[n] = true
		names = append(names, n)
		return nil
	}
	for i, g := range p.Groups {
		f := fmt.Sprintf("groups[%d]", i)
		if (g.Endpoint == nil) == (g.AnswersFile == "") {
			return nil, paramErr(f, "needs exactly one of endpoint and answers_file")
		}
		if g.Endpoint != nil {
			if err := g.Endpoint.validate(f + ".endpoint"); err != nil {
				return nil, err
			}
		}
		if g.K < 0 || g.K > 16 {
			return nil, paramErr(f+".k", "must be in 0..16")
		}
		if g.K == 0 {
			if g.RankWith != "" || g.RankRewardModel != nil || g.Baseline != "" {
				return nil, paramErr(f, "rank_with, rank_reward_model and baseline need k > 0")
			}
			if err := addName(f+".name", g.Name); err != nil {
				return nil, err
			}
			continue
		}
		if g.Endpoint == nil || (g.Endpoint.Provider != "" && g.Endpoint.Provider != "openai") {
			return nil, paramErr(f+".endpoint", "a ranked group (k > 0) needs an OpenAI-compatible endpoint")
		}
		switch g.RankWith {
		case "", "server":
		case "reward":
			if err := g.RankRewardModel.check(f + ".rank_reward_model"); err != nil {
				return nil, err
			}
		default:
			return nil, paramErr(f+".rank_with", `must be "server" or "reward", not %q`, g.RankWith)
		}
		for k := 1; k <= g.K; k++ {
			if err := addName(f+".name", fmt.Sprintf("%s%d", g.Name, k)); err != nil {
				return nil, err
			}
		}
		if g.Baseline != "" {
			if err := addName(f+".baseline", g.Baseline); err != nil {
				return nil, err
			}
		}
	}
	sources := 0
	for _, set := range []bool{p.Opponent.Endpoint != nil, p.Opponent.AnswersFile != "", p.Opponent.Group != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, paramErr("opponent", "needs exactly one of endpoint, answers_file and group")
	}
	if g := p.Opponent.Group; g != "" {
		if !seen[g] {
			return nil, paramErr("opponent.group", "names no group (groups: %s)", strings.Join(names, ", "))
		}
		if len(names) == 1 {
			return nil, paramErr("opponent.group", "is the only group: nothing is left to compare with it")
		}
	}
	if p.Opponent.Endpoint != nil {
		if err := p.Opponent.Endpoint.validate("opponent.endpoint"); err != nil {
			return nil, err
		}
	}
	if p.Opponent.Name != "" && !groupName.MatchString(p.Opponent.Name) {
		return nil, paramErr("opponent.name", "%q is not a name", p.Opponent.Name)
	}
	j := p.Judges
	if j.LLM == nil && j.Reward == nil && j.Rules == nil {
		return nil, paramErr("judges", "at least one of llm, reward and rules is required")
	}
	if j.LLM != nil {
		if err := j.LLM.Endpoint.validate("judges.llm"); err != nil {
			return nil, err
		}
	}
	if j.Reward != nil {
		if err := j.Reward.check("judges.reward"); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func (r *RewardModelRef) check(field string) error {
	if r == nil {
		return paramErr(field, "is required")
	}
	if (r.Name == "") == (r.Path == "") {
		return paramErr(field, "needs exactly one of name and path")
	}
	if r.Version < 0 {
		return paramErr(field+".version", "must not be negative")
	}
	switch r.Runtime {
	case "", "auto", "go", "ort":
	default:
		return paramErr(field+".runtime", `must be "auto", "go" or "ort", not %q`, r.Runtime)
	}
	return nil
}

func (p *Params) opponentName() string {
	if p.Opponent.Name != "" {
		return p.Opponent.Name
	}
	if p.Opponent.Group != "" {
		return p.Opponent.Group
	}
	return "opponent"
}
