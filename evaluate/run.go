package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/bestofn/bestofn/judge"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/rules"
)

// rowStore is the per-item output the evaluation resumes from (jobs.Output satisfies it).
type rowStore interface {
	Has(key string) bool
	Get(key string) (json.RawMessage, bool)
	Keys() []string
	Append(key string, row any) error
}

// env is what an evaluation needs of the job platform (jobs.Run through runEnv; tests use their own).
type env interface {
	rows(name string) (rowStore, error)
	openFile(ctx context.Context, id string) (io.ReadCloser, error)
	rewardModelDir(ctx context.Context, ref RewardModelRef) (string, error)
	progress(done, total int64, unit string)
	event(level, msg string, data any)
	publish(ctx context.Context, name, purpose string, content []byte) error
	setResult(v any) error
}

// Output names and row keys. Rows are keyed so a resumed job asks nothing twice:
// translations "<qid>", answers "<source>/<qid>" (source: a group, "ranked:<prefix>" or "opponent"),
// judgments "<judge>/<group>/<qid>".
const (
	outTranslations = "translations"
	outAnswers      = "answers"
	outJudgments    = "judgments"
)

// translationRow is one translated question.
type translationRow struct {
	QuestionID string `json:"question_id"`
	Text       string `json:"text"`
	Raw        string `json:"raw,omitempty"`
}

// answerRecord is one stored answer, or the candidates of one ranked request.
type answerRecord struct {
	QuestionID string `json:"question_id"`
	Source     string `json:"source"`
	Text       string `json:"text"`
	// Candidates of a ranked request, with the rank used (the server's, or the local reward model's).
	Candidates []candidate `json:"candidates,omitempty"`
	RankedBy   string      `json:"ranked_by,omitempty"`
}

type candidate struct {
	Index int      `json:"index"`
	Rank  int      `json:"rank"`
	Score *float64 `json:"score,omitempty"`
	Text  string   `json:"text"`
}

// judgmentRow is one stored verdict.
type judgmentRow struct {
	QuestionID string `json:"question_id"`
	Group      string `json:"group"`
	judge.Verdict
}

// evaluation is one run of the job.
type evaluation struct {
	p      Params
	env    env
	qs     []Question
	groups []string // every group, in report order

	translations, answers, judgments rowStore

	done, total atomic.Int64

	// files are the answers of groups and the opponent given as files: source -> question id -> answer.
	files map[string]map[string]string

	closers []io.Closer
	clients []namedClient
}

func (ev *evaluation) close() {
	for _, c := range ev.closers {
		c.Close()
	}
}

