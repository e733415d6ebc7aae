package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// Source kinds of a feedback job.
const (
	// SourceBestofn is a served bestofn model: one request with best_of K, return_candidates and rerank
	// "none" gives K independent samples (seeds seed..seed+K-1).
	SourceBestofn = "bestofn"
	// SourceOpenAI and SourceOllama are other endpoints, asked K times with seeds seed..seed+K-1.
	SourceOpenAI = "openai"
	SourceOllama = "ollama"
	// SourceFile is an answers file (see ReadAnswers): every answer to the prompt.
	SourceFile = "file"
)

// SourceSpec is one source of candidates.
type SourceSpec struct {
	// Name labels its candidates (the comparison rows' "source"); "" means the kind and the index.
	Name string `json:"name,omitempty"`
	Kind string `json:"kind"`
	// Endpoint is the model's endpoint (bestofn: its OpenAI API, e.g. http://127.0.0.1:8080/v1, and model).
	Endpoint *teacher.Config `json:"endpoint,omitempty"`
	// K is the candidates per prompt; 0 means the job's k.
	K int `json:"k,omitempty"`
	// Extra holds more body fields for the source's requests (kinds openai and bestofn).
	Extra map[string]any `json:"extra,omitempty"`
	// File is an answers file id, Path a path on the server (kind "file").
	File string `json:"file,omitempty"`
	Path string `json:"path,omitempty"`
}

// FeedbackParams are the params of a feedback job.
type FeedbackParams struct {
	// InputFile or InputPath: the prompts (instruction rows). Optional with ABLog: the log's prompts then.
	InputFile string `json:"input_file,omitempty"`
	InputPath string `json:"input_path,omitempty"`
	// ABLog is an A/B log (a file id, or a path on the server): its answers become candidates of their prompts,
	// labelled by variant. ABModel keeps only records of that model or experiment name.
	ABLog   string `json:"ab_log,omitempty"`
	ABModel string `json:"ab_model,omitempty"`
	// Sources make candidates; at least one source or an A/B log.
	Sources []SourceSpec `json:"sources,omitempty"`
	// K is the default candidates per source and prompt; 0 means 4.
	K int `json:"k,omitempty"`
	// Temperature, TopP and MaxTokens of candidate sampling: 1.0, 1.0 and 256 when unset. Seed is the base of
	// the per-request seeds (prompt i, source s: Seed + i*65536 + s*256, candidate j adds j).
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Seed        int64    `json:"seed,omitempty"`
	// Rater is "teacher" (default: Teacher rates with Mode) or "scorer" (Scorer scores).
	Rater   string          `json:"rater,omitempty"`
	Teacher *teacher.Config `json:"teacher,omitempty"`
	Scorer  *ScorerSpec     `json:"scorer,omitempty"`
	// Mode is ModeSingle (default) or ModePairwise (every pair in both orders, scores averaged).
	Mode string `json:"mode,omitempty"`
	// RatingTemperature of the teacher's ratings (nil: 0) and RatingMaxTokens (0: 256).
	RatingTemperature *float64 `json:"rating_temperature,omitempty"`
	RatingMaxTokens   int      `json:"rating_max_tokens,omitempty"`
	// Limit keeps the first Limit prompts; 0 means all.
	Limit int `json:"limit,omitempty"`
}

