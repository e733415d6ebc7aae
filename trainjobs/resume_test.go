package trainjobs

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

const workerDirEnv = "BESTOFN_TRAINJOBS_TEST_WORKER_DIR"

// TestHelperWorkerProcess is not a test: TestTrainRewardResumesAfterKill runs the test binary with it as a
// worker process on a data directory, until it is killed.
func TestHelperWorkerProcess(t *testing.T) {
	dir := os.Getenv(workerDirEnv)
	if dir == "" {
		t.Skip("a worker process for TestTrainRewardResumesAfterKill")
	}
	st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, sqlitestore.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jobs.New(jobs.Config{Store: st, DataDir: dir, Types: Types(Options{}), Purposes: Purposes(), Threads: 2, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {} // until kill -9
}

// TestTrainRewardResumesAfterKill runs train-reward in a worker process, kills it with SIGKILL after a
// checkpoint in the middle of training, and lets a second process finish it: the published reward model is
// byte for byte the one an uninterrupted run publishes, and so are the held-out results.
func TestTrainRewardResumesAfterKill(t *testing.T) {
	if os.Getenv(workerDirEnv) != "" {
		t.Skip("in the worker process")
	}
	dir := t.TempDir()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(dir, sqlitestore.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := jobs.New(jobs.Config{Store: st, DataDir: dir, Types: Types(Options{}), Purposes: Purposes(), Workers: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	upload := func(s *jobs.Service, name, purpose string, data []byte) jobs.File {
		f, err := s.UploadFile(ctx, name, purpose, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	model, err := os.ReadFile(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	hh := hhSlice(t, 40)
	params := func(base, data string) json.RawMessage {
		p := rewardParams(base, data)
		p["epochs"], p["checkpoint_steps"] = 3, 2
		raw, _ := json.Marshal(p)
		return raw
	}
	j, err := s.Submit(ctx, TypeReward, params(upload(s, "stories.gguf", jobs.PurposeModel, model).ID, upload(s, "hh.jsonl", PurposePreferences, hh).ID))
	if err != nil {
		t.Fatal(err)
	}

	startWorker := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$")
		cmd.Env = append(os.Environ(), workerDirEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("worker output:\n%s", out.String())
			}
		})
		return cmd
	}
	jobNow := func() jobs.Job {
		j, err := s.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	w := startWorker()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		cur := jobNow()
		if cur.Status.Finished() {
			t.Fatalf("the job ended %s before it could be killed", cur.Status)
		}
		if cur.Progress.Done >= 5 { // past the checkpoint of step 4 (checkpoint_steps 2)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not at step 5 within 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	w.Wait()
	killedAt := jobNow().Progress
	t.Logf("killed the worker at step %d/%d", killedAt.Done, killedAt.Total)
	if killedAt.Done >= killedAt.Total {
		t.Fatalf("killed after the last step")
	}
	startWorker()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	j, err = s.Wait(wctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.StatusSucceeded || j.Attempts != 2 {
		t.Fatalf("the job ended %s after %d attempts: %+v", j.Status, j.Attempts, j.Error)
	}
	resumed := jobResult[RewardResult](t, j)

	// The same job, uninterrupted.
	env := newEnv(t, Options{})
	j2 := env.Run(TypeReward, params(env.Upload("stories.gguf", jobs.PurposeModel, model).ID, env.Upload("hh.jsonl", PurposePreferences, hh).ID))
	whole := jobResult[RewardResult](t, j2)
	rc, _, err := s.OpenFile(ctx, resumed.Model.FileID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	got.ReadFrom(rc)
	if !bytes.Equal(got.Bytes(), env.ReadFile(whole.Model.FileID)) {
		t.Errorf("the resumed job's reward model differs from the uninterrupted job's")
	}
	if a, b := resumed.Heldout["accuracy"], whole.Heldout["accuracy"]; a != b || resumed.RewardMean != whole.RewardMean || resumed.Steps != whole.Steps {
		t.Errorf("resumed: accuracy %g, mean %g, %d steps; uninterrupted: %g, %g, %d", a, resumed.RewardMean, resumed.Steps, b, whole.RewardMean, whole.Steps)
	}
}