// run executes the whole evaluation and publishes the report.
func run(ctx context.Context, p Params, e env) (*Report, error) {
	names, err := p.check()
	if err != nil {
		return nil, err
	}
	ev := &evaluation{p: p, env: e, files: map[string]map[string]string{}}
	defer ev.close()
	for _, g := range reportOrder(p, names) {
		if g != p.Opponent.Group {
			ev.groups = append(ev.groups, g)
		}
	}
	if ev.qs, err = ev.loadQuestions(ctx); err != nil {
		return nil, err
	}
	for _, o := range []struct {
		name string
		dst  *rowStore
	}{{outTranslations, &ev.translations}, {outAnswers, &ev.answers}, {outJudgments, &ev.judgments}} {
		if *o.dst, err = e.rows(o.name); err != nil {
			return nil, fmt.Errorf("evaluate: open output %s: %w", o.name, err)
		}
	}
	if err := ev.loadAnswerFiles(ctx); err != nil {
		return nil, err
	}
	judges, err := ev.makeJudges(ctx)
	if err != nil {
		return nil, err
	}
	ev.total.Store(ev.countWork(len(judges)))
	e.event("info", fmt.Sprintf("evaluating %d groups on %d questions against %s", len(ev.groups), len(ev.qs), p.opponentName()), nil)

	if p.Language == "zh" {
		if err := ev.translate(ctx); err != nil {
			return nil, err
		}
	}
	if err := ev.collectAnswers(ctx); err != nil {
		return nil, err
	}
	if err := ev.judgeAll(ctx, judges); err != nil {
		return nil, err
	}
	rep, err := ev.buildReport(judges)
	if err != nil {
		return nil, err
	}
	if err := ev.publish(ctx, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// reportOrder puts each ranked group's baseline before its R1..RK, as Fig. 4 does.
func reportOrder(p Params, names []string) []string {
	var out []string
	for _, g := range p.Groups {
		if g.K == 0 {
			out = append(out, g.Name)
			continue
		}
		if g.Baseline != "" {
			out = append(out, g.Baseline)
		}
		for k := 1; k <= g.K; k++ {
			out = append(out, fmt.Sprintf("%s%d", g.Name, k))
		}
	}
	if len(out) != len(names) {
		return names
	}
	return out
}

func (ev *evaluation) loadQuestions(ctx context.Context) ([]Question, error) {
	f, err := ev.env.openFile(ctx, ev.p.QuestionsFile)
	if err != nil {
		return nil, fmt.Errorf("evaluate: open questions_file: %w", err)
	}
	defer f.Close()
	qs, err := ParseQuestions(f, ev.p.Limit)
	if err != nil {
		return nil, &jobsError{code: "invalid_input", err: err}
	}
	return qs, nil
}

func (ev *evaluation) loadAnswerFiles(ctx context.Context) error {
	load := func(source, id string) error {
		f, err := ev.env.openFile(ctx, id)
		if err != nil {
			return fmt.Errorf("evaluate: open answers of %s: %w", source, err)
		}
		defer f.Close()
		m, err := ParseAnswers(f)
		if err != nil {
			return &jobsError{code: "invalid_input", err: fmt.Errorf("answers of %s: %w", source, err)}
		}
		ev.files[source] = m
		return nil
	}
	for _, g := range ev.p.Groups {
		if g.AnswersFile != "" {
			if err := load(g.Name, g.AnswersFile); err != nil {
				return err
			}
		}
	}
	if ev.p.Opponent.AnswersFile != "" {
		return load("opponent", ev.p.Opponent.AnswersFile)
	}
	return nil
}

// countWork is the number of progress steps: translations, answer requests, judgments.
func (ev *evaluation) countWork(judges int) int64 {
	n := int64(len(ev.qs))
	var total int64
	if ev.p.Language == "zh" {
		total += n
	}
	for _, g := range ev.p.Groups {
		if g.Endpoint != nil {
			total += n
		}
	}
	if ev.p.Opponent.Endpoint != nil {
		total += n
	}
	total += n * int64(len(ev.groups)*judges)
	return total
}

func (ev *evaluation) step() {
	ev.env.progress(ev.done.Add(1), ev.total.Load(), "items")
}

// question returns the text the systems are asked: the translation under language zh.
func (ev *evaluation) question(q Question) string {
	if ev.p.Language != "zh" {
		return q.Text
	}
	if raw, ok := ev.translations.Get(q.ID); ok {
		var t translationRow
		if json.Unmarshal(raw, &t) == nil && t.Text != "" {
			return t.Text
		}
	}
	return q.Text
}

// TranslatePrompt asks the teacher for a Chinese translation of an instruction (%s).
const TranslatePrompt = "Translate the following instruction into Chinese. Keep its meaning, names and any " +
	"formatting requirements; do not answer it. Reply with the translation only.\n\n%s"

func (ev *evaluation) translate(ctx context.Context) error {
	ep := ev.p.Translator
	if ep == nil {
		ep = &ev.p.Judges.LLM.Endpoint
	}
	c, err := ev.newClient("translator", *ep)
	if err != nil {
		return err
	}
	return ev.parallel(ctx, len(ev.qs), func(ctx context.Context, i int) error {
		q := ev.qs[i]
		if ev.translations.Has(q.ID) {
			ev.step()
			return nil
		}
		maxTokens := ep.MaxTokens
		if maxTokens == 0 {
			maxTokens = 1024
		}
		text, raw, err := c.Chat(ctx, "", fmt.Sprintf(TranslatePrompt, q.Text), judge.ChatOptions{Temperature: 0, MaxTokens: maxTokens})
		if err != nil {
			return fmt.Errorf("evaluate: translate question %s: %w", q.ID, err)
		}
		if err := ev.translations.Append(q.ID, translationRow{QuestionID: q.ID, Text: trimAnswer(text), Raw: raw}); err != nil {
			return err
		}
		ev.step()
		return nil
	})
}

// collectAnswers asks every endpoint group and the opponent, skipping answers already stored.
func (ev *evaluation) collectAnswers(ctx context.Context) error {
	for _, g := range ev.p.Groups {
		if g.Endpoint == nil {
			continue
		}
		c, err := ev.newClient(g.Name, *g.Endpoint)
		if err != nil {
			return err
		}
		var ranker judge.Scorer
		if g.K > 0 && g.RankWith == "reward" {
			m, err := ev.loadReward(ctx, *g.RankRewardModel)
			if err != nil {
				return err
			}
			ranker = m
		}
		source := g.Name
		if g.K > 0 {
			source = "ranked:" + g.Name
		}
		g := g
		if err := ev.parallel(ctx, len(ev.qs), func(ctx context.Context, i int) error {
			q := ev.qs[i]
			key := source + "/" + q.ID
			if ev.answers.Has(key) {
				ev.step()
				return nil
			}
			rec, err := ev.ask(ctx, c, g, ranker, i, q)
			if err != nil {
				return err
			}
			rec.Source = source
			if err := ev.answers.Append(key, rec); err != nil {
				return err
			}
			ev.step()
			return nil
		}); err != nil {
			return err
		}
	}
	if ep := ev.p.Opponent.Endpoint; ep != nil {
		c, err := ev.newClient("opponent", *ep)
		if err != nil {
			return err
		}
		return ev.parallel(ctx, len(ev.qs), func(ctx context.Context, i int) error {
			q := ev.qs[i]
			key := "opponent/" + q.ID
			if ev.answers.Has(key) {
				ev.step()
				return nil
			}
			text, err := c.answer(ctx, ev.question(q), i)
			if err != nil {
				return fmt.Errorf("evaluate: opponent, question %s: %w", q.ID, err)
			}
			if err := ev.answers.Append(key, answerRecord{QuestionID: q.ID, Source: "opponent", Text: trimAnswer(text)}); err != nil {
				return err
			}
			ev.step()
			return nil
		})
	}
	return nil
}

func (ev *evaluation) ask(ctx context.Context, c *client, g Group, ranker judge.Scorer, i int, q Question) (answerRecord, error) {
	rec := answerRecord{QuestionID: q.ID}
	if g.K == 0 {
		text, err := c.answer(ctx, ev.question(q), i)
		if err != nil {
			return rec, fmt.Errorf("evaluate: group %s, question %s: %w", g.Name, q.ID, err)
		}
		rec.Text = trimAnswer(text)
		return rec, nil
	}
	cands, err := c.candidates(ctx, ev.question(q), i, g.K)
	if err != nil {
		return rec, fmt.Errorf("evaluate: group %s, question %s: %w", g.Name, q.ID, err)
	}
	if len(cands) != g.K {
		return rec, fmt.Errorf("evaluate: group %s: %s returned %d candidates for best_of %d (is it a bestofn server?)",
			g.Name, g.Endpoint.BaseURL, len(cands), g.K)
	}
	rec.Candidates = make([]candidate, len(cands))
	scored := false
	for j, cd := range cands {
		rec.Candidates[j] = candidate{Index: cd.Index, Rank: cd.Rank, Score: cd.Score, Text: trimAnswer(cd.Text)}
		scored = scored || cd.Score != nil
	}
	rec.RankedBy = "server"
	if !scored {
		rec.RankedBy = "sampling order (the server did not score)"
	}
	if ranker != nil {
		texts := make([]string, len(rec.Candidates))
		for j, cd := range rec.Candidates {
			texts[j] = cd.Text
		}
		scores, err := ranker.Score(ctx, ev.question(q), texts)
		if err != nil {
			return rec, fmt.Errorf("evaluate: rank candidates: %w", err)
		}
		for j := range rec.Candidates {
			v := float64(scores[j])
			rec.Candidates[j].Score = &v
		}
		rankCandidates(rec.Candidates)
		rec.RankedBy = "reward model"
	}
	return rec, nil
}

// rankCandidates sets Rank by descending score, ties by sampling index.
func rankCandidates(cs []candidate) {
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := cs[order[a]].Score, cs[order[b]].Score
		if sa != nil && sb != nil && *sa != *sb {
			return *sa > *sb
		}
		return cs[order[a]].Index < cs[order[b]].Index
	})
	for r, i := range order {
		cs[i].Rank = r + 1
	}
}

