package trainjobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a reporter that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	progress [][3]int64
	units    []string
	metrics  []map[string]float64
	steps    []int64
	events   []string
}

func (r *recorder) Progress(done, total int64, unit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, [3]int64{done, total})
	r.units = append(r.units, unit)
}

func (r *recorder) Metrics(step int64, values map[string]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, step)
	r.metrics = append(r.metrics, values)
}

func (r *recorder) Event(level, msg string, _ any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, level+": "+msg)
}

// externalFixture prepares the contract's paths in a temporary directory, with a 4-row dataset.
func externalFixture(t *testing.T) externalRun {
	t.Helper()
	dir := t.TempDir()
	r := externalRun{jobID: "job-1", jobType: "sft", data: filepath.Join(dir, "data.jsonl"),
		outputDir: filepath.Join(dir, "out"), params: filepath.Join(dir, "params.json"), work: filepath.Join(dir, "work"), threads: 2}
	for _, d := range []string{r.outputDir, r.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r.data, []byte("{}\n{}\n{}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.params, []byte(`{"trainer": "external"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func trainerScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/external_trainer.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExternalRun(t *testing.T) {
	r := externalFixture(t)
	model := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(model, []byte("GGUF..."), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res, err := External{Command: []string{"bash", trainerScript(t), model, "ok"}}.run(context.Background(), r, rec)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(r.outputDir, "model.gguf")); string(got) != "GGUF..." {
		t.Errorf("output model.gguf holds %q", got)
	}
	if res["trained_rows"] != 4.0 {
		t.Errorf("result %v, want trained_rows 4", res)
	}
	if len(rec.progress) != 3 || rec.progress[2] != [3]int64{3, 3} || rec.units[0] != "epochs" {
		t.Errorf("progress %v %v", rec.progress, rec.units)
	}
	if len(rec.metrics) != 3 || rec.metrics[0]["loss"] != 0.6 || rec.metrics[2]["rows"] != 4 || rec.steps[1] != 2 {
		t.Errorf("metrics %v at steps %v", rec.metrics, rec.steps)
	}
	if len(rec.events) != 1 || rec.events[0] != "info: external trainer: epochs done" {
		t.Errorf("events %v", rec.events)
	}
}

func TestExternalFailure(t *testing.T) {
	r := externalFixture(t)
	_, err := External{Command: []string{"bash", trainerScript(t), "x", "fail"}}.run(context.Background(), r, &recorder{})
	var ee *ExternalError
	if !errors.As(err, &ee) || ee.ExitCode != 3 || !strings.Contains(ee.Stderr, "training diverged") {
		t.Fatalf("got %v, want exit 3 with the stderr message", err)
	}
	_, err = External{Command: []string{filepath.Join(t.TempDir(), "no-such-trainer")}}.run(context.Background(), r, &recorder{})
	if !errors.As(err, &ee) || ee.ExitCode != -1 {
		t.Fatalf("missing command: %v", err)
	}
	if _, err := (External{}).run(context.Background(), r, &recorder{}); err == nil {
		t.Fatal("no command: no error")
	}
}

// TestExternalCancel cancels a running command: one that exits on SIGTERM stops at once, one that ignores it
// is killed after the grace period.
func TestExternalCancel(t *testing.T) {
	for _, c := range []struct {
		mode     string
		min, max time.Duration
	}{{"slow", 0, 2 * time.Second}, {"stubborn", 500 * time.Millisecond, 5 * time.Second}} {
		t.Run(c.mode, func(t *testing.T) {
			r := externalFixture(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for ctx.Err() == nil {
					if _, err := os.Stat(filepath.Join(r.work, "started")); err == nil {
						cancel()
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			var start time.Time
			x := External{Command: []string{"bash", trainerScript(t), "x", c.mode}, Grace: 500 * time.Millisecond}
			done := make(chan error, 1)
			go func() {
				_, err := x.run(ctx, r, &recorder{})
				done <- err
			}()
			<-ctx.Done()
			start = time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("got %v, want context.Canceled", err)
				}
				if el := time.Since(start); el < c.min || el > c.max {
					t.Errorf("stopped %v after cancel, want within [%v, %v]", el, c.min, c.max)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the command did not stop")
			}
		})
	}
}
