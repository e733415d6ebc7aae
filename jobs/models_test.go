package jobs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
)

// fakeTrainer is a job type for tests that "trains" a reward model: it writes a model directory under Run.Dir,
// publishes it as one tar and registers it.
type fakeTrainer struct{}

func (fakeTrainer) Name() string { return "fake-train" }

func (fakeTrainer) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	var p struct{ Seed string }
	return jobs.DecodeParams(params, &p)
}

func (fakeTrainer) Run(ctx context.Context, run *jobs.Run) error {
	var p struct{ Seed string }
	if err := run.DecodeParams(&p); err != nil {
		return err
	}
	dir := filepath.Join(run.Dir(), "model")
	if err := os.MkdirAll(filepath.Join(dir, "extra"), 0o755); err != nil {
		return err
	}
	for name, content := range map[string]string{"model.onnx": "onnx:" + p.Seed, "tokenizer.json": "{}", "extra/notes.txt": "n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	f, err := run.PublishDir(ctx, "reward-model.tar", jobs.PurposeRewardModel, dir)
	if err != nil {
		return err
	}
	v, err := run.RegisterModel(ctx, jobs.ModelSpec{Name: "rm", Kind: jobs.KindReward, FileID: f.ID,
		Metadata: map[string]any{"seed": p.Seed}})
	if err != nil {
		return err
	}
	return run.SetResult(map[string]any{"version": v.Version})
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		h := h
		body := []byte("x")
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	return b.Bytes()
}

func TestModelRegistry(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Types: []jobs.Type{fakeTrainer{}}})
	s := env.Service
	ctx := context.Background()

	// A reward model a job produced: published as a tar, registered, extracted on first use.
	j := env.Run("fake-train", `{"seed": "a"}`)
	if string(j.Result) != `{"version":1}` || len(j.Outputs) != 1 {
		t.Fatalf("job: result %s outputs %v", j.Result, j.Outputs)
	}
	dir, v, err := s.ModelPath(ctx, "rm", 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || v.JobID != j.ID || v.FileID != j.Outputs[0] || v.Metadata["seed"] != "a" {
		t.Errorf("version %+v", v)
	}
	for name, want := range map[string]string{"model.onnx": "onnx:a", "tokenizer.json": "{}", "extra/notes.txt": "n"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("extracted %s: %q %v", name, got, err)
		}
	}
	if again, _, err := s.ModelPath(ctx, "rm", 1); err != nil || again != dir {
		t.Errorf("second ModelPath: %s %v, want %s", again, err, dir)
	}

	// The same directory published again gives the same bytes: the same file, the same version.
	j2 := env.Run("fake-train", `{"seed": "a"}`)
	f1, _ := s.File(ctx, j.Outputs[0])
	f2, _ := s.File(ctx, j2.Outputs[0])
	if f1.SHA256 != f2.SHA256 || string(j2.Result) != `{"version":2}` {
		t.Errorf("republished tar: %s vs %s, result %s", f1.SHA256, f2.SHA256, j2.Result)
	}
	// Registering a job's output by job id.
	v3, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "rm2", Kind: jobs.KindReward, JobID: j2.ID})
	if err != nil || v3.Version != 1 || v3.FileID != j2.Outputs[0] {
		t.Errorf("register by job: %+v %v", v3, err)
	}
	if again, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "rm2", Kind: jobs.KindReward, FileID: j2.Outputs[0]}); err != nil || again.Version != 1 {
		t.Errorf("registering the same file again: %+v %v", again, err)
	}

	// A generator: one GGUF file.
	gguf := append([]byte("GGUF"), make([]byte, 60)...)
	g := env.Upload("tiny.gguf", jobs.PurposeModel, gguf)
	gv, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "gen", Kind: jobs.KindGenerator, FileID: g.ID})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := s.ModelPath(ctx, "gen", gv.Version)
	if got, _ := os.ReadFile(p); err != nil || !bytes.Equal(got, gguf) {
		t.Errorf("generator path %s: %v", p, err)
	}

	var pe *jobs.ParamError
	bad := []struct {
		name  string
		spec  jobs.ModelSpec
		field string
	}{
		{"name", jobs.ModelSpec{Name: "../x", Kind: jobs.KindGenerator, FileID: g.ID}, "name"},
		{"kind", jobs.ModelSpec{Name: "x", Kind: "llm", FileID: g.ID}, "kind"},
		{"no source", jobs.ModelSpec{Name: "x", Kind: jobs.KindGenerator}, "file_id"},
		{"both", jobs.ModelSpec{Name: "x", Kind: jobs.KindGenerator, FileID: g.ID, JobID: j.ID}, "file_id"},
		{"not gguf", jobs.ModelSpec{Name: "x", Kind: jobs.KindGenerator, FileID: f1.ID}, "file_id"},
		{"not a tar", jobs.ModelSpec{Name: "x", Kind: jobs.KindReward, FileID: g.ID}, "file_id"},
		{"no such output", jobs.ModelSpec{Name: "x", Kind: jobs.KindReward, JobID: j.ID, Output: "nope"}, "output"},
		{"no generator output", jobs.ModelSpec{Name: "x", Kind: jobs.KindGenerator, JobID: j.ID}, "output"},
	}
	for _, c := range bad {
		if _, err := s.RegisterModel(ctx, c.spec); !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: %v, want a ParamError on %s", c.name, err, c.field)
		}
	}
	if _, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "rm", Kind: jobs.KindGenerator, FileID: g.ID}); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("a generator under a reward model's name: %v", err)
	}
	if _, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "x", Kind: jobs.KindGenerator, FileID: "file-nope"}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("unknown file: %v", err)
	}
	if _, _, err := s.ModelPath(ctx, "rm", 9); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("unknown version: %v", err)
	}
	if err := s.DeleteFile(ctx, g.ID); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("delete a registered model's file: %v", err)
	}

	// Tars whose entries would land outside the directory, or are links, are refused.
	for name, content := range map[string][]byte{
		"dotdot":   tarOf(t, tar.Header{Name: "model.onnx", Typeflag: tar.TypeReg}, tar.Header{Name: "../evil", Typeflag: tar.TypeReg}),
		"absolute": tarOf(t, tar.Header{Name: "model.onnx", Typeflag: tar.TypeReg}, tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg}),
		"nested":   tarOf(t, tar.Header{Name: "model.onnx", Typeflag: tar.TypeReg}, tar.Header{Name: "a/../../evil", Typeflag: tar.TypeReg}),
		"symlink":  tarOf(t, tar.Header{Name: "model.onnx", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}),
		"hardlink": tarOf(t, tar.Header{Name: "model.onnx", Typeflag: tar.TypeLink, Linkname: "../x"}),
		"no model": tarOf(t, tar.Header{Name: "tokenizer.json", Typeflag: tar.TypeReg}),
	} {
		f := env.Upload(name+".tar", jobs.PurposeRewardModel, content)
		if _, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "bad", Kind: jobs.KindReward, FileID: f.ID}); !errors.As(err, &pe) || pe.Field != "file_id" {
			t.Errorf("%s tar: %v, want a ParamError on file_id", name, err)
		}
	}
	// A tar made with `tar -C dir -cf x.tar .` or of the directory itself works too.
	for name, content := range map[string][]byte{
		"dot":    tarOf(t, tar.Header{Name: "./", Typeflag: tar.TypeDir}, tar.Header{Name: "./model.onnx", Typeflag: tar.TypeReg}),
		"topdir": tarOf(t, tar.Header{Name: "tiny-rm/", Typeflag: tar.TypeDir}, tar.Header{Name: "tiny-rm/model.onnx", Typeflag: tar.TypeReg}),
	} {
		f := env.Upload(name+".tar", jobs.PurposeRewardModel, content)
		v, err := s.RegisterModel(ctx, jobs.ModelSpec{Name: "ok-" + name, Kind: jobs.KindReward, FileID: f.ID})
		if err != nil {
			t.Errorf("%s tar: %v", name, err)
			continue
		}
		dir, _, err := s.ModelPath(ctx, v.Name, v.Version)
		if _, statErr := os.Stat(filepath.Join(dir, "model.onnx")); err != nil || statErr != nil {
			t.Errorf("%s tar extracted to %s: %v %v", name, dir, err, statErr)
		}
	}
}

