package trainjobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/weights"
)

// preparedRewardModel exports a reward model (stories260K with a zero head) for the external trainer script to
// hand back.
func preparedRewardModel(t *testing.T) string {
	t.Helper()
	ck, err := weights.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	w, err := export.FromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := export.VocabFromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "prepared-rm")
	if err := export.WriteRewardModel(dir, export.RewardModel{Weights: w, Head: export.Head{Weight: make([]float32, w.Config.Dim), Bias: 0.5},
		Vocab: vocab, MaxPositions: 256}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExternalTrainerJobs runs both job types with "trainer": "external" and the contract's test script: the
// script's progress lines become the job's progress and metrics, the normalized dataset it gets holds the
// pairs (prompt + chosen is the served text) and the prompt-completion rows, and its output is checked,
// published and registered like the built-in trainer's.
func TestExternalTrainerJobs(t *testing.T) {
	script := trainerScript(t)
	rmDir := preparedRewardModel(t)
	absStories, _ := filepath.Abs(stories260K)
	env := newEnv(t, Options{
		RewardExternal: &External{Command: []string{"bash", script, rmDir, "ok"}},
		SFTExternal:    &External{Command: []string{"bash", script, absStories, "ok"}},
	})
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	hh := env.Upload("hh.jsonl", PurposePreferences, hhSlice(t, 10))
	j := env.Run(TypeReward, map[string]any{"base_file": base.ID, "training_files": []string{hh.ID}, "trainer": "external",
		"trainer_args": map[string]any{"gpus": 8}})
	res := jobResult[RewardResult](t, j)
	if res.Trainer != TrainerExternal || res.External["trained_rows"] != 10.0 || res.Pairs != 10 || res.Model == nil {
		t.Errorf("result %s", j.Result)
	}
	if j.Progress.Done != 3 || j.Progress.Total != 3 || j.Progress.Unit != "epochs" || j.Metrics["loss"] != 0.4 || j.Metrics["rows"] != 10 {
		t.Errorf("progress %+v, metrics %v", j.Progress, j.Metrics)
	}
	// The dataset the trainer got: prompt + chosen is the HH dialogue itself.
	data, err := os.ReadFile(findFile(t, filepath.Join(env.Dir, "jobs", j.ID), "data.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for i := 0; sc.Scan(); i++ {
		var got struct{ Prompt, Chosen, Rejected string }
		var want struct{ Chosen, Rejected string }
		json.Unmarshal(sc.Bytes(), &got)
		json.Unmarshal(hhLines(t)[i], &want)
		if got.Prompt+got.Chosen != want.Chosen || got.Prompt+got.Rejected != want.Rejected {
			t.Errorf("row %d: prompt+chosen %q, the HH row's %q", i+1, got.Prompt+got.Chosen, want.Chosen)
		}
	}
	params, err := os.ReadFile(findFile(t, filepath.Join(env.Dir, "jobs", j.ID), "params.json"))
	if err != nil || !strings.Contains(string(params), `"gpus":8`) {
		t.Errorf("params file %s (%v)", params, err)
	}
	if _, mv, err := env.Service.ModelPath(context.Background(), "reward", 0); err != nil || mv.FileID != res.Model.FileID {
		t.Errorf("registered %+v, %v", mv, err)
	}

	alpaca := env.Upload("alpaca.jsonl", PurposeSFT, jsonl(t, sftRows[0], sftRows[2]))
	j = env.Run(TypeSFT, map[string]any{"base_file": base.ID, "training_files": []string{alpaca.ID}, "trainer": "external"})
	sres := jobResult[SFTResult](t, j)
	if sres.Trainer != TrainerExternal || sres.External["trained_rows"] != 2.0 || sres.Model == nil {
		t.Errorf("result %s", j.Result)
	}
	got := env.ReadFile(sres.Model.FileID)
	want, _ := os.ReadFile(stories260K)
	if !bytes.Equal(got, want) {
		t.Errorf("the published GGUF is not the trainer's output")
	}
	data, err = os.ReadFile(findFile(t, filepath.Join(env.Dir, "jobs", j.ID), "data.jsonl"))
	if err != nil || !bytes.Contains(data, []byte(`"completion":"Five."`)) || !bytes.Contains(data, []byte(`### Input:\n2 and 3\n\n### Response:"`)) {
		t.Errorf("sft dataset %s (%v)", data, err)
	}
}

// TestExternalTrainerFailureAndCancel: a trainer exiting 3 fails the job with its stderr; cancelling a job
// whose trainer is running stops the trainer and ends the job cancelled.
func TestExternalTrainerFailureAndCancel(t *testing.T) {
	script := trainerScript(t)
	env := newEnv(t, Options{
		RewardExternal: &External{Command: []string{"bash", script, "x", "fail"}},
		SFTExternal:    &External{Command: []string{"bash", script, "x", "slow"}, Grace: time.Second},
	})
	base := uploadFile(env, stories260K, jobs.PurposeModel)
	hh := env.Upload("hh.jsonl", PurposePreferences, hhSlice(t, 4))
	j := env.Wait(env.Submit(TypeReward, map[string]any{"base_file": base.ID, "training_files": []string{hh.ID}, "trainer": "external"}).ID)
	if j.Status != jobs.StatusFailed || j.Error == nil || j.Error.Code != "external_trainer_failed" || !strings.Contains(j.Error.Message, "training diverged") {
		t.Errorf("failing trainer: %s %+v", j.Status, j.Error)
	}
	alpaca := env.Upload("alpaca.jsonl", PurposeSFT, jsonl(t, sftRows[0]))
	j = env.Submit(TypeSFT, map[string]any{"base_file": base.ID, "training_files": []string{alpaca.ID}, "trainer": "external"})
	env.WaitUntil(j.ID, func(j jobs.Job) bool { return j.Progress.Done == 3 })
	if _, err := env.Service.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if j = env.Wait(j.ID); j.Status != jobs.StatusCancelled {
		t.Errorf("cancelled job ended %s %+v", j.Status, j.Error)
	}
	t.Logf("cancelled in %v", time.Since(start))
}
