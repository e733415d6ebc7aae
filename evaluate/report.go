package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/bestofn/bestofn/evalplot"
	"github.com/bestofn/bestofn/evalstats"
	"github.com/bestofn/bestofn/judge"
	"github.com/bestofn/bestofn/rules"
	"github.com/bestofn/bestofn/teacher"
)

// ReportVersion is the version of report.json's shape; fields are only ever added within a version.
const ReportVersion = 1

// Report is report.json.
type Report struct {
	// Object is "evaluation.report"; Version is ReportVersion.
	Object  string `json:"object"`
	Version int    `json:"version"`
	// Questions describes the question set.
	Questions QuestionsInfo `json:"questions"`
	// Opponent is the reference system's name and answer statistics.
	Opponent SystemInfo `json:"opponent"`
	// Judges lists the judges used, in order ("llm", "reward", "rules").
	Judges []string `json:"judges"`
	// Groups holds one entry per evaluated group, in Fig. 4's order (a ranked group's baseline, then R1..RK).
	Groups []GroupReport `json:"groups"`
	// Bootstrap is how the intervals were made.
	Bootstrap BootstrapInfo `json:"bootstrap"`
	// Plots names the published figures (PNG and SVG of each).
	Plots []string `json:"plots"`
	// Usage is the requests and tokens of each endpoint role (a group's name, "opponent", "judge",
	// "translator") during the attempt that wrote the report; a resumed job counts only its last attempt.
	Usage map[string]teacher.Stats `json:"usage"`
}

// QuestionsInfo describes the question set.
type QuestionsInfo struct {
	Count int `json:"count"`
	// Categories in order of first appearance.
	Categories []string `json:"categories"`
	// Language is "en" or "zh" (translated before asking).
	Language string `json:"language"`
	// WithReference and WithRules count questions with a reference answer and with verifiable instructions.
	WithReference int `json:"with_reference"`
	WithRules     int `json:"with_rules"`
}

// SystemInfo are statistics of one system's answers.
type SystemInfo struct {
	Name string `json:"name"`
	// Source says where the answers came from, e.g. "llama-gpt4:r1 at http://host/v1, rank 1 of 5 (ranked by
	// server)", "file file-abc".
	Source string `json:"source"`
	// Answers counts questions answered; Missing those without an answer.
	Answers int `json:"answers"`
	Missing int `json:"missing"`
	// MeanWords and MeanChars are the mean answer length in words (runs of letters and digits) and characters.
	MeanWords float64 `json:"mean_answer_words"`
	MeanChars float64 `json:"mean_answer_chars"`
	// RougeL is ROUGE-L against the references; nil without references.
	RougeL *RougeReport `json:"rouge_l,omitempty"`
	// RulesAccuracy is IFEval's accuracies over the questions with instructions; nil without them.
	RulesAccuracy *rules.Rates `json:"rules_accuracy,omitempty"`
}

// GroupReport is one group's results.
type GroupReport struct {
	SystemInfo
	// Judges maps a judge's name to its comparison of this group with the opponent.
	Judges map[string]*JudgeReport `json:"judges"`
}

// JudgeReport is one judge's comparison of a group with the opponent.
type JudgeReport struct {
	// Judged counts pairs with scores; ParseFailures pairs the judge answered without usable scores;
	// Skipped pairs not judged (a missing answer, or no instructions for the rules judge).
	Judged        int `json:"judged"`
	ParseFailures int `json:"parse_failures"`
	Skipped       int `json:"skipped"`
	// Relative is sum(model) : sum(opponent) over the judged pairs; CI95 its paired bootstrap interval (null
	// when nothing was judged).
	Relative   evalstats.Relative   `json:"relative"`
	CI95       *evalstats.Interval  `json:"ci95"`
	WinTieLoss evalstats.WinTieLoss `json:"win_tie_loss"`
	ByCategory []evalstats.Category `json:"by_category"`
	// OrderAgreement is, for the LLM judge in both orders, the share of pairs read in both orders whose two
	// readings agree on the winner (or tie); BothOrders counts those pairs. A low agreement is position bias.
	BothOrders     int      `json:"both_orders,omitempty"`
	OrderAgreement *float64 `json:"order_agreement,omitempty"`
	// FailureExamples are up to three parse failures with the judge's raw text.
	FailureExamples []FailureExample `json:"failure_examples,omitempty"`
}

// FailureExample is one unparseable judgment.
type FailureExample struct {
	QuestionID string `json:"question_id"`
	Reason     string `json:"reason"`
	Text       string `json:"text"`
}

// RougeReport is ROUGE-L (rouge-score's rougeL F; Unicode tokens under language zh) by Fig. 6 bucket.
type RougeReport struct {
	Tokenizer string             `json:"tokenizer"`
	N         int                `json:"n"`
	MeanF     float64            `json:"mean_f"`
	Buckets   []evalstats.Bucket `json:"buckets"`
}

