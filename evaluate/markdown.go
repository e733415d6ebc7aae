package evaluate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bestofn/bestofn/evalstats"
)

func sortStrings(s []string) { sort.Strings(s) }

func pct(r evalstats.Ratio) string { return evalstats.FormatPercent(float64(r)) }

// Markdown renders report.md: one table per judge (groups against the opponent, with the interval, win/tie/loss
// and parse failures), the per-category breakdown of the first judge, ROUGE-L by bucket, and rule accuracies.
func Markdown(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation report\n\n%d questions (%s), %d categories; opponent: %s.\n",
		rep.Questions.Count, rep.Questions.Language, len(rep.Questions.Categories), rep.Opponent.Name)
	fmt.Fprintf(&b, "Relative score = sum(group's scores) : sum(opponent's scores) over the questions the judge scored; "+
		"95%% interval: %s, %d resamples, seed %d.\n", rep.Bootstrap.Method, rep.Bootstrap.Resamples, rep.Bootstrap.Seed)
	b.WriteString("\n| system | answers from |\n|---|---|\n")
	for _, s := range append(systemsOf(rep), rep.Opponent) {
		fmt.Fprintf(&b, "| %s | %s |\n", s.Name, s.Source)
	}
	for _, j := range rep.Judges {
		fmt.Fprintf(&b, "\n## Judge: %s\n\n", j)
		b.WriteString("| group | sum : sum = relative | 95% CI | win / tie / loss | judged | parse failures | skipped | mean words |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
		for _, g := range rep.Groups {
			jr := g.Judges[j]
			ci := "n/a"
			if jr.CI95 != nil {
				ci = fmt.Sprintf("%s - %s", pct(jr.CI95.Low), pct(jr.CI95.High))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d / %d / %d | %d | %d | %d | %.1f |\n", g.Name, jr.Relative.String(), ci,
				jr.WinTieLoss.Win, jr.WinTieLoss.Tie, jr.WinTieLoss.Loss, jr.Judged, jr.ParseFailures, jr.Skipped, g.MeanWords)
		}
		fmt.Fprintf(&b, "\nOpponent %s: mean %.1f words.\n", rep.Opponent.Name, rep.Opponent.MeanWords)
		for _, g := range rep.Groups {
			if jr := g.Judges[j]; jr.OrderAgreement != nil {
				fmt.Fprintf(&b, "%s: the two orders agree on the winner in %.0f%% of %d pairs read both ways.\n", g.Name, 100**jr.OrderAgreement, jr.BothOrders)
			}
		}
		for _, g := range rep.Groups {
			for _, fe := range g.Judges[j].FailureExamples {
				fmt.Fprintf(&b, "\nParse failure (%s, question %s): %s. Judge wrote: %q\n", g.Name, fe.QuestionID, fe.Reason, clipText(fe.Text, 160))
				break
			}
		}
		if len(rep.Questions.Categories) > 1 {
			fmt.Fprintf(&b, "\n### By category (%s judge)\n\n| group |", j)
			for _, c := range rep.Questions.Categories {
				fmt.Fprintf(&b, " %s |", c)
			}
			b.WriteString("\n|---|" + strings.Repeat("---|", len(rep.Questions.Categories)) + "\n")
			for _, g := range rep.Groups {
				byCat := map[string]evalstats.Category{}
				for _, c := range g.Judges[j].ByCategory {
					byCat[c.Category] = c
				}
				fmt.Fprintf(&b, "| %s |", g.Name)
				for _, c := range rep.Questions.Categories {
					if cc, ok := byCat[c]; ok {
						fmt.Fprintf(&b, " %s (%d) |", pct(cc.Relative.Ratio), cc.Relative.N)
					} else {
						b.WriteString(" - |")
					}
				}
				b.WriteString("\n")
			}
		}
	}
	systems := append(systemsOf(rep), rep.Opponent)
	if rep.Questions.WithReference > 0 {
		b.WriteString("\n## ROUGE-L by reference length\n\n| system | mean F |")
		for _, bk := range evalstats.Buckets {
			fmt.Fprintf(&b, " %s words |", bk)
		}
		b.WriteString("\n|---|---|" + strings.Repeat("---|", len(evalstats.Buckets)) + "\n")
		for _, s := range systems {
			if s.RougeL == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %.3f |", s.Name, s.RougeL.MeanF)
			for _, bk := range s.RougeL.Buckets {
				fmt.Fprintf(&b, " %.3f (%d) |", bk.MeanF, bk.N)
			}
			b.WriteString("\n")
		}
	}
	if rep.Questions.WithRules > 0 {
		b.WriteString("\n## Verifiable instructions (IFEval accuracies)\n\n| system | prompt strict | prompt loose | instruction strict | instruction loose |\n|---|---|---|---|---|\n")
		for _, s := range systems {
			if r := s.RulesAccuracy; r != nil {
				fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f |\n", s.Name, r.PromptStrict, r.PromptLoose, r.InstructionStrict, r.InstructionLoose)
			}
		}
	}
	if len(rep.Plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range rep.Plots {
			if strings.HasSuffix(p, ".png") {
				fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(p, ".png"), p)
			}
		}
	}
	return b.String()
}
