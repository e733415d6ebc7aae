package recipe

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/evaluate"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

func TestMain(m *testing.M) { os.Exit(teachertest.Main(m)) }

func shared(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(teachertest.RepoRoot(t), "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skip("shared data missing: ", err)
	}
	return p
}

// The whole recipe at the "tiny" size, through a real admin server's jobs and real bestofn servers: it ships a
// generator, a reward model directory, the evaluation report with its plot, the summary and the model card; no
// evaluation question is an instruction of the teacher data or of the feedback.
func TestRecipeTiny(t *testing.T) {
	base := shared(t, "models/stories260K/stories260K.gguf")
	hh := shared(t, "data/hh_rlhf_harmless_base_test.jsonl.gz")
	tok := shared(t, "tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf")
	root := teachertest.RepoRoot(t)
	work, out := t.TempDir(), t.TempDir()
	var log strings.Builder
	sum, err := Run(context.Background(), Config{Binary: teachertest.Binary(t), WorkDir: work, OutDir: out, BaseModel: base,
		HHPairs: hh, RMTokenizer: tok, ClearCutPairs: filepath.Join(root, "trainjobs", "testdata", "clear_cut_pairs.jsonl"),
		Seed: 3, HHSeed: 1234, HHFraction: 1.0 / 3, Threads: 2, Size: Sizes()["tiny"], Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sum.Steps {
		names = append(names, s.Name)
		if s.Seconds <= 0 {
			t.Errorf("step %s: %v s", s.Name, s.Seconds)
		}
	}
	if got := strings.Join(names, " "); got != "setup generate-data sft feedback train-reward check-rm evaluate" {
		t.Errorf("steps %q", got)
	}
	for _, f := range []string{"generator.gguf", "reward-model/model.onnx", "reward-model/tokenizer.json", "reward-model/config.json",
		"eval/report.json", "eval/report.md", "eval/relative_rules.png", "eval/answers.jsonl", "recipe.json"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if sum.RMCheck == nil || sum.RMCheck.HHPairs == 0 || sum.RMCheck.ClearCutPairs != 10 {
		t.Errorf("reward model check %+v", sum.RMCheck)
	}
	if sum.HH.HeldOut == 0 || sum.HH.Train != Sizes()["tiny"].HHRows {
		t.Errorf("HH rows %+v", sum.HH)
	}
	var rep evaluate.Report
	if err := readJSON(filepath.Join(out, "eval", "report.json"), &rep); err != nil {
		t.Fatal(err)
	}
	tiny := Sizes()["tiny"]
	if rep.Questions.Count != tiny.EvalTasks || rep.Questions.WithRules != tiny.EvalTasks || len(rep.Groups) != tiny.EvalK {
		t.Errorf("report: %d questions (%d with rules), %d groups", rep.Questions.Count, rep.Questions.WithRules, len(rep.Groups))
	}
	for _, g := range rep.Groups {
		if j := g.Judges["rules"]; j == nil || j.Judged != tiny.EvalTasks {
			t.Errorf("group %s: rules judge %+v", g.Name, j)
		}
	}

	// No evaluation question is among the instructions anything was trained on.
	train := map[string]bool{}
	for _, f := range []string{"sft_instructions.jsonl", "feedback_instructions.jsonl"} {
		for _, row := range jsonl(t, filepath.Join(work, "inputs", f)) {
			train[row["instruction"].(string)] = true
		}
	}
	if len(train) != tiny.SFTTasks+tiny.FeedbackTasks {
		t.Errorf("%d distinct training instructions, want %d", len(train), tiny.SFTTasks+tiny.FeedbackTasks)
	}
	for _, q := range jsonl(t, filepath.Join(work, "inputs", "eval_questions.jsonl")) {
		if train[q["prompt"].(string)] {
			t.Errorf("evaluation question %q is a training instruction", q["prompt"])
		}
	}

	if err := WriteModelCard(out, CardInfo{Command: "scripts/recipe.sh tiny", Commit: "test"}); err != nil {
		t.Fatal(err)
	}
	card, err := os.ReadFile(filepath.Join(out, "MODEL_CARD.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scripts/recipe.sh tiny", "| R1 |", "| evaluate |", "generator.gguf", "MIT"} {
		if !strings.Contains(string(card), want) {
			t.Errorf("model card lacks %q", want)
		}
	}
}

func jsonl(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
