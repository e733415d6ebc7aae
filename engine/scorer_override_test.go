package engine

import (
	"context"
	"testing"
)

// A request's own Scorer ranks it instead of the engine's (what a hot swap of the reward model relies on), and
// an engine without a scorer ranks requests that bring one.
func TestRequestScorerOverridesEngine(t *testing.T) {
	byIndex := func(scores ...float32) scorerFunc {
		return func(context.Context, string, []string) ([]float32, error) { return scores, nil }
	}
	for _, tc := range []struct {
		name         string
		engine, req  Scorer
		wantFirst    int
		wantDegraded bool
	}{
		{"engine's", byIndex(0, 0, 9), nil, 2, false},
		{"request's wins", byIndex(0, 0, 9), byIndex(9, 0, 0), 0, false},
		{"request's on an engine without one", nil, byIndex(0, 9, 0), 1, false},
		{"neither", nil, nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newFakeEngine(t, Config{}, tc.engine)
			res, err := e.Generate(context.Background(), Request{Prompt: "p", N: 3, Rerank: true, MaxTokens: 4,
				Scorer: tc.req, Sampling: SamplingParams{Temperature: 1, Seed: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Degraded != tc.wantDegraded {
				t.Fatalf("degraded %v (%s), want %v", res.Degraded, res.DegradedReason, tc.wantDegraded)
			}
			if got := res.Candidates[0].Index; got != tc.wantFirst {
				t.Errorf("best candidate %d, want %d", got, tc.wantFirst)
			}
		})
	}
}
