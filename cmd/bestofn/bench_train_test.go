package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestBenchTrainJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"bench", "--shape", "260k", "--train", "--steps", "1", "--threads", "1", "--peak-time", "50ms", "--json"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep trainBenchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	if rep.CPU == "" || rep.Threads != 1 || len(rep.Shapes) != 1 {
		t.Fatalf("report %+v", rep)
	}
	s := rep.Shapes[0]
	if s.Shape != "260k" || s.Params != 260032 || s.Batch != 8 || s.SeqLen != 256 || !(s.TokensPerSecond > 0) ||
		!(s.PeakRSSMB > 0) || (rep.PeakFLOPS > 0 && !(s.PeakShare > 0 && s.PeakShare < 1)) {
		t.Errorf("shape result %+v (peak %g)", s, rep.PeakFLOPS)
	}
	if code := run(context.Background(), []string{"bench", "--train", "--shape", "7b"}, &out, &errOut); code == 0 {
		t.Error("an unknown shape was accepted")
	}
}
