package recipe

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/bestofn/bestofn/rules"
)

// RuleStats is how well a set of answers follows their instructions, by the rule checks (strict): the mean
// fraction of an instruction's constraints an answer follows, and each check's rate.
type RuleStats struct {
	Answers   int                `json:"answers"`
	MeanScore float64            `json:"mean_fraction_followed"`
	MeanWords float64            `json:"mean_words"`
	ByCheck   map[string]float64 `json:"followed_by_check"`
}

// ruleStats scores (instruction, answer) pairs.
func ruleStats(pairs [][2]string) RuleStats {
	st := RuleStats{ByCheck: map[string]float64{}}
	counts := map[string][2]int{}
	var sum, words float64
	for _, p := range pairs {
		ins := rules.FromText(p[0])
		if len(ins) == 0 {
			continue
		}
		followed := 0
		for _, in := range ins {
			c := counts[in.ID]
			if in.Check(p[1]).Followed {
				followed++
				c[0]++
			}
			c[1]++
			counts[in.ID] = c
		}
		sum += float64(followed) / float64(len(ins))
		words += float64(len(rules.Words(p[1])))
		st.Answers++
	}
	if st.Answers > 0 {
		st.MeanScore, st.MeanWords = sum/float64(st.Answers), words/float64(st.Answers)
	}
	for id, c := range counts {
		st.ByCheck[id] = float64(c[0]) / float64(c[1])
	}
	return st
}

// sftPairs reads generate-data's sft-data rows {instruction, output}.
func sftPairs(lines [][]byte) ([][2]string, error) {
	var out [][2]string
	for _, l := range lines {
		var r struct{ Instruction, Output string }
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("sft-data row: %w", err)
		}
		out = append(out, [2]string{r.Instruction, r.Output})
	}
	return out, nil
}

// comparisonPairs reads feedback's comparison rows {user_input, responses_and_scores: [{response}]}.
func comparisonPairs(lines [][]byte) ([][2]string, error) {
	var out [][2]string
	for _, l := range lines {
		var r struct {
			UserInput string `json:"user_input"`
			RS        []struct {
				Response string `json:"response"`
			} `json:"responses_and_scores"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("comparison row: %w", err)
		}
		for _, x := range r.RS {
			out = append(out, [2]string{r.UserInput, x.Response})
		}
	}
	return out, nil
}

// answerPairs reads evaluate's answers.jsonl rows of one group.
func answerPairs(lines [][]byte, group string) ([][2]string, error) {
	var out [][2]string
	for _, l := range lines {
		var r struct{ Question, Group, Answer string }
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("answer row: %w", err)
		}
		if r.Group == group {
			out = append(out, [2]string{r.Question, r.Answer})
		}
	}
	return out, nil
}

// statsTable renders named RuleStats as a markdown table.
func statsTable(rows []struct {
	name string
	st   RuleStats
}) string {
	ids := map[string]bool{}
	for _, r := range rows {
		for id := range r.st.ByCheck {
			ids[id] = true
		}
	}
	var cols []string
	for id := range ids {
		cols = append(cols, id)
	}
	sort.Strings(cols)
	s := "| answers | n | mean fraction followed | mean words |"
	sep := "|---|---|---|---|"
	for _, c := range cols {
		s += " " + c + " |"
		sep += "---|"
	}
	s += "\n" + sep + "\n"
	for _, r := range rows {
		s += fmt.Sprintf("| %s | %d | %.3f | %.1f |", r.name, r.st.Answers, r.st.MeanScore, r.st.MeanWords)
		for _, c := range cols {
			if v, ok := r.st.ByCheck[c]; ok {
				s += fmt.Sprintf(" %.2f |", v)
			} else {
				s += " - |"
			}
		}
		s += "\n"
	}
	return s
}
