package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/teacher"
)

// GenerateParams are the params of a generate-data job.
type GenerateParams struct {
	// Teacher is the endpoint that answers.
	Teacher *teacher.Config `json:"teacher"`
	// InputFile is an uploaded file id, InputPath a path on the server (one of them): instruction rows (see
	// ReadInstructions).
	InputFile string `json:"input_file,omitempty"`
	InputPath string `json:"input_path,omitempty"`
	// Limit keeps the first Limit instructions after deduplication; 0 means all.
	Limit int `json:"limit,omitempty"`
	// Language "zh" translates each instruction (and input) into Chinese with the teacher, then asks for the
	// answer in Chinese; "" or "en" asks in the instruction's language.
	Language string `json:"language,omitempty"`
	// N answers per instruction (each its own request, seed Seed + index*N + sample); 0 means 1.
	N int `json:"n,omitempty"`
	// Temperature, TopP and MaxTokens are the teacher's sampling: the paper's 1.0, 1.0 and 512 when unset.
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	// Seed is the base of the per-request seeds; nil sends no seed.
	Seed *int64 `json:"seed,omitempty"`
	// Stop strings end an answer.
	Stop []string `json:"stop,omitempty"`
	// Extra holds more body fields for every answer request (OpenAI provider), e.g. {"best_of": 16} for a
	// bestofn teacher that ranks many samples.
	Extra map[string]any `json:"extra,omitempty"`
}

func (p *GenerateParams) check() error {
	if err := checkTeacher("teacher", p.Teacher); err != nil {
		return err
	}
	switch p.Language {
	case "", "en", "zh":
	default:
		return paramErr("language", `must be "en" or "zh", not %q`, p.Language)
	}
	if p.N < 0 || p.N > 64 {
		return paramErr("n", "must be in [1, 64]")
	}
	if p.N == 0 {
		p.N = 1
	}
	if p.Limit < 0 {
		return paramErr("limit", "must be >= 0")
	}
	if p.Temperature == nil {
		p.Temperature = ptr(1.0)
	}
	if p.TopP == nil {
		p.TopP = ptr(1.0)
	}
	if *p.Temperature < 0 || *p.Temperature > 2 {
		return paramErr("temperature", "must be in [0, 2]")
	}
	if *p.TopP <= 0 || *p.TopP > 1 {
		return paramErr("top_p", "must be in (0, 1]")
	}
	if p.MaxTokens < 0 {
		return paramErr("max_tokens", "must be >= 0")
	}
	if p.MaxTokens == 0 {
		p.MaxTokens = 512
	}
	if len(p.Extra) > 0 && p.Teacher.Provider == teacher.ProviderOllama {
		return paramErr("extra", "extra body fields need the OpenAI provider")
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// DataRow is one teacher answer: the alpaca_gpt4_data.json fields, then where it came from. Raw is the
// teacher's response body; for language "zh", Instruction and Input are the Chinese texts, InstructionEN and
// InputEN the originals, and TranslationRaw the translation's response.
type DataRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`

	Index          int             `json:"index"`
	Sample         int             `json:"sample"`
	ID             string          `json:"id,omitempty"`
	InstructionEN  string          `json:"instruction_en,omitempty"`
	InputEN        string          `json:"input_en,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
	FinishReason   string          `json:"finish_reason"`
	Model          string          `json:"model"`
	Usage          teacher.Usage   `json:"usage"`
	Attempts       int             `json:"attempts"`
	Raw            json.RawMessage `json:"raw"`
	TranslationRaw json.RawMessage `json:"translation_raw,omitempty"`
}

// FailureRow records an item the teacher did not answer: the error's kind ("transient", "rate_limited",
// "permanent"), HTTP status, message and the endpoint's body.
type FailureRow struct {
	Index       int             `json:"index"`
	Sample      int             `json:"sample"`
	Instruction string          `json:"instruction"`
	Input       string          `json:"input"`
	Stage       string          `json:"stage"` // "answer" or "translate"
	Kind        string          `json:"kind"`
	Status      int             `json:"status,omitempty"`
	Error       string          `json:"error"`
	Attempts    int             `json:"attempts,omitempty"`
	Raw         json.RawMessage `json:"raw,omitempty"`
	JobAttempt  int             `json:"job_attempt"`
}

// GenerateResult is a generate-data job's result.
type GenerateResult struct {
	Instructions   int            `json:"instructions"`
	Duplicates     int            `json:"duplicates"`
	Unique         int            `json:"unique"`
	Samples        int            `json:"samples"`
	Succeeded      int            `json:"succeeded"`
	Failed         int            `json:"failed"`
	FailuresByKind map[string]int `json:"failures_by_kind"`
	// Usage totals the answer rows (all attempts of the job); Teacher is this attempt's client statistics.
	Usage    UsageTotal    `json:"usage"`
	Teacher  teacher.Stats `json:"teacher"`
	Language string        `json:"language"`
	Outputs  []string      `json:"outputs"`
}

// UsageTotal totals token usage and the estimated cost.
type UsageTotal struct {
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Cost             float64 `json:"cost"`
}

func (u *UsageTotal) add(c *teacher.Client, x teacher.Usage) {
	u.PromptTokens += x.PromptTokens
	u.CompletionTokens += x.CompletionTokens
	u.Cost += c.Cost(x)
}

// The translation prompt of language "zh" (the paper translated the Alpaca instructions with ChatGPT) and the
// system message that asks for the answer in Chinese.
const (
	TranslatePrompt = "Translate the following text into Simplified Chinese. Output only the translation, without " +
		"any explanation or quotes.\n\n%s"
	AnswerInChinese = "请用中文回答。"
)

type generateType struct{ opts Options }

func (generateType) Name() string { return TypeGenerateData }

func (generateType) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p GenerateParams
	if err := decode(params, &p); err != nil {
		return err
	}
	return checkFileRef(ctx, files, "input_file", p.InputFile, "input_path", p.InputPath, true)
}

