package trainjobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/train"
	"github.com/bestofn/bestofn/weights"
)

// newEnv starts a job service with the training types and purposes (and opts' external trainers).
func newEnv(t *testing.T, opts Options) *jobstest.Env {
	t.Helper()
	return jobstest.New(t, jobs.Config{Types: Types(opts), Purposes: Purposes(), Threads: 2})
}

// uploadFile uploads a file from disk.
func uploadFile(env *jobstest.Env, path, purpose string) jobs.File {
	env.T.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		env.T.Fatal(err)
	}
	return env.Upload(filepath.Base(path), purpose, data)
}

// hhSlice is the first n rows of the HH-RLHF test file as JSONL.
func hhSlice(t testing.TB, n int) []byte {
	t.Helper()
	return append(bytes.Join(hhLines(t)[:n], []byte("\n")), '\n')
}

// rewardParams are a small, quick train-reward run on stories260K.
func rewardParams(base, data string) map[string]any {
	return map[string]any{"base_file": base, "training_files": []string{data}, "epochs": 2, "batch_size": 8,
		"learning_rate": 1e-3, "warmup_steps": 2, "max_length": 96, "eval_fraction": 0.25, "seed": 3}
}

// jobResult decodes a job's result.
func jobResult[T any](t *testing.T, j jobs.Job) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(j.Result, &v); err != nil {
		t.Fatalf("result %s: %v", j.Result, err)
	}
	return v
}

// findFile returns the one file named name under dir.
func findFile(t *testing.T, dir, name string) string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("%d files %s under %s", len(found), name, dir)
	}
	return found[0]
}