// BootstrapInfo is how the intervals were made.
type BootstrapInfo struct {
	Method    string  `json:"method"`
	Resamples int     `json:"resamples"`
	Level     float64 `json:"level"`
	Seed      uint64  `json:"seed"`
}

func trimAnswer(s string) string { return strings.TrimSpace(s) }

func (ev *evaluation) buildReport(judges []judge.Judge) (*Report, error) {
	lang := ev.p.Language
	if lang == "" {
		lang = "en"
	}
	rep := &Report{Object: "evaluation.report", Version: ReportVersion,
		Bootstrap: BootstrapInfo{Method: "paired percentile bootstrap over questions", Resamples: ev.p.Bootstrap.Resamples, Level: 0.95, Seed: ev.p.Bootstrap.Seed}}
	if rep.Bootstrap.Resamples == 0 {
		rep.Bootstrap.Resamples = 10000
	}
	seenCat := map[string]bool{}
	for _, q := range ev.qs {
		if !seenCat[q.Category] {
			seenCat[q.Category] = true
			rep.Questions.Categories = append(rep.Questions.Categories, q.Category)
		}
		if q.Reference != "" {
			rep.Questions.WithReference++
		}
		if len(ev.instructions(q)) > 0 {
			rep.Questions.WithRules++
		}
	}
	rep.Questions.Count, rep.Questions.Language = len(ev.qs), lang
	rep.Usage = map[string]teacher.Stats{}
	for _, c := range ev.clients {
		rep.Usage[c.role] = c.c.tc.Stats()
	}
	for _, j := range judges {
		rep.Judges = append(rep.Judges, j.Name())
	}
	rep.Opponent = ev.systemInfo(ev.p.opponentName(), "opponent")
	for _, g := range ev.groups {
		gr := GroupReport{SystemInfo: ev.systemInfo(g, g), Judges: map[string]*JudgeReport{}}
		for _, j := range judges {
			jr, err := ev.judgeReport(j.Name(), g)
			if err != nil {
				return nil, err
			}
			gr.Judges[j.Name()] = jr
		}
		rep.Groups = append(rep.Groups, gr)
	}
	return rep, nil
}

func (ev *evaluation) systemInfo(name, source string) SystemInfo {
	si := SystemInfo{Name: name, Source: ev.describe(source)}
	var refs, preds []string
	var acc rules.Accuracy
	words, chars := 0, 0
	for _, q := range ev.qs {
		a, ok := ev.answer(source, q)
		if !ok {
			si.Missing++
			continue
		}
		si.Answers++
		words += len(rules.Words(a))
		chars += utf8.RuneCountInString(a)
		if q.Reference != "" {
			refs = append(refs, q.Reference)
			preds = append(preds, a)
		}
		acc.Add(rules.Evaluate(ev.instructions(q), a))
	}
	if si.Answers > 0 {
		si.MeanWords = float64(words) / float64(si.Answers)
		si.MeanChars = float64(chars) / float64(si.Answers)
	}
	if len(refs) > 0 {
		tok, tokName := evalstats.Tokenizer(evalstats.RougeTokens), "rouge-score (ASCII a-z0-9, no stemmer)"
		if ev.p.Language == "zh" {
			tok, tokName = evalstats.UnicodeTokens, "unicode (letters and digits; one token per Han character)"
		}
		buckets, mean, _, _ := evalstats.RougeLBuckets(refs, preds, tok)
		si.RougeL = &RougeReport{Tokenizer: tokName, N: len(refs), MeanF: mean, Buckets: buckets}
	}
	if acc.Prompts > 0 {
		r := acc.Rates()
		si.RulesAccuracy = &r
	}
	return si
}

// describe says where a system's answers come from.
func (ev *evaluation) describe(source string) string {
	at := func(ep *Endpoint) string { return ep.Model + " at " + ep.BaseURL }
	if source == "opponent" {
		if g := ev.p.Opponent.Group; g != "" {
			return "group " + g + ": " + ev.describe(g)
		}
		if ev.p.Opponent.Endpoint != nil {
			return at(ev.p.Opponent.Endpoint)
		}
		return "file " + ev.p.Opponent.AnswersFile
	}
	for _, g := range ev.p.Groups {
		switch {
		case g.K == 0 && g.Name == source && g.Endpoint != nil:
			return at(g.Endpoint)
		case g.K == 0 && g.Name == source:
			return "file " + g.AnswersFile
		case g.K > 0 && (source == g.Baseline || isRank(source, g.Name, g.K)):
			rankedBy := "server"
			for _, q := range ev.qs {
				if raw, ok := ev.answers.Get("ranked:" + g.Name + "/" + q.ID); ok {
					var rec answerRecord
					if json.Unmarshal(raw, &rec) == nil && rec.RankedBy != "" {
						rankedBy = rec.RankedBy
						break
					}
				}
			}
			if source == g.Baseline {
				return fmt.Sprintf("%s, the first-sampled of %d candidates", at(g.Endpoint), g.K)
			}
			return fmt.Sprintf("%s, rank %s of %d (ranked by %s)", at(g.Endpoint), strings.TrimPrefix(source, g.Name), g.K, rankedBy)
		}
	}
	return source
}