// answer returns a group's (or the opponent's) answer to a question, false when there is none.
func (ev *evaluation) answer(group string, q Question) (string, bool) {
	if group == "opponent" {
		if g := ev.p.Opponent.Group; g != "" {
			return ev.answer(g, q)
		}
		if m, ok := ev.files["opponent"]; ok {
			a, ok := m[q.ID]
			return a, ok
		}
		return ev.storedText("opponent/" + q.ID)
	}
	if m, ok := ev.files[group]; ok {
		a, ok := m[q.ID]
		return a, ok
	}
	for _, g := range ev.p.Groups {
		switch {
		case g.K == 0 && g.Name == group:
			return ev.storedText(g.Name + "/" + q.ID)
		case g.K > 0 && (group == g.Baseline || isRank(group, g.Name, g.K)):
			raw, ok := ev.answers.Get("ranked:" + g.Name + "/" + q.ID)
			if !ok {
				return "", false
			}
			var rec answerRecord
			if json.Unmarshal(raw, &rec) != nil {
				return "", false
			}
			for _, c := range rec.Candidates {
				if group == g.Baseline && c.Index == 0 || group != g.Baseline && fmt.Sprintf("%s%d", g.Name, c.Rank) == group {
					return c.Text, true
				}
			}
			return "", false
		}
	}
	return "", false
}

