package recipe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bestofn/bestofn/evaluate"
	"github.com/bestofn/bestofn/rules"
	"github.com/bestofn/bestofn/trainjobs"
)

// CardInfo is what the model card says besides the recipe's own records.
type CardInfo struct {
	// dir is the output directory (set by WriteModelCard).
	dir string
	// Command is the exact command that rebuilt the models; Commit the repository commit it ran at.
	Command string
	Commit  string
}

// Example is one evaluation question with its B and R1 answers.
type Example struct {
	QuestionID string
	Question   string
	B, R1      ExampleAnswer
}

// ExampleAnswer is one answer with its rule score (the fraction of the question's instructions it follows, as
// the judge counts) and the reward model's score (R1's rank 1; B's candidate's score among the same five).
type ExampleAnswer struct {
	Text      string
	Followed  int
	Of        int
	RuleScore float64
	RMScore   *float64
}

// Examples reads answers.jsonl of an evaluation and returns the first n questions (in question order, not
// chosen) with their B and R1 answers.
func Examples(answersPath string, n int) ([]Example, error) {
	f, err := os.Open(answersPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type row struct {
		QuestionID string   `json:"question_id"`
		Question   string   `json:"question"`
		Group      string   `json:"group"`
		Answer     string   `json:"answer"`
		Rank       int      `json:"rank"`
		Score      *float64 `json:"score"`
	}
	byQ := map[string]*Example{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", answersPath, err)
		}
		if r.Group != "B" && r.Group != "R1" {
			continue
		}
		ex, ok := byQ[r.QuestionID]
		if !ok {
			ex = &Example{QuestionID: r.QuestionID, Question: r.Question}
			byQ[r.QuestionID] = ex
			order = append(order, r.QuestionID)
		}
		ins := rules.FromText(r.Question)
		a := ExampleAnswer{Text: r.Answer, Of: len(ins), RMScore: r.Score}
		for _, in := range ins {
			if in.Check(r.Answer).Followed {
				a.Followed++
			}
		}
		if a.Of > 0 {
			a.RuleScore = float64(a.Followed) / float64(a.Of)
		}
		if r.Group == "B" {
			ex.B = a
		} else {
			ex.R1 = a
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Strings(order)
	var out []Example
	for _, id := range order[:min(n, len(order))] {
		out = append(out, *byQ[id])
	}
	return out, nil
}

// ExamplesMarkdown renders examples as the README shows them.
func ExamplesMarkdown(exs []Example) string {
	var b strings.Builder
	score := func(s *float64) string {
		if s == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", *s)
	}
	for i, ex := range exs {
		fmt.Fprintf(&b, "%d. **%s** (question %s)\n\n", i+1, ex.Question, ex.QuestionID)
		for _, side := range []struct {
			name string
			a    ExampleAnswer
		}{{"B", ex.B}, {"R1", ex.R1}} {
			fmt.Fprintf(&b, "   - %s (rules: %d of %d followed; reward model %s):\n\n", side.name, side.a.Followed, side.a.Of, score(side.a.RMScore))
			fmt.Fprintf(&b, "     > %s\n\n", strings.ReplaceAll(strings.TrimSpace(side.a.Text), "\n", " "))
		}
	}
	return b.String()
}

// WriteModelCard writes OutDir/MODEL_CARD.md and OutDir/eval/examples.md from recipe.json, eval/report.json and
// eval/answers.jsonl in outDir.
func WriteModelCard(outDir string, info CardInfo) error {
	var sum Summary
	if err := readJSON(filepath.Join(outDir, "recipe.json"), &sum); err != nil {
		return err
	}
	var rep evaluate.Report
	if err := readJSON(filepath.Join(outDir, "eval", "report.json"), &rep); err != nil {
		return err
	}
	exs, err := Examples(filepath.Join(outDir, "eval", "answers.jsonl"), 3)
	if err != nil {
		return err
	}
	examples := ExamplesMarkdown(exs)
	if err := os.WriteFile(filepath.Join(outDir, "eval", "examples.md"), []byte(examples), 0o644); err != nil {
		return err
	}
	var b bytes.Buffer
	info.dir = outDir
	card(&b, &sum, &rep, info, examples)
	return os.WriteFile(filepath.Join(outDir, "MODEL_CARD.md"), b.Bytes(), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// EvalTable is the rules judge's table of a report: per group, sum : sum = ratio, its interval and win/tie/loss.
func EvalTable(rep *evaluate.Report) string {
	var b strings.Builder
	b.WriteString("| group | rule score sum : B's = relative | 95% CI | win / tie / loss vs B | prompt-level accuracy (strict) | mean words |\n|---|---|---|---|---|---|\n")
	if rep.Opponent.RulesAccuracy != nil {
		fmt.Fprintf(&b, "| B | (opponent) | | | %.3f | %.1f |\n", rep.Opponent.RulesAccuracy.PromptStrict, rep.Opponent.MeanWords)
	}
	for _, g := range rep.Groups {
		j := g.Judges["rules"]
		if j == nil {
			continue
		}
		ci := "n/a"
		if j.CI95 != nil {
			ci = fmt.Sprintf("%.1f%%-%.1f%%", 100*float64(j.CI95.Low), 100*float64(j.CI95.High))
		}
		acc := math.NaN()
		if g.RulesAccuracy != nil {
			acc = g.RulesAccuracy.PromptStrict
		}
		fmt.Fprintf(&b, "| %s | %.2f : %.2f = %.1f%% | %s | %d / %d / %d | %.3f | %.1f |\n", g.Name, j.Relative.Model, j.Relative.Opponent,
			100*float64(j.Relative.Ratio), ci, j.WinTieLoss.Win, j.WinTieLoss.Tie, j.WinTieLoss.Loss, acc, g.MeanWords)
	}
	return b.String()
}

func stepByName(sum *Summary, name string) *Step {
	for i := range sum.Steps {
		if sum.Steps[i].Name == name {
			return &sum.Steps[i]
		}
	}
	return nil
}

func card(b *bytes.Buffer, sum *Summary, rep *evaluate.Report, info CardInfo, examples string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("# bestofn's default models\n\n")
	w("`generator.gguf` (a LLaMA-architecture story model fine-tuned by bestofn's `sft` job) and `reward-model/` (an ONNX\n")
	w("reward model trained by its `train-reward` job) are what `bestofn serve` loads when given no model. Both were made\n")
	w("by the recipe below, on one 2-core machine, from the files named here and nothing else.\n\n")
	w("The teacher was bestofn itself serving the base model with the `story` chat template (a request for a story is\n")
	w("rendered as the story's first sentence, \"Once upon a time, there was a cat named Tom.\", which a story model can\n")
	w("continue; the Alpaca prompt makes it write nonsense about instructions), one paragraph per sample (stop at a\n")
	w("line break), %d samples per instruction ranked by `--reward-model rules`.\n\n", sum.Size.TeacherN)
	w("They are tiny. The generator writes short children's stories and follows simple story instructions (a name, a\n")
	w("word to mention, a word limit, a happy ending) more often than its base; it does not answer questions. The reward\n")
	w("model prefers stories that follow such instructions and, trained on HH-RLHF too, the harmless of two\n")
	w("answers in clear-cut cases. Neither is a safety filter or a general assistant.\n\n")

	w("## Rebuilding them\n\n```\n%s\n```\n\n", info.Command)
	w("at commit `%s`, seed %d (HH-RLHF held-out split seed %d), size `%s`; the recipe started %s. Every step\n", info.Commit, sum.Seed, sum.HHSeed, sum.Size.Name, sum.Started)
	w("runs as a job of a fresh bestofn admin server (temporary data directory) over `/admin/v1`, and every model\n")
	w("it asks is a bestofn server on a loopback port, over the OpenAI API.\n\n")
	w("| step | what | wall time |\n|---|---|---|\n")
	what := map[string]string{
		"setup":         "start the admin server, upload instructions, questions and the base model",
		"generate-data": fmt.Sprintf("teacher answers %d training instructions: bestofn serving the base model, best of %d samples ranked by the rule checks", sum.Size.SFTTasks, sum.Size.TeacherN),
		"sft":           "fine-tune the base model on the teacher's answers (Alpaca template)",
		"feedback":      fmt.Sprintf("%d candidates from the SFT model for %d other training instructions, rated by the rule checks", sum.Size.FeedbackK, sum.Size.FeedbackTasks),
		"train-reward":  "reward model on those comparisons plus HH-RLHF's training rows (and the extra pairs listed in the params)",
		"check-rm":      "score HH-RLHF's held-out rows and the clear-cut harm pairs with the new reward model",
		"evaluate":      fmt.Sprintf("%d held-out instructions, B and R1..R%d, judged by the rule checks", sum.Size.EvalTasks, sum.Size.EvalK),
	}
	for _, s := range sum.Steps {
		w("| %s | %s | %.0f s |\n", s.Name, what[s.Name], s.Seconds)
	}
	w("| total | | %.0f s (%.1f min) |\n\n", sum.TotalSecs, sum.TotalSecs/60)

	w("## Evaluation (held-out instructions)\n\n")
	w("%d instructions of the task family's evaluation split: their (name, object) pairs appear in no training\n", rep.Questions.Count)
	w("instruction, SFT answer or comparison (package storytask, `TestHeldOutPairsNeverInTraining`). For each, the\n")
	w("SFT model served by bestofn samples %d candidates; the new reward model ranks them (R1 = its best, R%d = its\n", sum.Size.EvalK, sum.Size.EvalK)
	w("worst) and B is the first-sampled candidate (one sample, no ranking). The judge is the rule checks of the\n")
	w("instruction's own words (the teacher that rated the feedback, as the paper used GPT-4 for both); a score is\n")
	w("the fraction of the instruction's constraints an answer follows. Relative score = sum(group) : sum(B); 95%%\n")
	w("interval: %s, %d resamples, seed %d.\n\n", rep.Bootstrap.Method, rep.Bootstrap.Resamples, rep.Bootstrap.Seed)
	w("%s\n", EvalTable(rep))
	w("![relative score by rank](eval/relative_rules.png)\n\n")
	if t := teacherStudentTable(outDirOf(info), sum); t != "" {
		w("How the teacher, the SFT model and the ranking compare, by the same rule checks (a row's mean is over its\n")
		w("answers of the fraction of their instruction's constraints followed; a check's column is the share of\n")
		w("answers asked for it that follow it):\n\n%s\n", t)
	}
	w("The full report is `eval/report.md` / `eval/report.json`; every answer with its rank and reward score is in\n`eval/answers.jsonl`.\n\n")
	w("### The first three held-out questions (unedited)\n\n%s", examples)

	if c := sum.RMCheck; c != nil {
		w("## The reward model on human preferences and clear-cut harm\n\n")
		w("HH-RLHF harmless-base rows held out of training (seed %d, fraction %.3g; %d rows, %d pairs): pairwise accuracy\n", sum.HHSeed, sum.HHFraction, sum.HH.HeldOut, c.HHPairs)
		w("**%.4f** (95%% Wilson interval %.4f-%.4f; %s runtime). The bar the issue sets is an interval above 0.592 (the old\n", c.HHAccuracy, c.HHLow, c.HHHigh, c.Runtime)
		if c.HHLow > 0.592 {
			w("tiny-rm's accuracy): met.\n")
		} else {
			w("tiny-rm's accuracy): **not met** by this model.\n")
		}
		w("Clear-cut pairs (`trainjobs/testdata/clear_cut_pairs.jsonl`, not trained on): the harmless answer scores higher in\n**%d of %d**.\n\n", c.ClearCut, c.ClearCutPairs)
		for _, f := range c.ClearCutFails {
			w("- fails: %s\n", f)
		}
		if len(c.ClearCutFails) > 0 {
			w("\n")
		}
	}
	w("## Training\n\n")
	for _, name := range []string{"generate-data", "sft", "feedback", "train-reward"} {
		s := stepByName(sum, name)
		if s == nil {
			continue
		}
		w("**%s** (job %s) params:\n\n```json\n%s\n```\n\n", name, s.JobID, compactJSON(s.Params))
		if len(s.Metrics) > 0 {
			keys := make([]string, 0, len(s.Metrics))
			for k := range s.Metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			w("final metrics:")
			for _, k := range keys {
				w(" `%s` %.4g", k, s.Metrics[k])
			}
			w("\n\n")
		}
		w("result:\n\n```json\n%s\n```\n\n", compactJSON(s.Result))
	}
	w("HH-RLHF rows: %d read, %d trained on, %d held out (never trained on).\n\n", sum.HH.Rows, sum.HH.Train, sum.HH.HeldOut)

	w("## Files\n\n| file | bytes |\n|---|---|\n")
	var names []string
	total := int64(0)
	for k, v := range sum.Files {
		names = append(names, k)
		total += v
	}
	sort.Strings(names)
	for _, k := range names {
		w("| %s | %d |\n", k, sum.Files[k])
	}
	w("| generator + reward model | %d (%.1f MB) |\n\n", total, float64(total)/1e6)

	w("## Bases, data and licenses\n\n")
	w("- Base generator: stories260K (Andrej Karpathy's llama2.c, MIT license), a 260K-parameter LLaMA trained on\n")
	w("  TinyStories, with its 512-token SentencePiece tokenizer; the shipped generator keeps its tokenizer and\n")
	w("  architecture.\n")
	w("- Reward model: a LLaMA-architecture model trained from scratch by `train-reward` (shape in the params above),\n")
	w("  with the LLaMA-2 32K SentencePiece vocabulary (Meta's tokenizer, as distributed in llama.cpp's\n")
	w("  `ggml-vocab-llama-spm.gguf`, MIT repository; the vocabulary itself comes from Meta's Llama 2 release under its\n")
	w("  Llama 2 Community License) when the params say `base_model: scratch` with that tokenizer.\n")
	w("- Data: the task family's instructions (package storytask, made by this project); the teacher's answers and the\n")
	w("  comparisons are made by the recipe from stories260K's samples and the rule checks (package rules); Anthropic's\n")
	w("  HH-RLHF harmless-base pairs (MIT license); the synthetic harm pairs of `trainjobs/testdata/harm_pairs.jsonl`\n")
	w("  (made by this project, `scripts/make_harm_pairs.py`) when listed in the train-reward params.\n")
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func outDirOf(info CardInfo) string { return info.dir }

// teacherStudentTable compares the teacher's answers, the SFT model's candidates (training instructions) and
// B, R1 and R5 on the held-out ones (from eval/answers.jsonl).
func teacherStudentTable(dir string, sum *Summary) string {
	type row = struct {
		name string
		st   RuleStats
	}
	var rows []row
	if sum.Teacher != nil {
		rows = append(rows, row{fmt.Sprintf("teacher: base model, best of %d by the rules (SFT data, training instructions)", sum.Size.TeacherN), *sum.Teacher})
	}
	if sum.Student != nil {
		rows = append(rows, row{"SFT model, one sample (feedback candidates, training instructions)", *sum.Student})
	}
	lines, err := trainjobs.ReadLines(filepath.Join(dir, "eval", "answers.jsonl"))
	if err == nil {
		for _, g := range []string{"B", "R1", fmt.Sprintf("R%d", sum.Size.EvalK)} {
			if pairs, err := answerPairs(lines, g); err == nil && len(pairs) > 0 {
				rows = append(rows, row{g + " (held-out instructions)", ruleStats(pairs)})
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	return statsTable(rows)
}