func (p *FeedbackParams) check() error {
	if len(p.Sources) == 0 && p.ABLog == "" {
		return paramErr("sources", "give at least one source or an ab_log")
	}
	if p.InputFile == "" && p.InputPath == "" && p.ABLog == "" {
		return paramErr("input_file", "is required (or input_path, or ab_log for the log's prompts)")
	}
	if p.K < 0 || p.K > 64 {
		return paramErr("k", "must be in [1, 64]")
	}
	if p.K == 0 {
		p.K = 4
	}
	if p.Temperature == nil {
		p.Temperature = ptr(1.0)
	}
	if p.TopP == nil {
		p.TopP = ptr(1.0)
	}
	if p.MaxTokens == 0 {
		p.MaxTokens = 256
	}
	if err := checkNonNegative(map[string]int{"max_tokens": p.MaxTokens, "rating_max_tokens": p.RatingMaxTokens, "limit": p.Limit}); err != nil {
		return err
	}
	if err := checkSampling(map[string]*float64{"temperature": p.Temperature, "rating_temperature": p.RatingTemperature}, p.TopP); err != nil {
		return err
	}
	names := map[string]bool{}
	for i := range p.Sources {
		s := &p.Sources[i]
		f := "sources." + strconv.Itoa(i)
		if s.K < 0 || s.K > 64 {
			return paramErr(f+".k", "must be in [1, 64]")
		}
		if s.K == 0 {
			s.K = p.K
		}
		switch s.Kind {
		case SourceBestofn, SourceOpenAI, SourceOllama:
			if err := checkTeacher(f+".endpoint", s.Endpoint); err != nil {
				return err
			}
			if s.Kind == SourceOllama {
				s.Endpoint.Provider = teacher.ProviderOllama
				if len(s.Extra) > 0 {
					return paramErr(f+".extra", "extra body fields need the OpenAI API")
				}
			} else if s.Endpoint.Provider == teacher.ProviderOllama {
				return paramErr(f+".endpoint.provider", "kind %q speaks the OpenAI API", s.Kind)
			}
		case SourceFile:
			if (s.File == "") == (s.Path == "") {
				return paramErr(f+".file", "give file or path")
			}
		default:
			return paramErr(f+".kind", "must be bestofn, openai, ollama or file, not %q", s.Kind)
		}
		if s.Name == "" {
			s.Name = s.Kind + "-" + strconv.Itoa(i)
		}
		if names[s.Name] {
			return paramErr(f+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
	}
	switch p.Mode {
	case "", ModeSingle, ModePairwise:
	default:
		return paramErr("mode", "must be %q or %q", ModeSingle, ModePairwise)
	}
	switch p.Rater {
	case "", "teacher":
		if err := checkTeacher("teacher", p.Teacher); err != nil {
			return err
		}
	case "scorer":
		if p.Scorer == nil || p.Scorer.Kind == "" {
			return paramErr("scorer.kind", "is required with rater \"scorer\"")
		}
		if p.Mode == ModePairwise {
			return paramErr("mode", "pairwise needs the teacher rater")
		}
	default:
		return paramErr("rater", `must be "teacher" or "scorer", not %q`, p.Rater)
	}
	return nil
}

// Candidate is one answer to a prompt with its score (nil when no rating parsed).
type Candidate struct {
	Source   string   `json:"source"`
	Response string   `json:"response"`
	Score    *float64 `json:"score"`
}

// SourceCall records a request made for candidates: its raw response, or why it failed.
type SourceCall struct {
	Source   string          `json:"source"`
	Seed     *int64          `json:"seed,omitempty"`
	Usage    teacher.Usage   `json:"usage"`
	Attempts int             `json:"attempts,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"`
	Kind     string          `json:"kind,omitempty"` // failure kind, "" on success
	Error    string          `json:"error,omitempty"`
}

// FeedbackRow is a feedback job's per-prompt output: every candidate, every request for one, every judgment.
type FeedbackRow struct {
	Index      int          `json:"index"`
	UserInput  string       `json:"user_input"`
	Candidates []Candidate  `json:"candidates"`
	Calls      []SourceCall `json:"calls,omitempty"`
	Ratings    RatingSet    `json:"ratings"`
}

// ComparisonRow is a row of the paper's comparison data.
type ComparisonRow struct {
	UserInput          string        `json:"user_input"`
	ResponsesAndScores []ScoredReply `json:"responses_and_scores"`
}

// ScoredReply is a response with its score and source.
type ScoredReply struct {
	Response string  `json:"response"`
	Score    float64 `json:"score"`
	Source   string  `json:"source"`
}

// PreferenceRow is a TRL reward-training pair; Margin is the score difference (> 0).
type PreferenceRow struct {
	Prompt   string  `json:"prompt"`
	Chosen   string  `json:"chosen"`
	Rejected string  `json:"rejected"`
	Margin   float64 `json:"margin"`
}

// Pairs derives the preference pairs of a comparison row: every two responses with different scores (and
// different texts), the higher-scored one chosen, in the row's order.
func Pairs(c ComparisonRow) []PreferenceRow {
	var out []PreferenceRow
	rs := c.ResponsesAndScores
	for a := range rs {
		for b := a + 1; b < len(rs); b++ {
			if rs[a].Score == rs[b].Score || rs[a].Response == rs[b].Response {
				continue
			}
			hi, lo := rs[a], rs[b]
			if lo.Score > hi.Score {
				hi, lo = lo, hi
			}
			out = append(out, PreferenceRow{Prompt: c.UserInput, Chosen: hi.Response, Rejected: lo.Response, Margin: hi.Score - lo.Score})
		}
	}
	return out
}

// FeedbackResult is a feedback job's result.
type FeedbackResult struct {
	Prompts    int `json:"prompts"`
	Candidates int `json:"candidates"`
	Rated      int `json:"rated"`
	// UnparseableRatings counts judgments whose text held no score; RatingRequestFailures those whose request
	// failed; Unrated the candidates of rated prompts left without a score (kept in rating_failures.jsonl).
	UnparseableRatings    int `json:"unparseable_ratings"`
	RatingRequestFailures int `json:"rating_request_failures"`
	Unrated               int `json:"unrated"`
	// FailedPrompts counts prompts left out because a candidate or rating request failed (kept in
	// failures.jsonl; a retry of the job asks them again); SourceFailures and RatingRequestFailures count
	// those requests.
	FailedPrompts int `json:"failed_prompts"`
	// EmptyResponses counts candidates whose text is empty or white space: kept in items.jsonl, left out of
	// comparisons.jsonl and preferences.jsonl (train-reward refuses empty texts).
	EmptyResponses int `json:"empty_responses"`
	SourceFailures int `json:"source_failures"`
	Comparisons    int `json:"comparisons"`
	Pairs          int `json:"pairs"`
	// BySource gives each source's candidates, rated candidates and mean score.
	BySource map[string]SourceSummary `json:"by_source"`
	// Usage totals the candidate requests and ratings of the stored rows (all attempts).
	Usage   UsageTotal     `json:"usage"`
	Rater   map[string]any `json:"rater"`
	Outputs []string       `json:"outputs"`
}

// SourceSummary summarizes one source's candidates.
type SourceSummary struct {
	Candidates int      `json:"candidates"`
	Rated      int      `json:"rated"`
	MeanScore  *float64 `json:"mean_score"`
}

type feedbackType struct{ opts Options }

func (feedbackType) Name() string { return TypeFeedback }

func (t feedbackType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p FeedbackParams
	if err := decode(params, &p); err != nil {
		return err
	}
	if err := checkFileRef(ctx, files, "input_file", p.InputFile, "input_path", p.InputPath, false); err != nil {
		return err
	}
	if p.ABLog != "" {
		if err := checkFileOrPath(ctx, files, "ab_log", p.ABLog); err != nil {
			return err
		}
	}
	for i, s := range p.Sources {
		if s.Kind == SourceFile {
			if err := checkFileRef(ctx, files, "sources."+strconv.Itoa(i)+".file", s.File, "sources."+strconv.Itoa(i)+".path", s.Path, true); err != nil {
				return err
			}
		}
	}
	if p.Rater == "scorer" {
		return t.opts.checkScorer("scorer", *p.Scorer)
	}
	return nil
}

func (t feedbackType) Run(ctx context.Context, run *jobs.Run) error {
	return feedback(ctx, jobRun{run}, t.opts)
}

// checkFileOrPath accepts a stored file's id or an existing path.
func checkFileOrPath(ctx context.Context, files jobs.FileChecker, field, ref string) error {
	if files != nil {
		if _, err := files.File(ctx, ref); err == nil {
			return nil
		} else if !errors.Is(err, jobs.ErrNotFound) {
			return err
		}
	}
	if _, err := os.Stat(ref); err != nil {
		return paramErr(field, "%q is neither a file id nor a readable path", ref)
	}
	return nil
}

// openFileOrPath opens a stored file by id, else a path.
func openFileOrPath(ctx context.Context, r runner, ref string) (interface {
	Read([]byte) (int, error)
	Close() error
}, error) {
	if rc, _, err := r.OpenFile(ctx, ref); err == nil {
		return rc, nil
	}
	return os.Open(ref)
}

// feedbackPrompt is a prompt with the candidates that come from the log and from answer files (by source
// index).
type feedbackPrompt struct {
	in    Instruction
	fixed []Candidate
	files map[int][]Candidate
}

func feedback(ctx context.Context, r runner, opts Options) error {
	var p FeedbackParams
	if err := decode(r.Job().Params, &p); err != nil {
		return jobFailed("invalid_input", "%v", err)
	}
	prompts, err := loadFeedbackPrompts(ctx, r, &p)
	if err != nil {
		return err
	}
	judge := "teacher"
	if p.Rater == "scorer" {
		judge = "scorer"
	}
	rater, closeRater, workers, err := openRater(ctx, r, RaterSpec{Judge: judge, Teacher: p.Teacher, Scorer: p.Scorer, Mode: p.Mode,
		RatingTemperature: p.RatingTemperature, RatingMaxTokens: p.RatingMaxTokens}, opts, jobEvents(r))
	if err != nil {
		return jobFailed("invalid_input", "%v", err)
	}
	defer closeRater()
	clients := make([]*teacher.Client, len(p.Sources))
	for i, s := range p.Sources {
		if s.Endpoint == nil {
			continue
		}
		if clients[i], err = newTeacher(r, "sources."+strconv.Itoa(i)+".endpoint", *s.Endpoint); err != nil {
			return err
		}
		if judge == "scorer" {
			workers = max(workers, clients[i].Concurrency()) // a scorer is quick: the sources set the pace
		}
	}
	items, err := r.Output("items")
	if err != nil {
		return err
	}
	failures, err := r.Output("failures")
	if err != nil {
		return err
	}
	var pending []int
	for i := range prompts {
		if !items.Has(strconv.Itoa(i)) {
			pending = append(pending, i)
		}
	}
	var done atomic.Int64
	done.Store(int64(len(prompts) - len(pending)))
	if done.Load() > 0 {
		r.Event("info", "resuming: rated prompts already there are kept", map[string]any{"rated": done.Load(), "pending": len(pending)})
	}
	r.Progress(done.Load(), int64(len(prompts)), "prompts")
	work := func(ctx context.Context, pi int) error {
		i := pending[pi]
		row, err := feedbackItem(ctx, p, clients, rater, i, prompts[i])
		if err != nil {
			return err
		}
		// A prompt with a failed request is kept as a failure, not as done: the next attempt asks it again.
		// (A rating that parsed to nothing is final: the rater answered.)
		if requestFailed(row) {
			err = appendFailure(failures, strconv.Itoa(i), row)
		} else {
			err = items.Append(strconv.Itoa(i), row)
		}
		if err != nil {
			return fmt.Errorf("pipeline: store prompt %d: %w", i, err)
		}
		r.Progress(done.Add(1), int64(len(prompts)), "prompts")
		return nil
	}
	if err := runPool(ctx, workers, len(pending), work); err != nil {
		return err
	}
	return finishFeedback(ctx, r, p, rater, clients, len(prompts), items, failures)
}

// requestFailed reports whether a candidate or rating request of the row failed.
func requestFailed(row FeedbackRow) bool {
	for _, c := range row.Calls {
		if c.Kind != "" {
			return true
		}
	}
	for _, j := range row.Ratings.Judgments {
		if j.Failure == "request" {
			return true
		}
	}
	return false
}

// loadFeedbackPrompts reads the prompts (input file, else the A/B log's prompts) and attaches the fixed
// candidates of answer files and the log.
func loadFeedbackPrompts(ctx context.Context, r runner, p *FeedbackParams) ([]feedbackPrompt, error) {
	var prompts []feedbackPrompt
	index := map[string]int{}
	add := func(in Instruction) int {
		k := promptKey(in.Prompt())
		if i, ok := index[k]; ok {
			return i
		}
		index[k] = len(prompts)
		prompts = append(prompts, feedbackPrompt{in: in})
		return len(prompts) - 1
	}
	fromInput := p.InputFile != "" || p.InputPath != ""
	if fromInput {
		rc, err := openRef(ctx, r, p.InputFile, p.InputPath)
		if err != nil {
			return nil, jobFailed("invalid_input", "open prompts: %v", err)
		}
		ins, err := ReadInstructions(rc)
		rc.Close()
		if err != nil {
			return nil, jobFailed("invalid_input", "prompts: %v", err)
		}
		for _, in := range ins {
			add(in)
		}
	}
	if p.ABLog != "" {
		rc, err := openFileOrPath(ctx, r, p.ABLog)
		if err != nil {
			return nil, jobFailed("invalid_input", "open ab_log: %v", err)
		}
		recs, skipped, err := ReadABLog(rc)
		rc.Close()
		if err != nil {
			return nil, jobFailed("invalid_input", "ab_log: %v", err)
		}
		if skipped > 0 {
			r.Event("warn", "ab_log: lines that are not records were skipped", map[string]any{"skipped": skipped})
		}
		for _, rec := range recs {
			if p.ABModel != "" && rec.Model != p.ABModel {
				continue
			}
			i, ok := index[promptKey(rec.Prompt)]
			if !ok {
				if fromInput {
					continue
				}
				i = add(Instruction{Instruction: rec.Prompt})
			}
			prompts[i].fixed = append(prompts[i].fixed, Candidate{Source: rec.Variant, Response: rec.Answer})
		}
	}
	for si, s := range p.Sources {
		if s.Kind != SourceFile {
			continue
		}
		rc, err := openRef(ctx, r, s.File, s.Path)
		if err != nil {
			return nil, jobFailed("invalid_input", "open sources.%d: %v", si, err)
		}
		answers, err := ReadAnswers(rc)
		rc.Close()
		if err != nil {
			return nil, jobFailed("invalid_input", "sources.%d: %v", si, err)
		}
		counts := map[int]int{}
		for _, a := range answers {
			i, ok := index[promptKey(a.Prompt)]
			if !ok || counts[i] >= s.K {
				continue
			}
			counts[i]++
			if prompts[i].files == nil {
				prompts[i].files = map[int][]Candidate{}
			}
			prompts[i].files[si] = append(prompts[i].files[si], Candidate{Source: s.Name, Response: a.Answer})
		}
	}
	if p.Limit > 0 && len(prompts) > p.Limit {
		prompts = prompts[:p.Limit]
	}
	if len(prompts) == 0 {
		return nil, jobFailed("invalid_input", "no prompts")
	}
	return prompts, nil
}

// feedbackItem makes and rates the candidates of prompt i.
func feedbackItem(ctx context.Context, p FeedbackParams, clients []*teacher.Client, rater Rater, i int, fp feedbackPrompt) (FeedbackRow, error) {
	row := FeedbackRow{Index: i, UserInput: fp.in.Prompt()}
	row.Candidates = append(row.Candidates, fp.fixed...)
	msgs := []teacher.Message{{Role: "user", Content: fp.in.Instruction}}
	if fp.in.Input != "" {
		msgs = append(msgs, teacher.Message{Role: "user", Content: fp.in.Input})
	}
	for si, s := range p.Sources {
		if s.Kind == SourceFile {
			row.Candidates = append(row.Candidates, fp.files[si]...)
			continue
		}
		base := p.Seed + int64(i)*65536 + int64(si)*256
		opts := teacher.Options{Temperature: p.Temperature, TopP: p.TopP, MaxTokens: p.MaxTokens, Extra: map[string]any{}}
		for k, v := range s.Extra {
			opts.Extra[k] = v
		}
		record := func(seed int64, resp *teacher.Response, err error) bool {
			call := SourceCall{Source: s.Name, Seed: ptr(seed)}
			if err != nil {
				f := failureOf(err)
				call.Kind, call.Error, call.Raw, call.Attempts = f.Kind, f.Error, f.Raw, f.Attempts
			} else {
				call.Usage, call.Attempts, call.Raw = resp.Usage, resp.Attempts, resp.Raw
			}
			row.Calls = append(row.Calls, call)
			return err == nil
		}
		if s.Kind == SourceBestofn {
			opts.Seed = ptr(base)
			opts.Extra["best_of"], opts.Extra["return_candidates"], opts.Extra["rerank"] = s.K, true, "none"
			resp, err := clients[si].Chat(ctx, msgs, opts)
			if ctx.Err() != nil {
				return row, ctx.Err()
			}
			if record(base, resp, err) {
				texts, perr := bestofnCandidates(resp.Raw)
				if perr != nil {
					c := &row.Calls[len(row.Calls)-1]
					c.Kind, c.Error = "permanent", perr.Error()
				}
				for _, t := range texts {
					row.Candidates = append(row.Candidates, Candidate{Source: s.Name, Response: t})
				}
			}
			continue
		}
		for j := range s.K {
			opts.Seed = ptr(base + int64(j))
			resp, err := clients[si].Chat(ctx, msgs, opts)
			if ctx.Err() != nil {
				return row, ctx.Err()
			}
			if record(base+int64(j), resp, err) {
				row.Candidates = append(row.Candidates, Candidate{Source: s.Name, Response: resp.Text})
			}
		}
	}
	texts := make([]string, len(row.Candidates))
	for c := range row.Candidates {
		texts[c] = row.Candidates[c].Response
	}
	set, err := rater.Rate(ctx, row.UserInput, texts)
	if err != nil {
		return row, err
	}
	row.Ratings = set
	for c := range row.Candidates {
		row.Candidates[c].Score = set.Scores[c]
	}
	return row, nil
}

// bestofnCandidates reads the candidates of a bestofn response (return_candidates), in sampling order.
func bestofnCandidates(raw json.RawMessage) ([]string, error) {
	var body struct {
		Candidates []struct {
			Index int    `json:"index"`
			Text  string `json:"text"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("bestofn response: %w", err)
	}
	if len(body.Candidates) == 0 {
		return nil, errors.New("bestofn response has no candidates (is the endpoint a bestofn server?)")
	}
	sort.SliceStable(body.Candidates, func(a, b int) bool { return body.Candidates[a].Index < body.Candidates[b].Index })
	out := make([]string, len(body.Candidates))
	for i, c := range body.Candidates {
		out[i] = c.Text
	}
	return out, nil
}

// finishFeedback writes the outputs from the stored rows in prompt order.
func finishFeedback(ctx context.Context, r runner, p FeedbackParams, rater Rater, clients []*teacher.Client, n int, items, failures RowStore) error {
	res := FeedbackResult{Prompts: n, BySource: map[string]SourceSummary{}, Rater: rater.Describe()}
	sums := map[string]float64{}
	var cmp, prefs, all, unrated, failed bytes.Buffer
	lastFailure := map[int]json.RawMessage{}
	for _, k := range failures.Keys() {
		raw, _ := failures.Get(k)
		var row FeedbackRow
		if json.Unmarshal(raw, &row) == nil {
			lastFailure[row.Index] = raw
		}
	}
	cost := func(u teacher.Usage, cl *teacher.Client) {
		res.Usage.PromptTokens += u.PromptTokens
		res.Usage.CompletionTokens += u.CompletionTokens
		if cl != nil {
			res.Usage.Cost += cl.Cost(u)
		}
	}
	var raterClient *teacher.Client
	if tr, ok := rater.(*TeacherRater); ok {
		raterClient = tr.Client
	}
	srcClient := map[string]*teacher.Client{}
	for i, s := range p.Sources {
		srcClient[s.Name] = clients[i]
	}
	for i := range n {
		raw, ok := items.Get(strconv.Itoa(i))
		if !ok {
			if fr, ok := lastFailure[i]; ok {
				res.FailedPrompts++
				failed.Write(fr)
				failed.WriteByte('\n')
				var row FeedbackRow
				json.Unmarshal(fr, &row)
				for _, c := range row.Calls {
					if c.Kind != "" {
						res.SourceFailures++
					}
				}
				for _, j := range row.Ratings.Judgments {
					if j.Failure == "request" {
						res.RatingRequestFailures++
					}
				}
			}
			continue
		}
		var row FeedbackRow
		if err := json.Unmarshal(raw, &row); err != nil {
			return fmt.Errorf("pipeline: stored row %d: %w", i, err)
		}
		all.Write(raw)
		all.WriteByte('\n')
		for _, c := range row.Calls {
			if c.Kind != "" {
				res.SourceFailures++
			}
			cost(c.Usage, srcClient[c.Source])
		}
		cost(row.Ratings.Usage, raterClient)
		for _, j := range row.Ratings.Judgments {
			switch j.Failure {
			case "parse":
				res.UnparseableRatings++
			case "request":
				res.RatingRequestFailures++
			}
		}
		c := ComparisonRow{UserInput: row.UserInput}
		for ci, cand := range row.Candidates {
			res.Candidates++
			s := res.BySource[cand.Source]
			s.Candidates++
			if strings.TrimSpace(cand.Response) == "" {
				res.EmptyResponses++
				res.BySource[cand.Source] = s
				continue
			}
			if cand.Score == nil {
				res.Unrated++
				var js []Judgment
				for _, j := range row.Ratings.Judgments {
					for _, a := range j.Answers {
						if a == ci {
							js = append(js, j)
						}
					}
				}
				writeJSONL(&unrated, map[string]any{"index": row.Index, "user_input": row.UserInput, "source": cand.Source,
					"response": cand.Response, "judgments": js})
			} else {
				res.Rated++
				s.Rated++
				sums[cand.Source] += *cand.Score
				c.ResponsesAndScores = append(c.ResponsesAndScores, ScoredReply{Response: cand.Response, Score: *cand.Score, Source: cand.Source})
			}
			res.BySource[cand.Source] = s
		}
		if len(c.ResponsesAndScores) > 0 {
			res.Comparisons++
			writeJSONL(&cmp, c)
			for _, pr := range Pairs(c) {
				res.Pairs++
				writeJSONL(&prefs, pr)
			}
		}
	}
	for name, s := range res.BySource {
		if s.Rated > 0 {
			s.MeanScore = ptr(sums[name] / float64(s.Rated))
			res.BySource[name] = s
		}
	}
	if res.Rated == 0 {
		return jobFailed("rating_failed", "no candidate was rated (%d candidates, %d failed candidate requests, %d unparseable ratings, %d failed rating requests; see the events and retry)",
			res.Candidates, res.SourceFailures, res.UnparseableRatings, res.RatingRequestFailures)
	}
	for _, f := range []struct {
		name, purpose string
		body          []byte
	}{
		{"comparisons.jsonl", PurposeComparisons, cmp.Bytes()},
		{"preferences.jsonl", PurposePreferences, prefs.Bytes()},
		{"items.jsonl", "results", all.Bytes()},
		{"rating_failures.jsonl", "results", unrated.Bytes()},
		{"failures.jsonl", "results", failed.Bytes()},
	} {
		if _, err := r.PublishFile(ctx, f.name, f.purpose, bytes.NewReader(f.body)); err != nil {
			return fmt.Errorf("pipeline: publish %s: %w", f.name, err)
		}
		res.Outputs = append(res.Outputs, f.name)
	}
	r.Metrics(int64(n), map[string]float64{"candidates": float64(res.Candidates), "rated": float64(res.Rated),
		"unparseable_ratings": float64(res.UnparseableRatings), "pairs": float64(res.Pairs),
		"prompt_tokens": float64(res.Usage.PromptTokens), "completion_tokens": float64(res.Usage.CompletionTokens), "cost": res.Usage.Cost})
	return r.SetResult(res)
}
