package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/reward"
)

func TestScoreCommand(t *testing.T) {
	const dir = "../../reward/testdata/tiny-rm"
	cands := []string{"Sure, mix flour and water.", "No."}
	var out, errOut bytes.Buffer
	args := append([]string{"--reward-model", dir, "--runtime", "go", "--prompt", "How do I bake bread?"}, cands...)
	if err := runScore(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v (stderr %s)", err, errOut.String())
	}
	m, err := reward.Load(dir, reward.Options{Runtime: reward.RuntimeGo})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want, err := m.Score(context.Background(), "How do I bake bread?", cands)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(cands) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(cands), out.String())
	}
	for i, line := range lines {
		var got struct {
			Index *int     `json:"index"`
			Score *float64 `json:"score"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil || got.Index == nil || got.Score == nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if *got.Index != i || math.Abs(*got.Score-float64(want[i])) > 1e-6 {
			t.Errorf("line %d = %s, want index %d score %v", i, line, i, want[i])
		}
	}
}

func TestScoreCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--reward-model", "", "--prompt", "p", "a"},             // empty model
		{"--reward-model", "../../reward/testdata/tiny-rm"},      // no candidates
		{"--reward-model", "/nonexistent", "--prompt", "p", "a"}, // bad dir
	} {
		var out, errOut bytes.Buffer
		if err := runScore(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("runScore(%q) succeeded", args)
		}
	}
}