func (ev *evaluation) judgeReport(judgeName, group string) (*JudgeReport, error) {
	jr := &JudgeReport{}
	agree := 0
	var model, opp []float64
	var cats []string
	for _, q := range ev.qs {
		raw, ok := ev.judgments.Get(judgeName + "/" + group + "/" + q.ID)
		if !ok {
			return nil, fmt.Errorf("evaluate: judgment %s/%s/%s is missing", judgeName, group, q.ID)
		}
		var row judgmentRow
		if err := json.Unmarshal(raw, &row); err != nil {
			return nil, fmt.Errorf("evaluate: judgment %s/%s/%s: %w", judgeName, group, q.ID, err)
		}
		if len(row.Orders) == 2 && row.Orders[0].OK && row.Orders[1].OK {
			jr.BothOrders++
			if sign(row.Orders[0].Model-row.Orders[0].Opponent) == sign(row.Orders[1].Model-row.Orders[1].Opponent) {
				agree++
			}
		}
		switch {
		case row.OK:
			jr.Judged++
			model = append(model, row.Model)
			opp = append(opp, row.Opponent)
			cats = append(cats, q.Category)
		case row.Failure == "missing answer" || row.Failure == "no instructions":
			jr.Skipped++
		default:
			jr.ParseFailures++
			if len(jr.FailureExamples) < 3 {
				text := ""
				if len(row.Orders) > 0 {
					text = row.Orders[0].Text
				}
				jr.FailureExamples = append(jr.FailureExamples, FailureExample{QuestionID: q.ID, Reason: row.Failure, Text: clipText(text, 300)})
			}
		}
	}
	jr.Relative, _ = evalstats.RelativeScore(model, opp)
	jr.WinTieLoss, _ = evalstats.CountWinTieLoss(model, opp)
	jr.ByCategory, _ = evalstats.ByCategory(cats, model, opp)
	if len(model) > 0 {
		iv, err := evalstats.BootstrapRatio(model, opp, evalstats.BootstrapOptions{Resamples: ev.p.Bootstrap.Resamples, Seed: ev.p.Bootstrap.Seed})
		if err == nil {
			jr.CI95 = &iv
		}
	}
	if jr.Relative.N == 0 {
		jr.Relative.Ratio = evalstats.Ratio(math.NaN())
	}
	if jr.BothOrders > 0 {
		a := float64(agree) / float64(jr.BothOrders)
		jr.OrderAgreement = &a
	}
	return jr, nil
}