func TestActivations(t *testing.T) {
	env := jobstest.New(t, jobs.Config{Workers: -1})
	ctx := context.Background()
	g1 := env.Upload("a.gguf", jobs.PurposeModel, []byte("GGUF1"))
	g2 := env.Upload("b.gguf", jobs.PurposeModel, []byte("GGUF2"))
	for _, g := range []jobs.File{g1, g2} {
		if _, err := env.Service.RegisterModel(ctx, jobs.ModelSpec{Name: "gen", Kind: jobs.KindGenerator, FileID: g.ID}); err != nil {
			t.Fatal(err)
		}
	}
	s := env.Service
	if err := s.RecordActivation(ctx, jobs.Activation{Model: "gen", Version: 1, ServeAs: []string{"llama-gpt4", "llama-gpt4:r1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordActivation(ctx, jobs.Activation{Model: "gen", Version: 2, ServeAs: []string{"llama-gpt4:r1"}}); err != nil {
		t.Fatal(err)
	}
	var pe *jobs.ParamError
	if err := s.RecordActivation(ctx, jobs.Activation{Model: "gen", Version: 3, ServeAs: []string{"x"}}); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("activate an unknown version: %v", err)
	}
	if err := s.RecordActivation(ctx, jobs.Activation{Model: "gen", Version: 1}); !errors.As(err, &pe) || pe.Field != "serve_as" {
		t.Errorf("activate as nothing: %v", err)
	}
	// A new Service on the same store (a restart) sees the same activations.
	env.Crash()
	versions, acts, err := env.Service.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 {
		t.Errorf("versions %+v", versions)
	}
	if len(acts) != 2 || acts[0].Version != 1 || len(acts[0].ServeAs) != 1 || acts[0].ServeAs[0] != "llama-gpt4" ||
		acts[1].Version != 2 || acts[1].ServeAs[0] != "llama-gpt4:r1" || acts[0].ActivatedAt == 0 {
		t.Errorf("activations %+v", acts)
	}
	// Rolling back: version 1 serves :r1 again.
	if err := env.Service.RecordActivation(ctx, jobs.Activation{Model: "gen", Version: 1, ServeAs: []string{"llama-gpt4:r1"}}); err != nil {
		t.Fatal(err)
	}
	acts, _ = env.Service.Activations(ctx)
	if len(acts) != 2 || acts[0].ServeAs[0] != "llama-gpt4" || acts[1].Version != 1 || acts[1].ServeAs[0] != "llama-gpt4:r1" {
		t.Errorf("after rollback %+v", acts)
	}
}
