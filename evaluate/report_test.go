package evaluate

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/judge"
)

// judgeReport from stored rows: counts, order agreement, failures, sums.
func TestJudgeReport(t *testing.T) {
	e := newFileEnv(t, t.TempDir(), nil)
	defer e.close()
	rows, _ := e.rows(outJudgments)
	ev := &evaluation{p: Params{Bootstrap: struct {
		Resamples int    `json:"resamples,omitempty"`
		Seed      uint64 `json:"seed,omitempty"`
	}{Resamples: 500}}, judgments: rows}
	order := func(first bool, m, o float64, ok bool) judge.Order {
		return judge.Order{ModelFirst: first, OK: ok, Model: m, Opponent: o, Text: "x"}
	}
	verdicts := []judge.Verdict{
		{Judge: "llm", OK: true, Model: 8, Opponent: 6, Orders: []judge.Order{order(true, 9, 6, true), order(false, 7, 6, true)}},   // agree
		{Judge: "llm", OK: true, Model: 6.5, Opponent: 7, Orders: []judge.Order{order(true, 8, 7, true), order(false, 5, 7, true)}}, // disagree
		{Judge: "llm", OK: true, Model: 9, Opponent: 5, Orders: []judge.Order{order(true, 0, 0, false), order(false, 9, 5, true)}},  // one order
		{Judge: "llm", Failure: "model first: judge: unparseable scores: empty output", Orders: []judge.Order{{Text: "Once upon a time"}}},
		{Judge: "llm", Failure: "missing answer"},
	}
	for i, v := range verdicts {
		q := Question{ID: string(rune('a' + i)), Category: []string{"x", "y"}[i%2]}
		ev.qs = append(ev.qs, q)
		if err := rows.Append("llm/G/"+q.ID, judgmentRow{QuestionID: q.ID, Group: "G", Verdict: v}); err != nil {
			t.Fatal(err)
		}
	}
	jr, err := ev.judgeReport("llm", "G")
	if err != nil {
		t.Fatal(err)
	}
	if jr.Judged != 3 || jr.ParseFailures != 1 || jr.Skipped != 1 || jr.BothOrders != 2 || jr.OrderAgreement == nil || *jr.OrderAgreement != 0.5 {
		t.Errorf("report %+v", jr)
	}
	if jr.Relative.Model != 23.5 || jr.Relative.Opponent != 18 || math.Abs(float64(jr.Relative.Ratio)-23.5/18) > 1e-12 || jr.WinTieLoss.Win != 2 || jr.WinTieLoss.Loss != 1 {
		t.Errorf("relative %+v, %+v", jr.Relative, jr.WinTieLoss)
	}
	if len(jr.FailureExamples) != 1 || jr.FailureExamples[0].Text != "Once upon a time" || len(jr.ByCategory) != 2 {
		t.Errorf("failures %+v, categories %+v", jr.FailureExamples, jr.ByCategory)
	}
	b, err := json.Marshal(jr)
	if err != nil || !strings.Contains(string(b), `"order_agreement":0.5`) {
		t.Errorf("json %s, %v", b, err)
	}
	if _, err := ev.judgeReport("llm", "other"); err == nil {
		t.Error("a group without judgments: no error")
	}
}
