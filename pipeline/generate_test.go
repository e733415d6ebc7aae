package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

func sharedData(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(teachertest.RepoRoot(t), "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		t.Skip("shared data missing: ", err)
	}
	return p
}

// TestReadSharedInstructions loads ../shared's instruction and question files as they are.
func TestReadSharedInstructions(t *testing.T) {
	for _, c := range []struct {
		file       string
		n, unique  int
		firstInput string
	}{
		{"self_instruct_seed_tasks_175.jsonl", 175, 175, ""},
		{"user_oriented_instructions_252.jsonl", 252, 252, "If you have any questions about my rate"},
		{"vicuna_question_80.jsonl", 80, 80, ""},
		{"mt_bench_question_80.jsonl", 80, 80, ""},
	} {
		f, err := os.Open(sharedData(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		ins, err := ReadInstructions(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		kept, _, _ := dedupe(ins)
		if len(ins) != c.n || len(kept) != c.unique || ins[0].ID == "" || !strings.HasPrefix(ins[0].Input, c.firstInput) {
			t.Errorf("%s: %d instructions, %d unique, first %+v", c.file, len(ins), len(kept), ins[0])
		}
	}
	// Seed task 1 has an input: it is the instance's.
	f, _ := os.Open(sharedData(t, "self_instruct_seed_tasks_175.jsonl"))
	ins, _ := ReadInstructions(f)
	f.Close()
	if ins[1].ID != "seed_task_1" || ins[1].Instruction != "What is the relation between the given pairs?" || ins[1].Input != "Night : Day :: Right : Left" {
		t.Errorf("seed task 1: %+v", ins[1])
	}
	// A JSON array (alpaca_data.json) and bad rows with their line.
	arr := `[{"instruction":"a","input":"","output":"x"},{"instruction":"b","input":"in"}]`
	if got, err := ReadInstructions(strings.NewReader(arr)); err != nil || len(got) != 2 || got[1].Input != "in" {
		t.Errorf("array: %+v %v", got, err)
	}
	for _, bad := range []string{"{\"instruction\":\"a\"}\n{\"output\":\"x\"}\n", "{\"instruction\":\"a\"}\nnot json\n", "{\"instruction\":\"a\"}\n{\"instruction\":\"  \"}\n"} {
		if _, err := ReadInstructions(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// recorder is a proxy hook that keeps every chat request body it forwards.
type recorder struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (rec *recorder) fault(n int64, w http.ResponseWriter, r *http.Request) bool {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var m map[string]any
	json.Unmarshal(b, &m)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, m)
	rec.mu.Unlock()
	return false
}

// userTexts returns the last user message of each recorded request.
func (rec *recorder) userTexts() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, b := range rec.bodies {
		msgs, _ := b["messages"].([]any)
		if len(msgs) == 0 {
			continue
		}
		last, _ := msgs[len(msgs)-1].(map[string]any)
		s, _ := last["content"].(string)
		out = append(out, s)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const sixInstructions = `{"instruction":"Write a story about a cat.","input":""}
{"instruction":"Summarize the text.","input":"Tom had a red ball."}
{"instruction":"Write a story about a cat.","input":""}
{"instruction":"Give three tips for staying healthy."}
{"instruction":"Name a color.","input":""}
{"instruction":"Tell me about dogs.","input":""}
`

// TestGenerateData runs generate-data against a real bestofn server over its OpenAI API: the duplicate is
// dropped, the teacher sees the Alpaca prompt with the paper's sampling defaults, rows come back in input order
// with raw responses.
func TestGenerateData(t *testing.T) {
	srv := teachertest.Serve(t)
	rec := &recorder{}
	proxy := teachertest.NewProxy(t, srv.URL, rec.fault)
	in := writeFile(t, "in.jsonl", sixInstructions)
	// The paper's defaults (512 tokens) stay; a stop string keeps the stories short.
	params := GenerateParams{Teacher: &teacher.Config{BaseURL: proxy.URL + "/v1", Model: "llama-gpt4", PromptPricePer1K: 0.03, CompletionPricePer1K: 0.06},
		InputPath: in, Seed: ptr(int64(11)), Stop: []string{"."}, Extra: map[string]any{"user": "pipeline-test"}}
	r := newFileRun(t, t.TempDir(), 1, params)
	if err := generateData(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var res GenerateResult
	json.Unmarshal(r.result, &res)
	if res.Instructions != 6 || res.Duplicates != 1 || res.Unique != 5 || res.Succeeded != 5 || res.Failed != 0 || res.Usage.CompletionTokens == 0 {
		t.Errorf("result %+v", res)
	}
	var data []alpacaRow
	if err := json.Unmarshal(r.files["alpaca_gpt4_data.json"], &data); err != nil || len(data) != 5 {
		t.Fatalf("alpaca_gpt4_data.json: %v %s", err, r.files["alpaca_gpt4_data.json"])
	}
	wantOrder := []string{"Write a story about a cat.", "Summarize the text.", "Give three tips for staying healthy.", "Name a color.", "Tell me about dogs."}
	for i, d := range data {
		if d.Instruction != wantOrder[i] || d.Output == "" {
			t.Errorf("row %d: %+v", i, d)
		}
	}
	if data[1].Input != "Tom had a red ball." {
		t.Errorf("input lost: %+v", data[1])
	}
	rows := lines[DataRow](t, r.files["items.jsonl"])
	var promptTokens, completionTokens float64
	for _, row := range rows {
		var raw struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
			Usage struct {
				PromptTokens     float64 `json:"prompt_tokens"`
				CompletionTokens float64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(row.Raw, &raw); err != nil || len(raw.Choices) == 0 || raw.Choices[0].Message.Content != row.Output {
			t.Errorf("row %d: raw %s does not hold output %q", row.Index, row.Raw, row.Output)
		}
		promptTokens += raw.Usage.PromptTokens
		completionTokens += raw.Usage.CompletionTokens
	}
	// The cost estimate: the raw answers' token counts at the configured prices.
	if want := promptTokens/1000*0.03 + completionTokens/1000*0.06; promptTokens == 0 || math.Abs(res.Usage.Cost-want) > 1e-12 ||
		float64(res.Usage.PromptTokens) != promptTokens || float64(res.Usage.CompletionTokens) != completionTokens {
		t.Errorf("usage %+v, want %v prompt and %v completion tokens costing %v", res.Usage, promptTokens, completionTokens, want)
	}
	if len(rec.bodies) != 5 {
		t.Fatalf("teacher asked %d times, want 5", len(rec.bodies))
	}
	for _, b := range rec.bodies {
		if b["user"] != "pipeline-test" {
			t.Errorf("extra body field not sent: %v", b)
		}
		if b["temperature"] != 1.0 || b["top_p"] != 1.0 || b["max_tokens"] != 512.0 || b["seed"] == nil {
			t.Errorf("sampling %v %v %v %v, want the paper's 1, 1, 512 and a seed", b["temperature"], b["top_p"], b["max_tokens"], b["seed"])
		}
	}
	texts := rec.userTexts()
	joined := strings.Join(texts, "\n---\n")
	if !strings.Contains(joined, "Below is an instruction that describes a task, paired with an input that provides further context.") ||
		!strings.Contains(joined, "### Instruction:\nSummarize the text.\n\n### Input:\nTom had a red ball.\n\n### Response:") ||
		!strings.Contains(joined, "### Instruction:\nName a color.\n\n### Response:") {
		t.Errorf("teacher prompts are not the Alpaca template:\n%s", joined)
	}
	if r.purpose["alpaca_gpt4_data.jsonl"] != PurposeSFT {
		t.Errorf("purposes %v", r.purpose)
	}
}

// TestGenerateDataResume cancels a run mid-way (as a crash would stop it), starts the next attempt on the same
// outputs, and checks that no answered instruction is asked again, no row is duplicated and the final file is
// byte-identical to an uninterrupted run's.
func TestGenerateDataResume(t *testing.T) {
	srv := teachertest.Serve(t)
	var lines strings.Builder
	const total = 16
	for i := range total {
		lines.WriteString(`{"instruction":"Tell a story number ` + itoa(i) + `."}` + "\n")
	}
	in := writeFile(t, "in.jsonl", lines.String())
	params := func(base string) GenerateParams {
		return GenerateParams{Teacher: &teacher.Config{BaseURL: base + "/v1", Model: "llama-gpt4", Concurrency: 2}, InputPath: in,
			Seed: ptr(int64(5)), MaxTokens: 24}
	}
	ref := newFileRun(t, t.TempDir(), 1, params(srv.URL))
	if err := generateData(context.Background(), ref); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n == 6 {
			once.Do(cancel) // the "crash": the job's context ends while requests are in flight
		}
		return rec.fault(n, w, r)
	})
	first := newFileRun(t, dir, 1, params(proxy.URL))
	err := generateData(ctx, first)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	items, _ := first.Output("items")
	answered := map[string]bool{}
	for _, k := range items.Keys() {
		raw, _ := items.Get(k)
		var row DataRow
		json.Unmarshal(raw, &row)
		answered[row.Instruction] = true
	}
	if len(answered) == 0 || len(answered) >= total {
		t.Fatalf("%d answered before the interruption; want some, not all", len(answered))
	}
	// The resumed run has a proxy and a recorder of its own: a request of the first run that its proxy's
	// handler records late (a loaded machine can delay a handler between the cancel and the recording past
	// the end of the first run) must not count as the second run's.
	rec2 := &recorder{}
	proxy2 := teachertest.NewProxy(t, srv.URL, rec2.fault)
	second := newFileRun(t, dir, 2, params(proxy2.URL))
	if err := generateData(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	for _, text := range rec2.userTexts() {
		for instr := range answered {
			if strings.Contains(text, "### Instruction:\n"+instr+"\n") {
				t.Errorf("asked again after resuming: %q", instr)
			}
		}
	}
	if got := len(rec2.userTexts()); got != total-len(answered) {
		t.Errorf("resumed run asked %d times, want %d", got, total-len(answered))
	}
	if !bytes.Equal(second.files["alpaca_gpt4_data.json"], ref.files["alpaca_gpt4_data.json"]) {
		t.Errorf("resumed file differs from the uninterrupted run's:\n%s\nvs\n%s", second.files["alpaca_gpt4_data.json"], ref.files["alpaca_gpt4_data.json"])
	}
	var data []alpacaRow
	json.Unmarshal(second.files["alpaca_gpt4_data.json"], &data)
	if len(data) != total {
		t.Errorf("%d rows, want %d", len(data), total)
	}
}

// TestGenerateDataChinese: language zh over the Ollama API translates each instruction once with the
// teacher, then asks for a Chinese answer to the translated instruction; both texts are kept.
func TestGenerateDataChinese(t *testing.T) {
	srv := teachertest.Serve(t)
	rec := &recorder{}
	proxy := teachertest.NewProxy(t, srv.URL, rec.fault)
	in := writeFile(t, "in.jsonl", `{"instruction":"Name a color.","input":"red or blue"}`+"\n"+`{"instruction":"Tell me about dogs."}`+"\n")
	params := GenerateParams{Teacher: &teacher.Config{Provider: teacher.ProviderOllama, BaseURL: proxy.URL, Model: "llama-gpt4"},
		InputPath: in, Language: "zh", N: 2, MaxTokens: 24, Seed: ptr(int64(1))}
	r := newFileRun(t, t.TempDir(), 1, params)
	if err := generateData(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	rows := lines[DataRow](t, r.files["items.jsonl"])
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 2 instructions x 2 samples", len(rows))
	}
	for _, row := range rows {
		if row.InstructionEN == "" || row.Instruction == row.InstructionEN && row.Instruction != "" || row.Output == "" {
			t.Errorf("row %+v", row)
		}
		if (row.Sample == 0) != (len(row.TranslationRaw) > 0) {
			t.Errorf("translation raw on sample %d: %s", row.Sample, row.TranslationRaw)
		}
	}
	if rows[0].InputEN != "red or blue" {
		t.Errorf("input not kept: %+v", rows[0])
	}
	// 3 translations (two texts of the first instruction, one of the second) and 4 answers.
	var translations, answers int
	for i, text := range rec.userTexts() {
		switch {
		case strings.HasPrefix(text, "Translate the following text into Simplified Chinese."):
			translations++
		case strings.HasPrefix(text, "Below is an instruction"):
			answers++
			msgs := rec.bodies[i]["messages"].([]any)
			if sys := msgs[0].(map[string]any); sys["role"] != "system" || sys["content"] != AnswerInChinese {
				t.Errorf("answer request without the Chinese system message: %v", msgs)
			}
		}
	}
	if translations != 3 || answers != 4 {
		t.Errorf("%d translations and %d answers, want 3 and 4", translations, answers)
	}
	if _, ok := r.files["alpaca_gpt4_data_zh.json"]; !ok {
		t.Errorf("outputs %v", sortedKeys(r.files))
	}
}

// TestGenerateDataFailures: a teacher that refuses one instruction (HTTP 400) gets a failure row with the
// reason and the body, counted in the result; the others are answered. A teacher that refuses everything ends
// the job failed with a reason.
func TestGenerateDataFailures(t *testing.T) {
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte("Name a color.")) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"message":"content policy","type":"invalid_request_error","param":null,"code":"content_filter"}}`)
			return true
		}
		return false
	})
	in := writeFile(t, "in.jsonl", sixInstructions)
	r := newFileRun(t, t.TempDir(), 1, GenerateParams{Teacher: &teacher.Config{BaseURL: proxy.URL + "/v1", Model: "llama-gpt4"}, InputPath: in, MaxTokens: 8})
	if err := generateData(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	var res GenerateResult
	json.Unmarshal(r.result, &res)
	if res.Succeeded != 4 || res.Failed != 1 || res.FailuresByKind["permanent"] != 1 {
		t.Errorf("result %+v", res)
	}
	fails := lines[FailureRow](t, r.files["failures.jsonl"])
	if len(fails) != 1 || fails[0].Instruction != "Name a color." || fails[0].Status != 400 || !strings.Contains(string(fails[0].Raw), "content policy") {
		t.Errorf("failures %+v", fails)
	}

	bad := newFileRun(t, t.TempDir(), 1, GenerateParams{Teacher: &teacher.Config{BaseURL: srv.URL + "/v1", Model: "no-such-model"}, InputPath: in, MaxTokens: 8})
	err := generateData(context.Background(), bad)
	var ce *jobs.JobError
	if !errors.As(err, &ce) || ce.Code != "teacher_failed" || !strings.Contains(ce.Message, "404") {
		t.Errorf("all refused: %v", err)
	}
}

// TestAPIKeyNeverStored runs a job whose teacher needs a key, through a proxy that answers 429 (a pause) and
// cuts a response (a retry), and checks the key is in no param, event, output, result or row file.
func TestAPIKeyNeverStored(t *testing.T) {
	srv := teachertest.Serve(t)
	const secret = "sk-live-7f3a9c0d2e1b"
	t.Setenv("PIPELINE_TEST_KEY", secret)
	drop := teachertest.DropMidResponse(srv.URL, 2)
	var sawKey bool
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		sawKey = sawKey || r.Header.Get("Authorization") == "Bearer "+secret
		if n == 1 {
			return teachertest.TooManyRequests(1, "1")(n, w, r)
		}
		return drop(n-1, w, r)
	})
	in := writeFile(t, "in.jsonl", sixInstructions)
	r := newFileRun(t, t.TempDir(), 1, GenerateParams{InputPath: in, MaxTokens: 8,
		Teacher: &teacher.Config{BaseURL: proxy.URL + "/v1", Model: "llama-gpt4", APIKeyEnv: "PIPELINE_TEST_KEY", PauseAfterSeconds: 0.5, MaxBackoffSeconds: 0.2}})
	start := time.Now()
	if err := generateData(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if !sawKey {
		t.Fatal("the key was not sent")
	}
	var warned int
	for _, e := range r.events {
		if e.Level == "warn" {
			warned++
		}
	}
	if warned < 2 || time.Since(start) < time.Second {
		t.Errorf("expected a pause and retries in the events: %+v", r.events)
	}
	if strings.Contains(r.everything(), secret) {
		t.Error("the API key was stored")
	}
	if err := (generateType{}).Validate(context.Background(), r.job.Params, nil); err != nil {
		t.Errorf("params with the env var name rejected: %v", err)
	}
	os.Unsetenv("PIPELINE_TEST_KEY")
	var pe *jobs.ParamError
	if err := (generateType{}).Validate(context.Background(), r.job.Params, nil); !errors.As(err, &pe) || pe.Field != "teacher.api_key_env" {
		t.Errorf("unset key variable: %v", err)
	}
}

func TestGenerateValidate(t *testing.T) {
	in := writeFile(t, "in.jsonl", sixInstructions)
	ok := `"teacher":{"base_url":"http://127.0.0.1:1/v1","model":"m"},"input_path":"` + in + `"`
	for _, c := range []struct{ params, field string }{
		{`{` + ok + `}`, ""},
		{`{` + ok + `,"language":"fr"}`, "language"},
		{`{` + ok + `,"n":-1}`, "n"},
		{`{` + ok + `,"top_p":0}`, "top_p"},
		{`{` + ok + `,"bogus":1}`, "bogus"},
		{`{"teacher":{"base_url":"http://127.0.0.1:1/v1","model":"m"}}`, "input_file"},
		{`{"teacher":{"base_url":"nope","model":"m"},"input_path":"` + in + `"}`, "teacher.base_url"},
		{`{"teacher":{"base_url":"http://x/v1","model":"m"},"input_path":"/nonexistent"}`, "input_path"},
		{`{"input_path":"` + in + `"}`, "teacher"},
	} {
		err := (generateType{}).Validate(context.Background(), json.RawMessage(c.params), nil)
		var pe *jobs.ParamError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.params, err)
		case c.field != "" && (!errors.As(err, &pe) || pe.Field != c.field):
			t.Errorf("%s: %v, want a ParamError on %s", c.params, err, c.field)
		}
	}
}
