package remote_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/reward"
)

// TestCandidatesEqualTheRemotes: best of 5 over the OpenAI API (one request with n) and over the Ollama API
// (five requests, seeds seed+i) give, candidate by candidate, what the remote answers to single requests with
// seeds seed+i; the local reward model ranks them with the scores it gives the same (prompt, answer) pairs.
func TestCandidatesEqualTheRemotes(t *testing.T) {
	srv := startRemote(t)
	rm := tinyRM(t, reward.Options{})
	const seed = 41
	want := make([]string, 5)
	for i := range want {
		want[i] = directChat(t, srv.URL, seed+int64(i))
	}
	if want[0] == want[1] && want[1] == want[2] {
		t.Fatalf("the remote's answers do not depend on the seed: %q", want[0])
	}
	for _, tc := range []struct {
		name, api, url, nSupport string
	}{
		{"openai", remote.APIOpenAI, srv.URL + "/v1", remote.NNative},
		{"ollama", remote.APIOllama, srv.URL, remote.NFanout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newGenerator(t, remote.Config{API: tc.api, URL: tc.url, Scorer: rm})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := g.Generate(ctx, chatRequest(5, seed, true))
			if err != nil {
				t.Fatal(err)
			}
			if res.Degraded || len(res.Candidates) != 5 {
				t.Fatalf("degraded %v (%s), %d candidates", res.Degraded, res.DegradedReason, len(res.Candidates))
			}
			texts := make([]string, 5)
			byIndex := map[int]float32{}
			for k, c := range res.Candidates {
				if c.Rank != k+1 || !c.Scored {
					t.Errorf("candidate %d: rank %d, scored %v", k, c.Rank, c.Scored)
				}
				if k > 0 && c.Score > res.Candidates[k-1].Score {
					t.Errorf("not sorted by score: %v then %v", res.Candidates[k-1].Score, c.Score)
				}
				texts[c.Index] = strings.TrimLeftFunc(c.Text, unicode.IsSpace)
				byIndex[c.Index] = c.Score
				if c.NumTokens() == 0 {
					t.Errorf("candidate %d: no token count", c.Index)
				}
			}
			for i := range want {
				if texts[i] != strings.TrimLeftFunc(want[i], unicode.IsSpace) {
					t.Errorf("candidate %d (seed %d):\n got %q\nwant %q", i, seed+i, texts[i], want[i])
				}
			}
			// The reward model, called directly on the same pairs, gives the same scores.
			scores, err := rm.Score(ctx, "Tell me a story about a cat.", texts)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range scores {
				if d := s - byIndex[i]; d > 1e-5 || d < -1e-5 {
					t.Errorf("candidate %d: score %v through the gateway, %v directly", i, byIndex[i], s)
				}
			}
			if st := g.BackendStatus(); st.NSupport != tc.nSupport || st.State != api.BackendClosed {
				t.Errorf("status %+v, want n_support %s", st, tc.nSupport)
			}
			if res.PromptTokens == 0 || res.Timings.FirstToken <= 0 {
				t.Errorf("prompt tokens %d, first token %v", res.PromptTokens, res.Timings.FirstToken)
			}
		})
	}
}
