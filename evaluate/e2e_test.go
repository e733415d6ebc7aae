package evaluate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// testQuestions is a small mixed question set: a Vicuna-80 row as it is, three story prompts with
// IFEval-shaped rules, and two rows with references for ROUGE-L.
func testQuestions(t *testing.T, dir string) string {
	t.Helper()
	vicuna, err := os.ReadFile(sharedData(t, "vicuna_question_80.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(vicuna), "\n", 2)[:1]
	lines = append(lines,
		`{"question_id": "story-1", "category": "story", "prompt": "Write a story about a girl named Lily who plays in the park, in under 60 words.", "instruction_id_list": ["detectable_content:name", "length_constraints:number_words"], "kwargs": [{"name": "Lily"}, {"num_words": 60, "relation": "less than"}]}`,
		`{"question_id": "story-2", "category": "story", "prompt": "Tell a story about a dog that mentions a ball.", "instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": ["ball"]}]}`,
		`{"question_id": "story-3", "category": "story", "prompt": "Write a story that starts with 'Once upon a time' and ends happily.", "instruction_id_list": ["startend:start_checker", "sentiment:ends_happily"], "kwargs": [{"start_phrase": "Once upon a time"}, {}]}`,
		`{"question_id": "ref-1", "category": "reference", "prompt": "What did the little girl like to do?", "reference": "She liked to play outside in the park."}`,
		`{"question_id": "ref-2", "category": "reference", "prompt": "Name a color.", "reference": "Red."}`,
	)
	p := filepath.Join(dir, "questions.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testOpponent is a file of plain, decent answers, standing in for ChatGPT.
func testOpponent(t *testing.T, dir string) string {
	t.Helper()
	rows := []string{
		`{"question_id": 1, "answer": "Plan your day, set priorities, and take short breaks."}`,
		`{"question_id": "story-1", "answer": "Lily ran to the park. She played on the swings and laughed. The end."}`,
		`{"question_id": "story-2", "answer": "Max the dog found a red ball. He played with it all day."}`,
		`{"question_id": "story-3", "answer": "Once upon a time, a cat lost her hat. Her friend found it and she was happy."}`,
		`{"question_id": "ref-1", "answer": "She liked to play in the park."}`,
		`{"question_id": "ref-2", "answer": "Blue."}`,
	}
	p := filepath.Join(dir, "opponent.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func i64(v int64) *int64 { return &v }

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// TestEvaluateAgainstBestofn drives the whole evaluation against a real bestofn server (stories260K with the
// tiny reward model): B and R1..R5 through its OpenAI API as the evaluated systems and the same server as the
// LLM judge. The story model cannot judge, so most judgments must be counted as parse failures with their
// raw text, while the rules and reward-model judges give real numbers.
func TestEvaluateAgainstBestofn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bestofn server")
	}
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, nil) // counts requests
	dir := t.TempDir()
	files := map[string]string{"file-q": testQuestions(t, dir), "file-opp": testOpponent(t, dir)}
	rm := filepath.Join(teachertest.RepoRoot(t), "reward", "testdata", "tiny-rm")
	openai := func(model string, maxTokens int) *Endpoint {
		return &Endpoint{Config: teacher.Config{BaseURL: proxy.URL + "/v1", Model: model}, MaxTokens: maxTokens, Seed: i64(11)}
	}
	p := Params{
		QuestionsFile: "file-q",
		Groups: []Group{
			{Name: "B", Endpoint: openai("llama-gpt4", 48)},
			{Name: "R", K: 5, Endpoint: openai("llama-gpt4:r1", 48)},
		},
		Opponent: Opponent{Name: "reference", AnswersFile: "file-opp"},
		Judges: Judges{
			// One order here to keep the test near a minute on 2 shared cores (a judge request is ~600
			// prompt tokens); TestEvaluateOllamaChinese judges in both orders.
			LLM:    &LLMJudge{Endpoint: *openai("llama-gpt4", 24), OneOrder: true},
			Reward: &RewardModelRef{Path: rm, Runtime: "go"},
			Rules:  &RulesJudge{},
		},
	}
	p.Bootstrap.Resamples = 2000
	p.Bootstrap.Seed = 5
	e := newFileEnv(t, dir, files)
	rep, err := run(t.Context(), p, e)
	e.close()
	if err != nil {
		t.Fatal(err)
	}
	const nq = 6
	groups := []string{"B", "R1", "R2", "R3", "R4", "R5"}
	if len(rep.Groups) != len(groups) {
		t.Fatalf("%d groups", len(rep.Groups))
	}
	for i, g := range rep.Groups {
		if g.Name != groups[i] || g.Answers != nq || g.Missing != 0 || g.MeanWords <= 0 {
			t.Errorf("group %d: %+v", i, g.SystemInfo)
		}
		llm := g.Judges["llm"]
		if llm.Judged+llm.ParseFailures+llm.Skipped != nq || llm.Skipped != 0 {
			t.Errorf("%s llm: %d judged + %d failures + %d skipped", g.Name, llm.Judged, llm.ParseFailures, llm.Skipped)
		}
		if llm.ParseFailures < nq/2 {
			t.Errorf("%s: a story model parsed as a judge %d of %d times", g.Name, llm.Judged, nq)
		}
		if len(llm.FailureExamples) == 0 || llm.FailureExamples[0].Text == "" || !strings.Contains(llm.FailureExamples[0].Reason, "unparseable") {
			t.Errorf("%s: failure examples %+v", g.Name, llm.FailureExamples)
		}
		rules := g.Judges["rules"]
		if rules.Judged != 3 || rules.Skipped != nq-3 || rules.CI95 == nil || math.IsNaN(float64(rules.Relative.Ratio)) && rules.Relative.Opponent > 0 {
			t.Errorf("%s rules: %+v", g.Name, rules)
		}
		if g.RulesAccuracy == nil || g.RougeL == nil || g.RougeL.N != 2 {
			t.Errorf("%s: rules accuracy %+v, ROUGE-L %+v", g.Name, g.RulesAccuracy, g.RougeL)
		}
		rw := g.Judges["reward"]
		if rw.Judged != nq || rw.CI95 == nil || rw.Relative.Model+rw.Relative.Opponent < nq-1e-9 || rw.Relative.Model+rw.Relative.Opponent > nq+1e-9 {
			t.Errorf("%s reward: %+v", g.Name, rw)
		}
	}
	// The ranking model judges too here (the only reward model at hand), so its relative score must fall
	// from R1 to R5: R_k is the candidate it ranked k-th.
	for k := 2; k < len(rep.Groups); k++ {
		prev, cur := rep.Groups[k-1].Judges["reward"].Relative.Model, rep.Groups[k].Judges["reward"].Relative.Model
		if cur > prev+1e-3 {
			t.Errorf("reward judge: %s scores %v above %s's %v", rep.Groups[k].Name, cur, rep.Groups[k-1].Name, prev)
		}
	}
	if src := rep.Groups[1].Source; !strings.Contains(src, "llama-gpt4:r1 at ") || !strings.HasSuffix(src, "rank 1 of 5 (ranked by server)") {
		t.Errorf("R1 source %q", src)
	}
	if rep.Opponent.Name != "reference" || rep.Opponent.RulesAccuracy == nil || rep.Opponent.RulesAccuracy.PromptStrict != 1 {
		t.Errorf("opponent %+v (all its story answers follow the rules)", rep.Opponent)
	}
	if rep.Usage["judge"].Requests != nq*int64(len(groups)) || rep.Usage["B"].Requests != nq || rep.Usage["R"].Requests != nq {
		t.Errorf("usage %+v", rep.Usage)
	}

	pub := filepath.Join(dir, "published")
	for _, name := range []string{"report.json", "report.md", "answers.jsonl", "judgments.jsonl",
		"relative_llm.png", "relative_llm.svg", "relative_rules.png", "relative_reward.png", "rouge_l.png", "rouge_l.svg"} {
		if st, err := os.Stat(filepath.Join(pub, name)); err != nil || st.Size() == 0 {
			t.Errorf("published %s: %v", name, err)
		}
	}
	for _, name := range []string{"relative_llm.png", "rouge_l.png"} {
		b, _ := os.ReadFile(filepath.Join(pub, name))
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	answers := readJSONL(t, filepath.Join(pub, "answers.jsonl"))
	if len(answers) != nq*(len(groups)+1) {
		t.Errorf("%d answer rows", len(answers))
	}
	ranks := map[string]float64{}
	for _, a := range answers {
		if g := a["group"].(string); strings.HasPrefix(g, "R") {
			ranks[g] += a["rank"].(float64)
		}
	}
	for k, g := range []string{"R1", "R2", "R3", "R4", "R5"} {
		if ranks[g] != float64((k+1)*nq) {
			t.Errorf("answers of %s carry ranks summing to %v", g, ranks[g])
		}
	}
	judgments := readJSONL(t, filepath.Join(pub, "judgments.jsonl"))
	if len(judgments) != 3*nq*len(groups) {
		t.Errorf("%d judgment rows", len(judgments))
	}
	rawKept := 0
	for _, j := range judgments {
		if orders, ok := j["orders"].([]any); ok && len(orders) == 1 {
			o := orders[0].(map[string]any)
			if o["text"] != "" && strings.Contains(o["raw_response"].(string), `"choices"`) {
				rawKept++
			}
		}
	}
	if rawKept != nq*len(groups) {
		t.Errorf("%d LLM judgments keep the raw text", rawKept)
	}
	md, _ := os.ReadFile(filepath.Join(pub, "report.md"))
	for _, s := range []string{"| R1 |", "parse failures", "ROUGE-L", "prompt strict", "![relative_llm](relative_llm.png)"} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	if e.progressDone != e.progressTotal || e.progressTotal == 0 {
		t.Errorf("progress %d of %d", e.progressDone, e.progressTotal)
	}

	// Resume: a second run on the same outputs asks nothing and writes the same numbers.
	first, _ := os.ReadFile(filepath.Join(pub, "report.json"))
	before := proxy.Requests.Load()
	e2 := newFileEnv(t, dir, files)
	rep2, err := run(t.Context(), p, e2)
	e2.close()
	if err != nil {
		t.Fatal(err)
	}
	if n := proxy.Requests.Load() - before; n != 0 {
		t.Errorf("the resumed run sent %d requests", n)
	}
	second, _ := os.ReadFile(filepath.Join(pub, "report.json"))
	if stripUsage(t, first) != stripUsage(t, second) || rep2.Usage["judge"].Requests != 0 {
		t.Errorf("the resumed run's report differs")
	}
	if os.Getenv("BESTOFN_EVAL_KEEP") != "" {
		os.CopyFS(os.Getenv("BESTOFN_EVAL_KEEP"), os.DirFS(pub))
	}

	// A ranked group ranked here by a reward model rather than by the server, with the first-sampled
	// candidate as its baseline and that baseline as the opponent: the local scores order R1..R3 against S1.
	dir3 := t.TempDir()
	p3 := Params{
		QuestionsFile: "file-q", Limit: 4,
		Groups: []Group{{Name: "R", K: 3, Endpoint: openai("llama-gpt4", 32), Baseline: "S1",
			RankWith: "reward", RankRewardModel: &RewardModelRef{Path: rm, Runtime: "go"}}},
		Opponent: Opponent{Group: "S1"},
		Judges:   Judges{Reward: &RewardModelRef{Path: rm, Runtime: "go"}},
	}
	e3 := newFileEnv(t, dir3, files)
	rep3, err := run(t.Context(), p3, e3)
	e3.close()
	if err != nil {
		t.Fatal(err)
	}
	var names3 []string
	for _, g := range rep3.Groups {
		names3 = append(names3, g.Name)
	}
	if strings.Join(names3, ",") != "R1,R2,R3" || rep3.Opponent.Name != "S1" || rep3.Opponent.Answers != 4 {
		t.Errorf("groups %v, opponent %+v", names3, rep3.Opponent)
	}
	for k := 1; k < 3; k++ {
		if prev, cur := rep3.Groups[k-1].Judges["reward"].Relative.Model, rep3.Groups[k].Judges["reward"].Relative.Model; cur > prev+1e-3 {
			t.Errorf("locally ranked: %s scores %v above %v", rep3.Groups[k].Name, cur, prev)
		}
	}
	if src := rep3.Opponent.Source + " | " + rep3.Groups[0].Source; !strings.Contains(src, "group S1: ") || !strings.Contains(src, "first-sampled of 3") || !strings.Contains(src, "(ranked by reward model)") {
		t.Errorf("sources %q", src)
	}
	for _, a := range readJSONL(t, filepath.Join(dir3, "published", "answers.jsonl")) {
		if a["group"] == "S1" && a["rank"] == nil {
			t.Errorf("baseline answer without its rank: %v", a)
		}
	}
}

func stripUsage(t *testing.T, b []byte) string {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "usage")
	out, _ := json.Marshal(m)
	return string(out)
}

// TestEvaluateOllamaChinese asks and judges through the Ollama API, with the questions translated first
// (language zh): the translations are stored, asked and judged, and ROUGE-L uses Unicode tokens.
func TestEvaluateOllamaChinese(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bestofn server")
	}
	srv := teachertest.Serve(t)
	dir := t.TempDir()
	files := map[string]string{"file-q": testQuestions(t, dir), "file-opp": testOpponent(t, dir)}
	ollama := Endpoint{Config: teacher.Config{Provider: "ollama", BaseURL: srv.URL, Model: "llama-gpt4"}, MaxTokens: 24, Seed: i64(3)}
	translator := Endpoint{Config: teacher.Config{BaseURL: srv.URL + "/v1", Model: "llama-gpt4"}, MaxTokens: 24}
	p := Params{
		QuestionsFile: "file-q", Limit: 6, Language: "zh", Translator: &translator,
		Groups:   []Group{{Name: "B", Endpoint: &ollama}},
		Opponent: Opponent{AnswersFile: "file-opp"},
		Judges:   Judges{LLM: &LLMJudge{Endpoint: ollama}, Rules: &RulesJudge{}},
	}
	e := newFileEnv(t, dir, files)
	rep, err := run(t.Context(), p, e)
	e.close()
	if err != nil {
		t.Fatal(err)
	}
	llm := rep.Groups[0].Judges["llm"]
	if rep.Questions.Language != "zh" || rep.Questions.Count != 6 || llm.Judged+llm.ParseFailures != 6 || llm.ParseFailures == 0 {
		t.Errorf("questions %+v, llm %+v", rep.Questions, llm)
	}
	// 12 judge requests: both orders of 6 pairs.
	if rep.Usage["translator"].Requests != 6 || rep.Usage["judge"].Requests != 12 || rep.Usage["B"].Requests != 6 {
		t.Errorf("usage %+v", rep.Usage)
	}
	for _, j := range readJSONL(t, filepath.Join(dir, "published", "judgments.jsonl")) {
		if j["judge"] != "llm" {
			continue
		}
		orders, _ := j["orders"].([]any)
		if len(orders) != 2 || orders[0].(map[string]any)["model_first"] != true || orders[1].(map[string]any)["model_first"] != false ||
			!strings.Contains(orders[1].(map[string]any)["raw_response"].(string), `"message"`) {
			t.Errorf("an Ollama judgment: %v", j)
		}
	}
	if r := rep.Groups[0].RougeL; r == nil || r.N != 2 || !strings.HasPrefix(r.Tokenizer, "unicode") {
		t.Errorf("ROUGE-L under zh: %+v", r)
	}
	answers := readJSONL(t, filepath.Join(dir, "published", "answers.jsonl"))
	translated := 0
	orig, _ := ParseQuestions(strings.NewReader(mustRead(t, files["file-q"])), 6)
	for _, a := range answers {
		for _, q := range orig {
			if a["question_id"] == q.ID && a["question"] != q.Text {
				translated++
			}
		}
	}
	if translated != 2*6 { // B and the opponent, 6 questions each
		t.Errorf("%d answers were asked the translated question", translated)
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
