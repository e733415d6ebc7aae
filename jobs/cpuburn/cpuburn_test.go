package cpuburn

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

func TestBurnRunsThreadsForItsTime(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlitestore.Open(context.Background(), dir+"/jobs.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	j, err := jobs.RunJob(context.Background(), jobs.Config{Store: st, DataDir: dir, Types: []jobs.Type{Type{}}, Threads: 2},
		"cpu-burn", json.RawMessage(`{"seconds":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second || took > 5*time.Second {
		t.Errorf("a 1 s burn took %v", took)
	}
	var res struct {
		Threads int       `json:"threads"`
		Work    []float64 `json:"work_per_thread"`
	}
	if err := json.Unmarshal(j.Result, &res); err != nil || res.Threads != 2 || len(res.Work) != 2 || res.Work[0] == 0 || res.Work[1] == 0 {
		t.Fatalf("result %s: %v", j.Result, err)
	}
	var pe *jobs.ParamError
	if err := (Type{}).Validate(context.Background(), json.RawMessage(`{"seconds":-1}`), nil); !errors.As(err, &pe) || pe.Field != "seconds" {
		t.Errorf("seconds -1: %v", err)
	}
}
