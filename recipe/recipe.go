package recipe

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/storytask"
	"github.com/bestofn/bestofn/trainjobs"
)

// Config says where the recipe's inputs are and where its outputs go.
type Config struct {
	// Binary is the bestofn executable that serves the teacher, the admin API and the SFT model.
	Binary string
	// WorkDir holds the servers' data directories, logs and downloads (it is created; kept after the run).
	WorkDir string
	// OutDir receives generator.gguf, reward-model/, eval/ and recipe.json (the repository's defaults/).
	OutDir string
	// BaseModel is the base generator (stories260K's GGUF).
	BaseModel string
	// HHPairs is HH-RLHF's harmless-base pairs (JSONL, gzipped or not): rows {chosen, rejected}. Its seeded
	// held-out part (trainjobs.SplitHeldout with HHSeed and HHFraction) is never trained on.
	HHPairs string
	// ExtraPairs are more preference files (TRL rows) for train-reward, e.g. synthetic harm pairs.
	ExtraPairs []string
	// ClearCutPairs is a file of clear-cut pairs {prompt, chosen (harmless), rejected (harmful)} the reward
	// model is checked on (not trained on); "" skips that check.
	ClearCutPairs string
	// RMTokenizer is the tokenizer of a reward model trained from scratch (Size.RM with base_model "scratch").
	RMTokenizer string
	// Seed fixes the instructions, every job's seed and the bootstrap.
	Seed uint64
	// HHSeed and HHFraction fix HH-RLHF's held-out part (1234 and 1/3, as trainjobs' quality check).
	HHSeed     uint64
	HHFraction float64
	// Threads is the CPU threads of the servers and the jobs (0: 2).
	Threads int
	// Size is the amount of data and training.
	Size Size
	// Log receives progress lines.
	Log io.Writer
}

// Size is the amount of data and training of a run.
type Size struct {
	Name string `json:"name"`
	// SFTTasks, FeedbackTasks and EvalTasks are instructions of the family: the first two from the training
	// split (disjoint from each other), the last from the evaluation split.
	SFTTasks      int `json:"sft_tasks"`
	FeedbackTasks int `json:"feedback_tasks"`
	EvalTasks     int `json:"eval_tasks"`
	// TeacherN is the teacher's samples per instruction (best_of, ranked by the rules); TeacherMaxTokens their
	// length bound.
	TeacherN         int `json:"teacher_n"`
	TeacherMaxTokens int `json:"teacher_max_tokens"`
	// TeacherTemplate is the chat template the teacher serves the base model with; TeacherStop ends its
	// samples (a story model's paragraph break: one paragraph, ending at a sentence, is an answer whose length
	// and ending vary, where a cut at TeacherMaxTokens would not).
	TeacherTemplate string   `json:"teacher_template"`
	TeacherStop     []string `json:"teacher_stop"`
	// StudentMaxTokens bounds the SFT model's answers (feedback and evaluation).
	StudentMaxTokens int `json:"student_max_tokens"`
	// FeedbackK and EvalK are candidates per instruction.
	FeedbackK int `json:"feedback_k"`
	EvalK     int `json:"eval_k"`
	// SFT and RM are the sft and train-reward params besides the data and the seed.
	SFT map[string]any `json:"sft"`
	RM  map[string]any `json:"rm"`
	// HHRows caps the HH-RLHF training rows (0: all training rows).
	HHRows int `json:"hh_rows"`
	// Bootstrap resamples of the evaluation.
	Bootstrap int `json:"bootstrap"`
}