func (t generateType) Run(ctx context.Context, run *jobs.Run) error {
	return generateData(ctx, jobRun{run})
}

// KindEmpty is the failure kind of a teacher answer (or translation) that came back empty or white space: it is
// recorded with the raw response instead of published (sft-data refuses empty texts), and asked again by a
// retry of the job.
const KindEmpty = "empty"

// itemKey is an answer's output key: the instruction's index, and ".sample" for samples after the first.
func itemKey(i, j int) string {
	if j == 0 {
		return strconv.Itoa(i)
	}
	return strconv.Itoa(i) + "." + strconv.Itoa(j)
}

// consecutivePermanentLimit ends a job whose teacher refuses this many requests in a row before answering
// any (a wrong model name, a bad key): every further request would fail the same way.
const consecutivePermanentLimit = 10

func generateData(ctx context.Context, r runner) error {
	var p GenerateParams
	if err := decode(r.Job().Params, &p); err != nil {
		return jobFailed("invalid_input", "%v", err)
	}
	rc, err := openRef(ctx, r, p.InputFile, p.InputPath)
	if err != nil {
		return jobFailed("invalid_input", "open instructions: %v", err)
	}
	all, err := ReadInstructions(rc)
	rc.Close()
	if err != nil {
		return jobFailed("invalid_input", "instructions: %v", err)
	}
	ins, _, dups := dedupe(all)
	if p.Limit > 0 && len(ins) > p.Limit {
		ins = ins[:p.Limit]
	}
	if len(ins) == 0 {
		return jobFailed("invalid_input", "the input file holds no instructions")
	}
	items, err := r.Output("items")
	if err != nil {
		return err
	}
	failures, err := r.Output("failures")
	if err != nil {
		return err
	}
	translations, err := r.Output("translations")
	if err != nil {
		return err
	}
	cl, err := newTeacher(r, "teacher", *p.Teacher)
	if err != nil {
		return err
	}
	alpaca, err := chat.Lookup("alpaca")
	if err != nil {
		return err
	}
	total := len(ins) * p.N
	var pending []int // sample numbers i*N+j without an answer
	for s := range total {
		if !items.Has(itemKey(s/p.N, s%p.N)) {
			pending = append(pending, s)
		}
	}
	if skipped := total - len(pending); skipped > 0 {
		r.Event("info", "resuming: answers already there are kept", map[string]any{"answered": skipped, "pending": len(pending)})
	}
	var (
		done          atomic.Int64
		failed        atomic.Int64
		answered      atomic.Int64
		consecutive   atomic.Int64
		firstFailure  atomic.Value
		translateMu   sync.Map // item index -> *sync.Mutex
		jobAttempt    = r.Job().Attempts
		translateOpts = teacher.Options{Temperature: ptr(0.0), MaxTokens: 2 * p.MaxTokens, Seed: p.Seed}
	)
	done.Store(int64(total - len(pending)))
	r.Progress(done.Load(), int64(total), "answers")

	// translate returns the Chinese instruction and input of item i, asking the teacher once per item.
	translate := func(ctx context.Context, i int) (tr translationRow, err error) {
		mu, _ := translateMu.LoadOrStore(i, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
		key := strconv.Itoa(i)
		if raw, ok := translations.Get(key); ok {
			err := json.Unmarshal(raw, &tr)
			return tr, err
		}
		tr.Index = i
		for _, part := range []struct {
			text string
			dst  *string
		}{{ins[i].Instruction, &tr.Instruction}, {ins[i].Input, &tr.Input}} {
			if part.text == "" {
				continue
			}
			resp, err := cl.Chat(ctx, teacher.User(fmt.Sprintf(TranslatePrompt, part.text)), translateOpts)
			if err != nil {
				return tr, err
			}
			*part.dst = strings.TrimSpace(resp.Text)
			if *part.dst == "" {
				return tr, &emptyAnswerError{what: "translation", resp: resp}
			}
			tr.Raw = append(tr.Raw, resp.Raw)
			tr.Usage.PromptTokens += resp.Usage.PromptTokens
			tr.Usage.CompletionTokens += resp.Usage.CompletionTokens
		}
		return tr, translations.Append(key, tr)
	}

	answer := func(ctx context.Context, pi int) error {
		s := pending[pi]
		i, j := s/p.N, s%p.N
		in := ins[i]
		row := DataRow{Index: i, Sample: j, ID: in.ID, Instruction: in.Instruction, Input: in.Input}
		stage := "answer"
		var msgs []teacher.Message
		var err error
		if p.Language == "zh" {
			stage = "translate"
			var tr translationRow
			if tr, err = translate(ctx, i); err == nil {
				stage = "answer"
				row.InstructionEN, row.InputEN = in.Instruction, in.Input
				row.Instruction, row.Input = tr.Instruction, tr.Input
				if len(tr.Raw) > 0 && j == 0 {
					row.TranslationRaw, _ = json.Marshal(tr.Raw)
					row.Usage = tr.Usage // the translation's tokens count once, on sample 0
				}
				msgs = append(msgs, teacher.Message{Role: "system", Content: AnswerInChinese})
			}
		}
		var resp *teacher.Response
		if err == nil {
			var prompt string
			prompt, err = renderAlpaca(alpaca, row.Instruction, row.Input)
			if err != nil {
				return err
			}
			msgs = append(msgs, teacher.Message{Role: "user", Content: prompt})
			opts := teacher.Options{Temperature: p.Temperature, TopP: p.TopP, MaxTokens: p.MaxTokens, Stop: p.Stop, Extra: p.Extra}
			if p.Seed != nil {
				opts.Seed = ptr(*p.Seed + int64(s))
				row.Seed = opts.Seed
			}
			resp, err = cl.Chat(ctx, msgs, opts)
			if err == nil && strings.TrimSpace(resp.Text) == "" {
				err = &emptyAnswerError{what: "answer", resp: resp}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			f := failureOf(err)
			f.Index, f.Sample, f.Instruction, f.Input, f.Stage, f.JobAttempt = i, j, in.Instruction, in.Input, stage, jobAttempt
			if err := appendFailure(failures, itemKey(i, j), f); err != nil {
				return err
			}
			firstFailure.CompareAndSwap(nil, f.Error)
			failed.Add(1)
			r.Progress(done.Add(1), int64(total), "answers")
			if f.Kind == teacher.KindPermanent.String() && consecutive.Add(1) >= consecutivePermanentLimit && answered.Load() == 0 {
				return jobFailed("teacher_failed", "the teacher refused %d requests in a row: %s", consecutivePermanentLimit, f.Error)
			}
			return nil
		}
		consecutive.Store(0)
		row.Output = resp.Text
		row.FinishReason, row.Model, row.Attempts, row.Raw = resp.FinishReason, resp.Model, resp.Attempts, resp.Raw
		row.Usage.PromptTokens += resp.Usage.PromptTokens
		row.Usage.CompletionTokens += resp.Usage.CompletionTokens
		if err := items.Append(itemKey(i, j), row); err != nil {
			return err
		}
		answered.Add(1)
		n := done.Add(1)
		r.Progress(n, int64(total), "answers")
		if n%10 == 0 {
			st := cl.Stats()
			r.Metrics(n, map[string]float64{"answers": float64(items.Len()), "failures": float64(failed.Load()),
				"prompt_tokens": float64(st.PromptTokens), "completion_tokens": float64(st.CompletionTokens),
				"cost": st.Cost, "rate_limited": float64(st.RateLimited)})
		}
		return nil
	}
	if err := runPool(ctx, cl.Concurrency(), len(pending), answer); err != nil {
		return err
	}

	// Assemble the outputs in input order from the stored rows (this attempt's and earlier ones').
	res := GenerateResult{Instructions: len(all), Duplicates: dups, Unique: len(ins), Samples: total,
		FailuresByKind: map[string]int{}, Teacher: cl.Stats(), Language: p.Language}
	if res.Language == "" {
		res.Language = "en"
	}
	var data []alpacaRow
	var rows bytes.Buffer
	var sftLines bytes.Buffer
	for s := range total {
		raw, ok := items.Get(itemKey(s/p.N, s%p.N))
		if !ok {
			continue
		}
		var row DataRow
		if err := json.Unmarshal(raw, &row); err != nil {
			return fmt.Errorf("pipeline: stored row %s: %w", itemKey(s/p.N, s%p.N), err)
		}
		res.Succeeded++
		res.Usage.add(cl, row.Usage)
		a := alpacaRow{Instruction: row.Instruction, Input: row.Input, Output: row.Output}
		data = append(data, a)
		writeJSONL(&rows, row)
		writeJSONL(&sftLines, a)
	}
	res.Failed = total - res.Succeeded
	var failLines bytes.Buffer
	lastFailure := map[string]FailureRow{}
	for _, k := range failures.Keys() {
		raw, _ := failures.Get(k)
		var f FailureRow
		if json.Unmarshal(raw, &f) == nil {
			lastFailure[itemKey(f.Index, f.Sample)] = f
		}
	}
	var failKeys []FailureRow
	for k, f := range lastFailure {
		if !items.Has(k) {
			failKeys = append(failKeys, f)
		}
	}
	sort.Slice(failKeys, func(a, b int) bool {
		return failKeys[a].Index*p.N+failKeys[a].Sample < failKeys[b].Index*p.N+failKeys[b].Sample
	})
	for _, f := range failKeys {
		res.FailuresByKind[f.Kind]++
		writeJSONL(&failLines, f)
	}
	if res.Succeeded == 0 {
		msg, _ := firstFailure.Load().(string)
		return jobFailed("teacher_failed", "no instruction was answered (%d failures; first: %s)", res.Failed, msg)
	}
	name := "alpaca_gpt4_data.json"
	if p.Language == "zh" {
		name = "alpaca_gpt4_data_zh.json"
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(data); err != nil {
		return err
	}
	for _, f := range []struct {
		name, purpose string
		body          []byte
	}{
		{name, "results", js.Bytes()},
		{strings.TrimSuffix(name, ".json") + ".jsonl", PurposeSFT, sftLines.Bytes()},
		{"items.jsonl", "results", rows.Bytes()},
		{"failures.jsonl", "results", failLines.Bytes()},
	} {
		if _, err := r.PublishFile(ctx, f.name, f.purpose, bytes.NewReader(f.body)); err != nil {
			return fmt.Errorf("pipeline: publish %s: %w", f.name, err)
		}
		res.Outputs = append(res.Outputs, f.name)
	}
	st := cl.Stats()
	r.Metrics(int64(total), map[string]float64{"answers": float64(res.Succeeded), "failures": float64(res.Failed),
		"prompt_tokens": float64(res.Usage.PromptTokens), "completion_tokens": float64(res.Usage.CompletionTokens),
		"cost": res.Usage.Cost, "rate_limited": float64(st.RateLimited)})
	return r.SetResult(res)
}

// alpacaRow is a row of alpaca_gpt4_data.json.
type alpacaRow struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
}

// translationRow is a stored translation of one instruction (language "zh").
type translationRow struct {
	Index       int               `json:"index"`
	Instruction string            `json:"instruction"`
	Input       string            `json:"input"`
	Usage       teacher.Usage     `json:"usage"`
	Raw         []json.RawMessage `json:"raw"`
}

// renderAlpaca is the paper's Algorithm 1 prompt: the Alpaca template around the instruction and its input.
func renderAlpaca(t chat.Template, instruction, input string) (string, error) {
	msgs := []chat.Message{{Role: chat.RoleUser, Content: instruction}}
	if input != "" {
		msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: input})
	}
	return t.Render(msgs)
}

// failureOf describes a failed request.
func failureOf(err error) FailureRow {
	var e *teacher.Error
	if errors.As(err, &e) {
		return FailureRow{Kind: e.Kind.String(), Status: e.StatusCode, Error: e.Error(), Attempts: e.Attempts, Raw: jsonOrString(e.Raw)}
	}
	var empty *emptyAnswerError
	if errors.As(err, &empty) {
		return FailureRow{Kind: KindEmpty, Status: http.StatusOK, Error: empty.Error(), Attempts: empty.resp.Attempts, Raw: empty.resp.Raw}
	}
	return FailureRow{Kind: "error", Error: err.Error()}
}

// emptyAnswerError is a teacher response whose text is empty or white space.
type emptyAnswerError struct {
	what string // "answer" or "translation"
	resp *teacher.Response
}

func (e *emptyAnswerError) Error() string {
	return fmt.Sprintf("the teacher's %s is empty (finish_reason %q)", e.what, e.resp.FinishReason)
}

// jsonOrString keeps a body as JSON when it is JSON, else as a JSON string.
func jsonOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

func writeJSONL(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