func sign(v float64) int {
	switch {
	case v > 1e-9:
		return 1
	case v < -1e-9:
		return -1
	}
	return 0
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

// publish writes report.json, report.md, the plots, answers.jsonl and judgments.jsonl, and sets the result.
func (ev *evaluation) publish(ctx context.Context, rep *Report) error {
	figures := map[string]evalplot.Figure{}
	for _, j := range rep.Judges {
		var bars []evalplot.Bar
		for _, g := range rep.Groups {
			jr := g.Judges[j]
			b := evalplot.Bar{Group: g.Name, Percent: 100 * float64(jr.Relative.Ratio), Low: math.NaN(), High: math.NaN(),
				Note: fmt.Sprintf("judged %d/%d", jr.Judged, rep.Questions.Count)}
			if jr.CI95 != nil {
				b.Low, b.High = 100*float64(jr.CI95.Low), 100*float64(jr.CI95.High)
			}
			bars = append(bars, b)
		}
		f, err := evalplot.RelativeScores(fmt.Sprintf("Relative score by group (%s judge, %d questions)", j, rep.Questions.Count), rep.Opponent.Name, bars)
		if err != nil {
			return err
		}
		figures["relative_"+j] = f
	}
	if rep.Questions.WithReference > 0 {
		var series []evalplot.Series
		for _, s := range append(systemsOf(rep), rep.Opponent) {
			if s.RougeL == nil {
				continue
			}
			vals := make([]float64, len(s.RougeL.Buckets))
			for i, b := range s.RougeL.Buckets {
				vals[i] = b.MeanF
			}
			series = append(series, evalplot.Series{Group: s.Name, Values: vals})
		}
		f, err := evalplot.RougeBuckets(fmt.Sprintf("ROUGE-L by reference length (%d questions)", rep.Questions.WithReference), evalstats.Buckets, series)
		if err != nil {
			return err
		}
		figures["rouge_l"] = f
	}
	for _, name := range sortedKeys(figures) {
		rep.Plots = append(rep.Plots, name+".png", name+".svg")
	}

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("evaluate: encode report: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{{"report.json", append(js, '\n')}, {"report.md", []byte(Markdown(rep))}}
	for _, name := range sortedKeys(figures) {
		files = append(files, struct {
			name string
			data []byte
		}{name + ".png", figures[name].PNG}, struct {
			name string
			data []byte
		}{name + ".svg", figures[name].SVG})
	}
	files = append(files, struct {
		name string
		data []byte
	}{"answers.jsonl", ev.dumpAnswers()}, struct {
		name string
		data []byte
	}{"judgments.jsonl", dumpRows(ev.judgments)})
	for _, f := range files {
		if err := ev.env.publish(ctx, f.name, "results", f.data); err != nil {
			return fmt.Errorf("evaluate: publish %s: %w", f.name, err)
		}
	}
	return ev.env.setResult(summarize(rep))
}

func systemsOf(rep *Report) []SystemInfo {
	out := make([]SystemInfo, len(rep.Groups))
	for i, g := range rep.Groups {
		out[i] = g.SystemInfo
	}
	return out
}

// dumpAnswers writes one row per (system, question): {question_id, group, answer}, with a ranked answer's
// rank and score.
func (ev *evaluation) dumpAnswers() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	type row struct {
		QuestionID string   `json:"question_id"`
		Question   string   `json:"question"`
		Group      string   `json:"group"`
		Answer     string   `json:"answer"`
		Rank       int      `json:"rank,omitempty"`
		Score      *float64 `json:"score,omitempty"`
	}
	for _, g := range append(append([]string{}, ev.groups...), "opponent") {
		for _, q := range ev.qs {
			a, ok := ev.answer(g, q)
			if !ok {
				continue
			}
			r := row{QuestionID: q.ID, Question: ev.question(q), Group: g, Answer: a}
			if g == "opponent" {
				r.Group = ev.p.opponentName()
			}
			src := g
			if g == "opponent" && ev.p.Opponent.Group != "" {
				src = ev.p.Opponent.Group
			}
			if c, ok := ev.rankedCandidate(src, q); ok {
				r.Rank, r.Score = c.Rank, c.Score
			}
			enc.Encode(r)
		}
	}
	return buf.Bytes()
}

func (ev *evaluation) rankedCandidate(group string, q Question) (candidate, bool) {
	for _, g := range ev.p.Groups {
		if g.K == 0 || !(group == g.Baseline || isRank(group, g.Name, g.K)) {
			continue
		}
		raw, ok := ev.answers.Get("ranked:" + g.Name + "/" + q.ID)
		if !ok {
			return candidate{}, false
		}
		var rec answerRecord
		if json.Unmarshal(raw, &rec) != nil {
			return candidate{}, false
		}
		for _, c := range rec.Candidates {
			if group == g.Baseline && c.Index == 0 || fmt.Sprintf("%s%d", g.Name, c.Rank) == group {
				return c, true
			}
		}
	}
	return candidate{}, false
}

func dumpRows(rs rowStore) []byte {
	var buf bytes.Buffer
	for _, k := range rs.Keys() {
		if raw, ok := rs.Get(k); ok {
			buf.Write(bytes.TrimSpace(raw))
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// Summary is the job's result: each group's relative score per judge.
type Summary struct {
	Questions int                       `json:"questions"`
	Opponent  string                    `json:"opponent"`
	Groups    map[string]map[string]any `json:"groups"`
	Outputs   []string                  `json:"outputs"`
}

func summarize(rep *Report) Summary {
	s := Summary{Questions: rep.Questions.Count, Opponent: rep.Opponent.Name, Groups: map[string]map[string]any{}}
	for _, g := range rep.Groups {
		m := map[string]any{}
		for j, jr := range g.Judges {
			e := map[string]any{"relative": jr.Relative.String(), "judged": jr.Judged, "parse_failures": jr.ParseFailures}
			if jr.CI95 != nil {
				e["ci95"] = []evalstats.Ratio{jr.CI95.Low, jr.CI95.High}
			}
			m[j] = e
		}
		s.Groups[g.Name] = m
	}
	s.Outputs = append([]string{"report.json", "report.md"}, rep.Plots...)
	s.Outputs = append(s.Outputs, "answers.jsonl", "judgments.jsonl")
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortStrings(ks)
	return ks
}
