package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/pipeline"
)

// TestABReportCommand judges a small A/B log with the tiny reward model and the rule checks, as JSON and as
// Markdown, with latency from the log's fields.
func TestABReportCommand(t *testing.T) {
	var log bytes.Buffer
	for i := range 8 {
		v := []string{"B", "R1"}[i%2]
		rec := map[string]any{"time": time.Unix(1700000000+int64(i), 0).UTC(), "request_id": fmt.Sprint(i), "model": "m:ab", "variant": v,
			"prompt": "Write a story under 10 words.", "answer": strings.Repeat("word ", 5+i), "latency_s": 0.1 + float64(i%2)}
		b, _ := json.Marshal(rec)
		log.Write(append(b, '\n'))
	}
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	os.WriteFile(path, log.Bytes(), 0o644)
	var out, errOut bytes.Buffer
	err := runAB(context.Background(), []string{"report", "--log", path, "--reward-model", "../../reward/testdata/tiny-rm", "--runtime", "go", "--json"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var rep pipeline.ABReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Log.Used != 8 || rep.WinRate == nil || rep.Variants[0].Judged != 4 || rep.Latency == nil || rep.Latency.Source != "log" ||
		rep.Judge["scorer"] != pipeline.ScorerRewardModel {
		t.Errorf("report %s", out.String())
	}
	out.Reset()
	prefix := filepath.Join(t.TempDir(), "ab")
	if err := runAB(context.Background(), []string{"report", "--log", path, "--rules", "--plot", prefix}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if svg, err := os.ReadFile(prefix + ".svg"); err != nil || !strings.Contains(string(svg), "win rate") {
		t.Errorf("plot: %v", err)
	}
	if !strings.Contains(out.String(), "Win rate of R1 over B") || !strings.Contains(out.String(), "| R1 | 4 | 4 |") {
		t.Errorf("markdown:\n%s", out.String())
	}
	for _, args := range [][]string{
		{"report"},
		{"report", "--log", path},
		{"report", "--log", path, "--rules", "--reward-model", "x"},
		{"report", "--log", "/nonexistent", "--rules"},
		{"nope"},
	} {
		if err := runAB(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