// Sizes returns the named sizes: "default" (the shipped models), "smoke" (a few minutes, end to end) and "tiny"
// (the test's, well under a minute of work).
func Sizes() map[string]Size {
	rm := func(epochs int) map[string]any {
		return map[string]any{"base_model": "scratch",
			"scratch":    map[string]any{"dim": 64, "layers": 2, "heads": 4, "context_length": 256},
			"max_length": 256, "epochs": epochs, "batch_size": 32, "learning_rate": 1e-3,
			"eval_fraction": 0.05, "early_stopping_patience": 0}
	}
	sft := func(epochs int, eval float64) map[string]any {
		return map[string]any{"epochs": epochs, "batch_size": 16, "learning_rate": 1e-3, "max_length": 320,
			"eval_fraction": eval, "early_stopping_patience": 0}
	}
	stop := []string{"\n"}
	return map[string]Size{
		"default": {Name: "default", SFTTasks: 800, FeedbackTasks: 800, EvalTasks: 200,
			TeacherN: 32, TeacherMaxTokens: 128, TeacherTemplate: "story", TeacherStop: stop, StudentMaxTokens: 128,
			FeedbackK: 5, EvalK: 5, SFT: sft(5, 0.05), RM: rm(2), Bootstrap: 10000},
		"smoke": {Name: "smoke", SFTTasks: 150, FeedbackTasks: 100, EvalTasks: 40,
			TeacherN: 32, TeacherMaxTokens: 128, TeacherTemplate: "story", TeacherStop: stop, StudentMaxTokens: 128,
			FeedbackK: 5, EvalK: 5, SFT: sft(10, 0.1), RM: rm(1), HHRows: 300, Bootstrap: 2000},
		"tiny": {Name: "tiny", SFTTasks: 8, FeedbackTasks: 6, EvalTasks: 6,
			TeacherN: 4, TeacherMaxTokens: 24, TeacherTemplate: "story", TeacherStop: stop, StudentMaxTokens: 24,
			FeedbackK: 3, EvalK: 3,
			SFT: map[string]any{"epochs": 1, "batch_size": 4, "learning_rate": 1e-3, "max_length": 200,
				"eval_fraction": 0, "early_stopping_patience": 0},
			RM: map[string]any{"base_model": "scratch",
				"scratch":    map[string]any{"dim": 16, "layers": 1, "heads": 2, "context_length": 128},
				"max_length": 128, "epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "eval_fraction": 0,
				"early_stopping_patience": 0},
			HHRows: 16, Bootstrap: 200},
	}
}