func isRank(group, prefix string, k int) bool {
	for r := 1; r <= k; r++ {
		if group == fmt.Sprintf("%s%d", prefix, r) {
			return true
		}
	}
	return false
}

func (ev *evaluation) storedText(key string) (string, bool) {
	raw, ok := ev.answers.Get(key)
	if !ok {
		return "", false
	}
	var rec answerRecord
	if json.Unmarshal(raw, &rec) != nil {
		return "", false
	}
	return rec.Text, true
}

// newClient makes a teacher client whose events go to the job's log and whose usage is reported.
func (ev *evaluation) newClient(role string, ep Endpoint) (*client, error) {
	c, err := newClient(ep, func(level, msg string, data map[string]any) {
		ev.env.event(level, role+": "+msg, data)
	})
	if err != nil {
		return nil, err
	}
	ev.clients = append(ev.clients, namedClient{role, c})
	return c, nil
}

type namedClient struct {
	role string
	c    *client
}

// instructions are a question's verifiable instructions: the row's, or with the rules judge's from_text those
// stated in its (original, untranslated) words.
func (ev *evaluation) instructions(q Question) []rules.Instruction {
	if len(q.instructions) > 0 {
		return q.instructions
	}
	if r := ev.p.Judges.Rules; r != nil && r.FromText {
		return rules.FromText(q.Text)
	}
	return nil
}

// makeJudges builds the configured judges in a fixed order: llm, reward, rules.
func (ev *evaluation) makeJudges(ctx context.Context) ([]judge.Judge, error) {
	var js []judge.Judge
	if j := ev.p.Judges.LLM; j != nil {
		c, err := ev.newClient("judge", j.Endpoint)
		if err != nil {
			return nil, err
		}
		temp := 0.2
		if j.Temperature != nil {
			temp = *j.Temperature
		}
		js = append(js, &judge.LLM{Client: c, Temperature: temp, MaxTokens: j.MaxTokens, OneOrder: j.OneOrder, Seed: j.Seed})
	}
	if r := ev.p.Judges.Reward; r != nil {
		m, err := ev.loadReward(ctx, *r)
		if err != nil {
			return nil, err
		}
		js = append(js, &judge.Reward{Scorer: m})
	}
	if r := ev.p.Judges.Rules; r != nil {
		js = append(js, &judge.Rules{}) // instructions come with each pair (see instructions)
	}
	return js, nil
}

func (ev *evaluation) loadReward(ctx context.Context, ref RewardModelRef) (*reward.Model, error) {
	dir, err := ev.env.rewardModelDir(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("evaluate: reward model: %w", err)
	}
	m, err := reward.Load(dir, reward.Options{Runtime: ref.Runtime})
	if err != nil {
		return nil, fmt.Errorf("evaluate: load reward model %s: %w", dir, err)
	}
	ev.closers = append(ev.closers, m)
	return m, nil
}

// judgeAll judges every group's answer against the opponent's with every judge.
func (ev *evaluation) judgeAll(ctx context.Context, judges []judge.Judge) error {
	type item struct {
		j     judge.Judge
		group string
		q     Question
	}
	var items []item
	for _, j := range judges {
		for _, g := range ev.groups {
			for _, q := range ev.qs {
				items = append(items, item{j, g, q})
			}
		}
	}
	return ev.parallel(ctx, len(items), func(ctx context.Context, i int) error {
		it := items[i]
		key := it.j.Name() + "/" + it.group + "/" + it.q.ID
		if ev.judgments.Has(key) {
			ev.step()
			return nil
		}
		model, ok1 := ev.answer(it.group, it.q)
		opp, ok2 := ev.answer("opponent", it.q)
		var v judge.Verdict
		if !ok1 || !ok2 {
			v = judge.Verdict{Judge: it.j.Name(), Failure: "missing answer"}
		} else {
			var err error
			v, err = it.j.Judge(ctx, judge.Pair{Question: ev.question(it.q), Model: model, Opponent: opp, Instructions: ev.instructions(it.q)})
			if err != nil {
				return fmt.Errorf("evaluate: judge %s, group %s, question %s: %w", it.j.Name(), it.group, it.q.ID, err)
			}
		}
		if err := ev.judgments.Append(key, judgmentRow{QuestionID: it.q.ID, Group: it.group, Verdict: v}); err != nil {
			return err
		}
		ev.step()
		return nil
	})
}

// parallel runs f(0..n-1) on Concurrency goroutines; the first error cancels the rest and is returned.
func (ev *evaluation) parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	workers := ev.p.Concurrency
	if workers == 0 {
		workers = 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		errOnce sync.Once
		first   error
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// jobsError carries a job error code (see jobs.JobError).
type jobsError struct {
	code string
	err  error
}

func (e *jobsError) Error() string { return e.err.Error() }
func (e *jobsError) Unwrap() error { return e.err }
