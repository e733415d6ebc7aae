package pipeline

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bestofn/bestofn/teacher"
)

// Rater scores the answers to one prompt.
type Rater interface {
	// Rate returns one score per answer (nil where no judgment could be parsed) with every judgment made. Its
	// error is ctx's or a failure of the whole rater (a scorer that broke); a teacher request that failed is a
	// Judgment with Failure "request" instead.
	Rate(ctx context.Context, prompt string, answers []string) (RatingSet, error)
	// Describe says what rates, for reports.
	Describe() map[string]any
}

// RatingSet is a Rater's verdict on the answers to a prompt.
type RatingSet struct {
	Scores    []*float64    `json:"scores"`
	Judgments []Judgment    `json:"judgments"`
	Usage     teacher.Usage `json:"usage"`
}

// Judgment is one rating request: the answers shown (one, or a pair in the order shown), the parsed scores,
// and the rater's text and raw response. Failure is "" when parsed, "parse" when the text held no score (Error
// says why), "request" when the request failed.
type Judgment struct {
	Answers []int           `json:"answers"`
	Scores  []float64       `json:"scores,omitempty"`
	Text    string          `json:"text,omitempty"`
	Raw     json.RawMessage `json:"raw,omitempty"`
	Failure string          `json:"failure,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// Rating modes of a teacher rater.
const (
	ModeSingle   = "single"   // each answer alone (RatingSingle)
	ModePairwise = "pairwise" // every pair in both orders (RatingPair); an answer's score is its mean
)

// TeacherRater asks a teacher for 1-10 ratings.
type TeacherRater struct {
	Client *teacher.Client
	// Mode is ModeSingle ("" too) or ModePairwise.
	Mode string
	// Temperature of the rating requests; nil means 0. MaxTokens bounds the judgment; 0 means 256.
	Temperature *float64
	MaxTokens   int
	// Seed, when set, is sent with every rating request.
	Seed *int64
}

// Describe implements Rater.
func (t *TeacherRater) Describe() map[string]any {
	cfg := t.Client.Config()
	mode := t.Mode
	if mode == "" {
		mode = ModeSingle
	}
	return map[string]any{"kind": "teacher", "provider": cfg.Provider, "base_url": cfg.BaseURL, "model": cfg.Model, "mode": mode}
}

// Rate implements Rater.
func (t *TeacherRater) Rate(ctx context.Context, prompt string, answers []string) (RatingSet, error) {
	opts := teacher.Options{Temperature: t.Temperature, MaxTokens: t.MaxTokens, Seed: t.Seed}
	if opts.Temperature == nil {
		opts.Temperature = ptr(0.0)
	}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = 256
	}
	set := RatingSet{Scores: make([]*float64, len(answers))}
	sums := make([]float64, len(answers))
	counts := make([]int, len(answers))
	ask := func(shown []int, content string) (Judgment, error) {
		j := Judgment{Answers: shown}
		resp, err := t.Client.Chat(ctx, []teacher.Message{{Role: "system", Content: RatingSystem}, {Role: "user", Content: content}}, opts)
		if err != nil {
			if ctx.Err() != nil {
				return j, ctx.Err()
			}
			f := failureOf(err)
			j.Failure, j.Error, j.Raw = "request", f.Error, f.Raw
			return j, nil
		}
		j.Text, j.Raw = resp.Text, resp.Raw
		set.Usage.PromptTokens += resp.Usage.PromptTokens
		set.Usage.CompletionTokens += resp.Usage.CompletionTokens
		return j, nil
	}
	if t.Mode == ModePairwise && len(answers) >= 2 {
		for a := range answers {
			for b := range answers {
				if a == b {
					continue
				}
				j, err := ask([]int{a, b}, fmt.Sprintf(RatingPair, prompt, answers[a], answers[b]))
				if err != nil {
					return set, err
				}
				if j.Failure == "" {
					sa, sb, perr := ParsePairRating(j.Text)
					if perr != nil {
						j.Failure, j.Error = "parse", perr.Error()
					} else {
						j.Scores = []float64{sa, sb}
						sums[a] += sa
						sums[b] += sb
						counts[a]++
						counts[b]++
					}
				}
				set.Judgments = append(set.Judgments, j)
			}
		}
	} else {
		for a := range answers {
			j, err := ask([]int{a}, fmt.Sprintf(RatingSingle, prompt, answers[a]))
			if err != nil {
				return set, err
			}
			if j.Failure == "" {
				s, perr := ParseRating(j.Text)
				if perr != nil {
					j.Failure, j.Error = "parse", perr.Error()
				} else {
					j.Scores = []float64{s}
					sums[a] += s
					counts[a]++
				}
			}
			set.Judgments = append(set.Judgments, j)
		}
	}
	for a := range answers {
		if counts[a] > 0 {
			set.Scores[a] = ptr(sums[a] / float64(counts[a]))
		}
	}
	return set, nil
}

// ScorerRater rates with a Scorer (a reward model, rule checks): one score per answer, nothing to parse.
type ScorerRater struct {
	Scorer Scorer
	// Name says which scorer, for reports.
	Name string
}

// Describe implements Rater.
func (s *ScorerRater) Describe() map[string]any {
	return map[string]any{"kind": "scorer", "scorer": s.Name}
}

// Rate implements Rater.
func (s *ScorerRater) Rate(ctx context.Context, prompt string, answers []string) (RatingSet, error) {
	set := RatingSet{Scores: make([]*float64, len(answers))}
	if len(answers) == 0 {
		return set, nil
	}
	scores, err := s.Scorer.Score(ctx, prompt, answers)
	if err != nil {
		return set, fmt.Errorf("pipeline: scorer %s: %w", s.Name, err)
	}
	if len(scores) != len(answers) {
		return set, fmt.Errorf("pipeline: scorer %s returned %d scores for %d answers", s.Name, len(scores), len(answers))
	}
	for i, v := range scores {
		set.Scores[i] = ptr(float64(v))
		set.Judgments = append(set.Judgments, Judgment{Answers: []int{i}, Scores: []float64{float64(v)}})
	}
	return set, nil
}

// RaterSpec names a rater in requests and flags: Judge "teacher" (Teacher rates 1-10 with Mode) or "scorer"
// (Scorer scores).
type RaterSpec struct {
	Judge             string          `json:"judge,omitempty"`
	Teacher           *teacher.Config `json:"teacher,omitempty"`
	Scorer            *ScorerSpec     `json:"scorer,omitempty"`
	Mode              string          `json:"mode,omitempty"`
	RatingTemperature *float64        `json:"rating_temperature,omitempty"`
	RatingMaxTokens   int             `json:"rating_max_tokens,omitempty"`
}

// OpenRater builds the rater a spec names (for the admin API's A/B report and the CLI); close releases a
// scorer. workers is how many answers are worth rating at once. events, when not nil, receives the teacher's
// pause and retry events.
func OpenRater(ctx context.Context, spec RaterSpec, opts Options, events teacher.EventFunc) (r Rater, close func() error, workers int, err error) {
	return openRater(ctx, nil, spec, opts, events)
}

// openRater is OpenRater with a job's runner, through which a registered reward model is found.
func openRater(ctx context.Context, run runner, spec RaterSpec, opts Options, events teacher.EventFunc) (r Rater, close func() error, workers int, err error) {
	switch spec.Judge {
	case "", "teacher":
		if err := checkTeacher("teacher", spec.Teacher); err != nil {
			return nil, nil, 0, err
		}
		var topts []teacher.Option
		if events != nil {
			topts = append(topts, teacher.WithEvents(events))
		}
		cl, err := teacher.New(*spec.Teacher, topts...)
		if err != nil {
			return nil, nil, 0, teacherParamErr("teacher", err)
		}
		return &TeacherRater{Client: cl, Mode: spec.Mode, Temperature: spec.RatingTemperature, MaxTokens: spec.RatingMaxTokens},
			func() error { return nil }, cl.Concurrency(), nil
	case "scorer":
		if spec.Scorer == nil || spec.Scorer.Kind == "" {
			return nil, nil, 0, paramErr("scorer.kind", "is required with judge \"scorer\"")
		}
		s, closeFn, err := opts.openScorer(ctx, run, *spec.Scorer)
		if err != nil {
			return nil, nil, 0, err
		}
		return &ScorerRater{Scorer: s, Name: spec.Scorer.Kind}, closeFn, 1, nil
	}
	return nil, nil, 0, paramErr("judge", `must be "teacher" or "scorer", not %q`, spec.Judge)
}