// Step is one step's record in the summary.
type Step struct {
	Name    string             `json:"name"`
	Seconds float64            `json:"seconds"`
	JobID   string             `json:"job_id,omitempty"`
	Params  json.RawMessage    `json:"params,omitempty"`
	Result  json.RawMessage    `json:"result,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// Summary is recipe.json: what was run, how long each step took and what it measured.
type Summary struct {
	Seed       uint64  `json:"seed"`
	HHSeed     uint64  `json:"hh_seed"`
	HHFraction float64 `json:"hh_heldout_fraction"`
	Size       Size    `json:"size"`
	Steps      []Step  `json:"steps"`
	TotalSecs  float64 `json:"total_seconds"`
	// Files are the shipped files with their sizes in bytes.
	Files map[string]int64 `json:"files"`
	// HH counts HH-RLHF rows: read, trained on, held out.
	HH struct {
		Rows, Train, HeldOut int
	} `json:"hh"`
	// Teacher and Student are the rule checks' view of the teacher's answers (the SFT data) and of the SFT
	// model's feedback candidates, both on training instructions.
	Teacher *RuleStats `json:"teacher_rules,omitempty"`
	Student *RuleStats `json:"student_rules,omitempty"`
	// RMCheck is the reward model's accuracy on HH-RLHF's held-out part and the clear-cut pairs.
	RMCheck *RMCheck `json:"rm_check,omitempty"`
	// Started is the run's start (UTC, RFC 3339).
	Started string `json:"started"`
}

// Run runs the recipe and returns its summary (also written to OutDir/recipe.json).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, log: cfg.Log, sum: &Summary{Seed: cfg.Seed, HHSeed: cfg.HHSeed, HHFraction: cfg.HHFraction, Size: cfg.Size,
		Files: map[string]int64{}, Started: time.Now().UTC().Format(time.RFC3339)}}
	defer r.srv.stopAll()
	start := time.Now()
	if err := r.all(ctx); err != nil {
		return r.sum, err
	}
	r.sum.TotalSecs = time.Since(start).Seconds()
	r.logf("recipe done in %s", time.Since(start).Round(time.Second))
	return r.sum, r.writeSummary()
}

func (c *Config) check() error {
	if c.Binary == "" || c.WorkDir == "" || c.OutDir == "" || c.BaseModel == "" || c.HHPairs == "" {
		return errors.New("recipe: Binary, WorkDir, OutDir, BaseModel and HHPairs are required")
	}
	for _, p := range append([]string{c.Binary, c.BaseModel, c.HHPairs}, c.ExtraPairs...) {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("recipe: %w", err)
		}
	}
	if base, _ := c.Size.RM["base_model"].(string); base == "scratch" && c.RMTokenizer == "" {
		return errors.New("recipe: a reward model from scratch needs RMTokenizer")
	}
	if c.HHFraction <= 0 || c.HHFraction >= 1 {
		return errors.New("recipe: HHFraction must be in (0, 1)")
	}
	if c.Threads <= 0 {
		c.Threads = 2
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

type run struct {
	cfg Config
	log io.Writer
	sum *Summary
	srv servers
	adm *admin.Client
	// hhHeld is HH-RLHF's held-out part.
	hhHeld [][]byte
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s recipe: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *run) path(elem ...string) string {
	return filepath.Join(append([]string{r.cfg.WorkDir}, elem...)...)
}

func (r *run) all(ctx context.Context) error {
	cfg, sz := r.cfg, r.cfg.Size
	for _, d := range []string{cfg.WorkDir, cfg.OutDir, r.path("logs"), r.path("out"), r.path("inputs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	th := fmt.Sprint(cfg.Threads)

	// The instructions: SFT and feedback from the training split (disjoint), evaluation from the held-out one.
	train, err := storytask.Generate(cfg.Seed, storytask.Train, sz.SFTTasks+sz.FeedbackTasks)
	if err != nil {
		return err
	}
	eval, err := storytask.Generate(cfg.Seed, storytask.Eval, sz.EvalTasks)
	if err != nil {
		return err
	}

	// The admin server: the job platform in a fresh data directory (its served model is unused).
	t0 := time.Now()
	adm, err := startServer(ctx, cfg.Binary, "admin", r.path("logs", "admin.log"), "--model", cfg.BaseModel,
		"--reward-model", "rules", "--name", "base", "--threads", "1", "--data-dir", r.path("admin-data"),
		"--admin-insecure-loopback", "--job-threads", th, "--job-workers", "1")
	if err != nil {
		return err
	}
	r.srv.add(adm)
	r.adm = admin.NewClient(adm.URL, "", nil)
	r.logf("admin server at %s (data %s)", adm.URL, r.path("admin-data"))
	sftIn, err := r.upload(ctx, "sft_instructions.jsonl", "instructions", instructionRows(train[:sz.SFTTasks]))
	if err != nil {
		return err
	}
	fbIn, err := r.upload(ctx, "feedback_instructions.jsonl", "instructions", instructionRows(train[sz.SFTTasks:]))
	if err != nil {
		return err
	}
	evalIn, err := r.upload(ctx, "eval_questions.jsonl", "eval-questions", questionRows(eval))
	if err != nil {
		return err
	}
	baseFile, err := r.uploadPath(ctx, cfg.BaseModel, "model")
	if err != nil {
		return err
	}
	r.step("setup", t0, "", nil, nil, nil)

	// 1. Teacher data.
	t0 = time.Now()
	teacher, err := startServer(ctx, cfg.Binary, "teacher", r.path("logs", "teacher.log"), "--model", cfg.BaseModel,
		"--template", sz.TeacherTemplate, "--reward-model", "rules", "--name", "teacher", "--n", fmt.Sprint(sz.TeacherN),
		"--max-n", fmt.Sprint(sz.TeacherN), "--threads", th, "--data-dir", r.path("teacher-data"))
	if err != nil {
		return err
	}
	r.srv.add(teacher)
	gen, err := r.job(ctx, "generate-data", map[string]any{"input_file": sftIn, "seed": cfg.Seed, "n": 1,
		"max_tokens": sz.TeacherMaxTokens, "temperature": 1.0, "stop": sz.TeacherStop,
		"teacher": map[string]any{"base_url": teacher.URL + "/v1", "model": "teacher:r1", "concurrency": 2, "timeout_s": 600}})
	r.srv.stop(teacher)
	if err != nil {
		return err
	}
	sftData, err := r.output(ctx, gen, "sft-data", "")
	if err != nil {
		return err
	}
	if st, err := r.stats(ctx, sftData.ID, sftPairs); err != nil {
		return err
	} else {
		r.sum.Teacher = &st
		r.logf("teacher: %d answers follow %.3f of their instructions' constraints", st.Answers, st.MeanScore)
	}
	r.step("generate-data", t0, gen.ID, gen.Params, gen.Result, gen.Metrics)

	// 2. SFT.
	t0 = time.Now()
	p := clone(sz.SFT)
	p["base_file"], p["training_files"], p["seed"], p["model_name"] = baseFile, []string{sftData.ID}, cfg.Seed, "bestofn-default"
	sft, err := r.job(ctx, "sft", p)
	if err != nil {
		return err
	}
	ggufFile, err := r.output(ctx, sft, "model", "")
	if err != nil {
		return err
	}
	generator := r.path("out", "generator.gguf")
	if err := r.download(ctx, ggufFile.ID, generator); err != nil {
		return err
	}
	r.step("sft", t0, sft.ID, sft.Params, sft.Result, sft.Metrics)

	// 3. Feedback: the SFT model's candidates rated by the teacher's rules.
	t0 = time.Now()
	student, err := startServer(ctx, cfg.Binary, "student", r.path("logs", "student-feedback.log"), "--model", generator,
		"--reward-model", "rules", "--name", "student", "--max-n", "16", "--threads", th, "--data-dir", r.path("student-data"))
	if err != nil {
		return err
	}
	r.srv.add(student)
	fb, err := r.job(ctx, "feedback", map[string]any{"input_file": fbIn, "k": sz.FeedbackK, "seed": cfg.Seed,
		"max_tokens": sz.StudentMaxTokens, "temperature": 1.0,
		"sources": []any{map[string]any{"name": "sft", "kind": "bestofn",
			// One request at a time: two in flight share the engine's batches, and the samples then differ
			// between runs in a few tokens (16 of 5,684 pairs in one rerun).
			"endpoint": map[string]any{"base_url": student.URL + "/v1", "model": "student", "concurrency": 1, "timeout_s": 600}}},
		"rater": "scorer", "scorer": map[string]any{"kind": "rules"}})
	r.srv.stop(student)
	if err != nil {
		return err
	}
	prefs, err := r.output(ctx, fb, "preference-data", "")
	if err != nil {
		return err
	}
	cmp, err := r.output(ctx, fb, "comparisons", "")
	if err != nil {
		return err
	}
	if st, err := r.stats(ctx, cmp.ID, comparisonPairs); err != nil {
		return err
	} else {
		r.sum.Student = &st
		r.logf("student: %d candidates follow %.3f of their instructions' constraints", st.Answers, st.MeanScore)
	}
	r.step("feedback", t0, fb.ID, fb.Params, fb.Result, fb.Metrics)

	// 4. The reward model: those comparisons plus HH-RLHF's training rows (and any extra pairs).
	t0 = time.Now()
	hhTrain, err := r.hhTrain()
	if err != nil {
		return err
	}
	hhFile, err := r.upload(ctx, "hh_rlhf_train.jsonl", "preference-data", hhTrain)
	if err != nil {
		return err
	}
	files := []string{prefs.ID, hhFile}
	for _, x := range cfg.ExtraPairs {
		id, err := r.uploadPath(ctx, x, "preference-data")
		if err != nil {
			return err
		}
		files = append(files, id)
	}
	p = clone(sz.RM)
	p["training_files"], p["seed"], p["model_name"] = files, cfg.Seed, "bestofn-default-rm"
	if base, _ := p["base_model"].(string); base == "scratch" {
		tok, err := r.uploadPath(ctx, cfg.RMTokenizer, "results")
		if err != nil {
			return err
		}
		p["tokenizer_file"] = tok
	}
	rmJob, err := r.job(ctx, "train-reward", p)
	if err != nil {
		return err
	}
	rmTar, err := r.output(ctx, rmJob, "reward-model", "")
	if err != nil {
		return err
	}
	rmDir := r.path("out", "reward-model")
	if err := r.downloadTar(ctx, rmTar.ID, rmDir); err != nil {
		return err
	}
	r.step("train-reward", t0, rmJob.ID, rmJob.Params, rmJob.Result, rmJob.Metrics)

	// The reward model on what it never trained on: HH-RLHF's held-out part, the clear-cut harm pairs.
	t0 = time.Now()
	var clear [][]byte
	if cfg.ClearCutPairs != "" {
		if clear, err = trainjobs.ReadLines(cfg.ClearCutPairs); err != nil {
			return err
		}
	}
	chk, err := CheckRewardModel(ctx, rmDir, reward.Options{Runtime: reward.RuntimeAuto}, r.hhHeld, clear)
	if err != nil {
		return err
	}
	r.sum.RMCheck = &chk
	r.logf("reward model: HH-RLHF held-out accuracy %.4f (95%% CI %.4f-%.4f, %d pairs); clear-cut pairs preferred %d of %d",
		chk.HHAccuracy, chk.HHLow, chk.HHHigh, chk.HHPairs, chk.ClearCut, chk.ClearCutPairs)
	r.step("check-rm", t0, "", nil, nil, nil)

	// 5. Evaluation on the held-out instructions: B and R1..RK of the SFT model, ranked by the new reward model.
	t0 = time.Now()
	student, err = startServer(ctx, cfg.Binary, "student", r.path("logs", "student-eval.log"), "--model", generator,
		"--reward-model", rmDir, "--reward-runtime", "auto", "--name", "student", "--n", fmt.Sprint(sz.EvalK),
		"--max-n", "16", "--threads", th, "--data-dir", r.path("student-data"))
	if err != nil {
		return err
	}
	r.srv.add(student)
	seed := int64(cfg.Seed)
	ev, err := r.job(ctx, "evaluate", map[string]any{"questions_file": evalIn,
		"groups": []any{map[string]any{"name": "R", "k": sz.EvalK, "baseline": "B",
			"endpoint": map[string]any{"base_url": student.URL + "/v1", "model": "student:r1", "seed": seed,
				"max_tokens": sz.StudentMaxTokens, "temperature": 1.0, "concurrency": 1, "timeout_s": 600}}},
		"concurrency": 1,
		"opponent":    map[string]any{"group": "B"},
		"judges":      map[string]any{"rules": map[string]any{"from_text": true}},
		"bootstrap":   map[string]any{"resamples": sz.Bootstrap, "seed": cfg.Seed}})
	r.srv.stop(student)
	if err != nil {
		return err
	}
	evalDir := r.path("out", "eval")
	if err := os.MkdirAll(evalDir, 0o755); err != nil {
		return err
	}
	for _, id := range ev.Outputs {
		f, err := r.adm.File(ctx, id)
		if err != nil {
			return err
		}
		if err := r.download(ctx, id, filepath.Join(evalDir, f.Filename)); err != nil {
			return err
		}
	}
	r.step("evaluate", t0, ev.ID, ev.Params, ev.Result, ev.Metrics)
	r.srv.stop(adm)

	// Ship: the generator, the reward model directory, the report and its plot.
	return r.ship(generator, rmDir, evalDir)
}

// shippedEval are the evaluation files copied next to the model card.
func shippedEval() []string {
	return []string{"report.json", "report.md", "relative_rules.png", "relative_rules.svg", "answers.jsonl"}
}

func (r *run) ship(generator, rmDir, evalDir string) error {
	out := r.cfg.OutDir
	if err := copyFile(generator, filepath.Join(out, "generator.gguf")); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(out, "reward-model")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "reward-model"), 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(rmDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := copyFile(filepath.Join(rmDir, e.Name()), filepath.Join(out, "reward-model", e.Name())); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "eval"), 0o755); err != nil {
		return err
	}
	for _, name := range shippedEval() {
		if _, err := os.Stat(filepath.Join(evalDir, name)); err != nil {
			continue
		}
		if err := copyFile(filepath.Join(evalDir, name), filepath.Join(out, "eval", name)); err != nil {
			return err
		}
	}
	return filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if rel == "generator.gguf" || strings.HasPrefix(rel, "reward-model"+string(filepath.Separator)) {
			r.sum.Files[filepath.ToSlash(rel)] = info.Size()
		}
		return nil
	})
}

func (r *run) writeSummary() error {
	b, err := json.MarshalIndent(r.sum, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.cfg.OutDir, "recipe.json"), append(b, '\n'), 0o644)
}

func (r *run) step(name string, t0 time.Time, jobID string, params, result json.RawMessage, metrics map[string]float64) {
	d := time.Since(t0)
	r.sum.Steps = append(r.sum.Steps, Step{Name: name, Seconds: d.Seconds(), JobID: jobID, Params: params, Result: result, Metrics: metrics})
	r.logf("step %s: %s", name, d.Round(100*time.Millisecond))
}

// job submits a job, prints its progress until it ends, and returns it; a job that did not succeed is an error.
func (r *run) job(ctx context.Context, typ string, params map[string]any) (jobs.Job, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return jobs.Job{}, err
	}
	j, err := r.adm.Submit(ctx, typ, raw)
	if err != nil {
		return jobs.Job{}, fmt.Errorf("submit %s: %w", typ, err)
	}
	r.logf("%s: job %s submitted", typ, j.ID)
	last := time.Time{}
	j, err = r.adm.Wait(ctx, j.ID, time.Second, func(j jobs.Job) {
		if time.Since(last) < 10*time.Second {
			return
		}
		last = time.Now()
		r.logf("%s: %s %d/%d %s%s", typ, j.Status, j.Progress.Done, j.Progress.Total, j.Progress.Unit, metricText(j.Metrics))
	})
	if err != nil {
		return j, fmt.Errorf("%s job %s: %w", typ, j.ID, err)
	}
	if j.Status != jobs.StatusSucceeded {
		msg := ""
		if j.Error != nil {
			msg = j.Error.Message
		}
		return j, fmt.Errorf("%s job %s %s: %s", typ, j.ID, j.Status, msg)
	}
	r.logf("%s: done %d/%d %s%s", typ, j.Progress.Done, j.Progress.Total, j.Progress.Unit, metricText(j.Metrics))
	return j, nil
}

func metricText(m map[string]float64) string {
	var b strings.Builder
	for _, k := range []string{"loss", "eval_loss", "eval_accuracy", "tokens_per_second"} {
		if v, ok := m[k]; ok {
			fmt.Fprintf(&b, " %s=%.4g", k, v)
		}
	}
	return b.String()
}

// stats downloads a published JSONL file and scores its (instruction, answer) pairs with the rule checks.
func (r *run) stats(ctx context.Context, id string, parse func([][]byte) ([][2]string, error)) (RuleStats, error) {
	var buf bytes.Buffer
	if _, err := r.adm.Download(ctx, id, &buf); err != nil {
		return RuleStats{}, fmt.Errorf("download %s: %w", id, err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(buf.Bytes(), []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	pairs, err := parse(lines)
	if err != nil {
		return RuleStats{}, err
	}
	return ruleStats(pairs), nil
}

// output is the job's published file of the purpose (and file name, when not "").
func (r *run) output(ctx context.Context, j jobs.Job, purpose, name string) (jobs.File, error) {
	for _, id := range j.Outputs {
		f, err := r.adm.File(ctx, id)
		if err != nil {
			return f, err
		}
		if f.Purpose == purpose && (name == "" || f.Filename == name) {
			return f, nil
		}
	}
	return jobs.File{}, fmt.Errorf("%s job %s published no %s file", j.Type, j.ID, purpose)
}

// upload uploads content (and keeps a copy in WorkDir/inputs).
func (r *run) upload(ctx context.Context, filename, purpose string, content []byte) (string, error) {
	if err := os.WriteFile(r.path("inputs", filename), content, 0o644); err != nil {
		return "", err
	}
	f, err := r.adm.UploadFile(ctx, filename, purpose, bytes.NewReader(content))
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", filename, err)
	}
	return f.ID, nil
}

func (r *run) uploadPath(ctx context.Context, path, purpose string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	f, err := r.adm.UploadFile(ctx, filepath.Base(path), purpose, bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", path, err)
	}
	return f.ID, nil
}

func (r *run) download(ctx context.Context, id, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := r.adm.Download(ctx, id, f); err != nil {
		f.Close()
		return fmt.Errorf("download %s: %w", id, err)
	}
	return f.Close()
}

// downloadTar downloads a reward model tar and extracts its model directory (the files at its top or in its one
// top directory) into dir.
func (r *run) downloadTar(ctx context.Context, id, dir string) error {
	var buf bytes.Buffer
	if _, err := r.adm.Download(ctx, id, &buf); err != nil {
		return fmt.Errorf("download %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(h.Name)), b, 0o644); err != nil {
			return err
		}
	}
}

// hhTrain reads HHPairs and returns its training rows as JSONL (capped at Size.HHRows).
func (r *run) hhTrain() ([]byte, error) {
	lines, err := trainjobs.ReadLines(r.cfg.HHPairs)
	if err != nil {
		return nil, err
	}
	train, held := trainjobs.SplitHeldout(lines, r.cfg.HHSeed, r.cfg.HHFraction)
	r.hhHeld = held
	r.sum.HH.Rows, r.sum.HH.HeldOut = len(lines), len(held)
	if n := r.cfg.Size.HHRows; n > 0 && n < len(train) {
		train = train[:n]
	}
	r.sum.HH.Train = len(train)
	return append(bytes.Join(train, []byte("\n")), '\n'), nil
}

func instructionRows(tasks []storytask.Task) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, t := range tasks {
		enc.Encode(map[string]string{"instruction": t.Instruction})
	}
	return b.Bytes()
}

func questionRows(tasks []storytask.Task) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, t := range tasks {
		enc.Encode(map[string]string{"question_id": t.ID, "prompt": t.Instruction, "category": "story"})
	}
	return b.Bytes()
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