// TestTrainRewardJob runs train-reward end to end on a real SQLite store: 64 HH-RLHF rows from stories260K.
// The registered model loads with package reward on both runtimes, and scores as package train's own forward
// pass does: the test rebuilds the trained model by resuming the job's final checkpoint file with the same
// pairs and settings (which takes no step), then compares.
func TestTrainRewardJob(t *testing.T) {
	env := newEnv(t, Options{})
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	data := env.Upload("hh.jsonl", PurposePreferences, hhSlice(t, 64))
	j := env.Run(TypeReward, rewardParams(base.ID, data.ID))
	res := jobResult[RewardResult](t, j)
	t.Logf("result: %s", j.Result)
	switch {
	case res.Rows != 64 || res.Pairs+sum(res.SkippedRows) != 64 || res.TrainPairs+res.EvalPairs != res.Pairs:
		t.Errorf("rows %d, pairs %d, skipped %v, train %d + eval %d", res.Rows, res.Pairs, res.SkippedRows, res.TrainPairs, res.EvalPairs)
	case res.EvalPairs != 16 || res.Heldout["accuracy_ci95_low"] > res.Heldout["accuracy"] || res.Heldout["accuracy_ci95_high"] < res.Heldout["accuracy"]:
		t.Errorf("held out %d pairs: %v", res.EvalPairs, res.Heldout)
	case res.Steps != 12 || res.RewardStd <= 0 || res.Model == nil || res.AccuracyCIMethod != "wilson":
		t.Errorf("steps %d, reward std %g, model %v", res.Steps, res.RewardStd, res.Model)
	}
	if _, ok := j.Metrics["eval_accuracy"]; !ok || j.Metrics["loss"] == 0 {
		t.Errorf("latest metrics %v", j.Metrics)
	}
	evals := 0
	for _, ev := range env.Events(j.ID) {
		if ev.Level == "metrics" && bytes.Contains(ev.Data, []byte(`"eval_accuracy"`)) {
			evals++
		}
	}
	if evals != 2 { // one per epoch
		t.Errorf("%d evaluations in the events, want 2", evals)
	}

	// The registered model, on both runtimes.
	dir, mv, err := env.Service.ModelPath(context.Background(), "reward", 0)
	if err != nil || mv.Kind != jobs.KindReward || mv.FileID != res.Model.FileID || mv.Version != res.Model.Version {
		t.Fatalf("registered %+v, %v", mv, err)
	}
	tmpl, _ := parseRMTemplate(DefaultRewardTemplate)
	var texts []textPair
	for _, line := range hhLines(t)[:8] {
		p, _ := ParsePreference(line)
		if tp, err := p.pairs(tmpl, false); err == nil {
			texts = append(texts, tp...)
		}
	}
	scores := map[string][]float32{}
	for _, opts := range []reward.Options{{Runtime: reward.RuntimeGo}, ortOptions(t)} {
		if opts.Runtime == "" {
			continue
		}
		rm, err := reward.Load(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range texts {
			s, err := rm.Score(context.Background(), tp.prompt, []string{tp.chosen, tp.rejected})
			if err != nil {
				t.Fatal(err)
			}
			scores[opts.Runtime] = append(scores[opts.Runtime], s...)
		}
		rm.Close()
	}

	// The trainer's model, rebuilt from the job's checkpoint.
	ck, err := weights.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tok, err := tokenizer.FromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	encode := rewardEncoder(tok, tmpl, 96, false)
	var pairs []train.Pair
	for _, line := range hhLines(t)[:64] {
		p, _ := ParsePreference(line)
		tps, err := p.pairs(tmpl, false)
		if err != nil {
			continue
		}
		c, _ := encode(tps[0].prompt, tps[0].chosen)
		r, _ := encode(tps[0].prompt, tps[0].rejected)
		pairs = append(pairs, train.Pair{Chosen: c, Rejected: r})
	}
	m, err := train.FromCheckpoint(ck, train.Options{Head: train.HeadReward, Threads: 2, MaxTokens: 4096, MaxSeqLen: 96}, 3)
	if err != nil {
		t.Fatal(err)
	}
	var p RewardParams
	if err := jobs.DecodeParams(j.Params, &p); err != nil {
		t.Fatal(err)
	}
	cfg := p.trainConfig(findFile(t, env.Dir, TypeReward+".ckpt"), 1e-4)
	var steps int
	if _, err := train.TrainReward(context.Background(), m, pairs, cfg, train.Hooks{Step: func(train.StepInfo) { steps++ }}); err != nil {
		t.Fatal(err)
	}
	if steps != 0 {
		t.Fatalf("resuming the final checkpoint took %d steps", steps)
	}
	var seqs [][]int32
	for _, tp := range texts {
		c, _ := encode(tp.prompt, tp.chosen)
		r, _ := encode(tp.prompt, tp.rejected)
		seqs = append(seqs, c, r)
	}
	want := make([]float32, len(seqs))
	if err := m.Scores(seqs, want); err != nil {
		t.Fatal(err)
	}
	for rt, got := range scores {
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4) {
				t.Errorf("%s: input %d scores %.6f, train %.6f", rt, i, got[i], want[i])
			}
		}
	}
	if len(scores) == 0 {
		t.Fatal("no runtime scored")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ortOptions returns reward.Options for ONNX Runtime, or zero Options (skip) when its library is not installed.
func ortOptions(t *testing.T) reward.Options {
	t.Helper()
	lib := os.Getenv("BESTOFN_ORT_LIB")
	if lib == "" {
		if p, err := filepath.Abs("../.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"); err == nil {
			if _, err := os.Stat(p); err == nil {
				lib = p
			}
		}
	}
	if lib == "" {
		t.Log("onnx runtime library not found (BESTOFN_ORT_LIB): checking the Go runtime only")
		return reward.Options{}
	}
	return reward.Options{Runtime: reward.RuntimeORT, ORTLibrary: lib}
}

// TestBadRows: an upload of a bad preference row is refused naming its line; a job reading a file of another
// purpose fails naming the file and line, or with skip_bad_rows counts the skips by reason.
func TestBadRows(t *testing.T) {
	env := newEnv(t, Options{})
	good := hhSlice(t, 12)
	bad := append(bytes.Clone(good), []byte("{\"chosen\": \"x\"}\n{\"chosen\": 5, \"rejected\": \"y\"}\nnot json\n")...)
	_, err := env.Service.UploadFile(context.Background(), "bad.jsonl", PurposePreferences, bytes.NewReader(bad))
	var pe *jobs.ParamError
	if !errors.As(err, &pe) || pe.Line != 13 || !strings.Contains(pe.Message, "rejected") {
		t.Errorf("upload of a bad row: %v", err)
	}
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	f := env.Upload("bad.jsonl", jobs.PurposeResults, bad)
	params := rewardParams(base.ID, f.ID)
	params["epochs"] = 1
	j := env.Wait(env.Submit(TypeReward, params).ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "invalid_input" ||
		!strings.Contains(j.Error.Message, "file "+f.ID+" line 13") {
		t.Errorf("bad row: %s %+v", j.Status, j.Error)
	}
	params["skip_bad_rows"] = true
	j = env.Run(TypeReward, params)
	res := jobResult[RewardResult](t, j)
	want := map[string]int{ReasonMissingField: 1, ReasonWrongType: 1, ReasonInvalidJSON: 1}
	for k, v := range want {
		if res.SkippedRows[k] != v {
			t.Errorf("skipped %v, want %v", res.SkippedRows, want)
		}
	}
	if res.Rows != 15 || res.Pairs != 12 {
		t.Errorf("%d rows, %d pairs", res.Rows, res.Pairs)
	}
}

// TestValidate: bad params are refused before anything is queued, naming the field.
func TestValidate(t *testing.T) {
	env := newEnv(t, Options{})
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	data := env.Upload("hh.jsonl", PurposePreferences, hhSlice(t, 4))
	for _, c := range []struct {
		typ    string
		change map[string]any
		field  string
	}{
		{TypeReward, map[string]any{"base_file": nil}, "base_model"},
		{TypeReward, map[string]any{"base_model": "x"}, "base_file"},
		{TypeReward, map[string]any{"base_file": "file-nope"}, "base_file"},
		{TypeReward, map[string]any{"training_files": []string{}}, "training_files"},
		{TypeReward, map[string]any{"training_files": []string{data.ID, "file-nope"}}, "training_files[1]"},
		{TypeReward, map[string]any{"epochs": -1}, "epochs"},
		{TypeReward, map[string]any{"learning_rate": "fast"}, "learning_rate"},
		{TypeReward, map[string]any{"eval_fraction": 1}, "eval_fraction"},
		{TypeReward, map[string]any{"max_length": 4}, "max_length"},
		{TypeReward, map[string]any{"template": "{prompt} only"}, "template"},
		{TypeReward, map[string]any{"trainer": "external"}, "trainer"},
		{TypeReward, map[string]any{"trainer": "gpu"}, "trainer"},
		{TypeReward, map[string]any{"model_name": "bad name"}, "model_name"},
		{TypeReward, map[string]any{"base_file": nil, "base_model": "scratch"}, "scratch"},
		{TypeReward, map[string]any{"base_file": nil, "base_model": "scratch", "scratch": map[string]any{"dim": 64, "layers": 2, "heads": 3}, "tokenizer_file": base.ID}, "scratch.heads"},
		{TypeReward, map[string]any{"unknown": 1}, "unknown"},
		{TypeSFT, map[string]any{"template": "nope"}, "template"},
		{TypeSFT, map[string]any{"gguf_type": "Q6_K"}, "gguf_type"},
		{TypeSFT, map[string]any{"use_margin": true}, "use_margin"},
	} {
		params := rewardParams(base.ID, data.ID)
		for k, v := range c.change {
			if v == nil {
				delete(params, k)
			} else {
				params[k] = v
			}
		}
		raw, _ := json.Marshal(params)
		_, err := env.Service.Submit(context.Background(), c.typ, raw)
		var pe *jobs.ParamError
		if !errors.As(err, &pe) || pe.Field != "params."+c.field {
			t.Errorf("%s %v: %v, want a ParamError on %s", c.typ, c.change, err, c.field)
		}
	}
	if jobsNow, _ := env.Service.Jobs(context.Background(), jobs.JobFilter{}); len(jobsNow) != 0 {
		t.Errorf("%d jobs queued", len(jobsNow))
	}
}

// sha256Of hashes a stored file.
func sha256Of(env *jobstest.Env, id string) [32]byte { return sha256.Sum256(env.ReadFile(id)) }

// TestBaseModels starts training from each kind of base: a registered generator by name, a model trained from
// scratch with an uploaded tokenizer (llama.cpp's GGUF of the LLaMA-2 32K vocabulary, and llama2.c's
// tok512.bin, which a llama2.c base needs), and a llama2.c checkpoint.
func TestBaseModels(t *testing.T) {
	env := newEnv(t, Options{})
	gguf := uploadFile(env, stories260K, jobs.PurposeModel)
	if _, err := env.Service.RegisterModel(context.Background(), jobs.ModelSpec{Name: "stories", Kind: jobs.KindGenerator, FileID: gguf.ID}); err != nil {
		t.Fatal(err)
	}
	bin := uploadFile(env, "../../shared/models/stories260K/stories260K.bin", jobs.PurposeResults)
	tok512 := uploadFile(env, "../../shared/models/stories260K/tok512.bin", jobs.PurposeResults)
	spm32k := uploadFile(env, "../../shared/tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf", jobs.PurposeResults)
	data := env.Upload("hh.jsonl", PurposePreferences, hhSlice(t, 8))
	tiny := map[string]any{"dim": 16, "layers": 1, "heads": 2, "context_length": 64}
	for _, c := range []struct {
		name  string
		base  map[string]any
		vocab int
	}{
		{"registered", map[string]any{"base_model": "stories"}, 512},
		{"scratch-32k", map[string]any{"base_model": "scratch", "scratch": tiny, "tokenizer_file": spm32k.ID}, 32000},
		{"scratch-512", map[string]any{"base_model": "scratch", "scratch": tiny, "tokenizer_file": gguf.ID}, 512},
		{"llama2c", map[string]any{"base_file": bin.ID, "tokenizer_file": tok512.ID}, 512},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := map[string]any{"training_files": []string{data.ID}, "epochs": 1, "batch_size": 4, "max_length": 64,
				"eval_fraction": 0, "model_name": "rm-" + c.name}
			for k, v := range c.base {
				p[k] = v
			}
			j := env.Run(TypeReward, p)
			res := jobResult[RewardResult](t, j)
			dir, _, err := env.Service.ModelPath(context.Background(), "rm-"+c.name, 0)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Vocab  int `json:"vocab_size"`
				MaxPos int `json:"max_position_embeddings"`
			}
			js, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			if err := json.Unmarshal(js, &cfg); err != nil || cfg.Vocab != c.vocab || cfg.MaxPos != 64 || res.Pairs != 8 {
				t.Errorf("config %s (%v), result %s", js, err, j.Result)
			}
		})
	}
	// A llama2.c base without a tokenizer: a clear error.
	j := env.Wait(env.Submit(TypeReward, map[string]any{"base_file": bin.ID, "training_files": []string{data.ID}}).ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || !strings.Contains(j.Error.Message, "tokenizer_file") {
		t.Errorf("llama2.c base without a tokenizer: %s %+v", j.Status, j.Error)
	}
}
