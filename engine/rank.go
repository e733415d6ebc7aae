package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"
)

// DefaultScoreTimeout bounds a Scorer call when no other bound is configured (Config.ScoreTimeout).
const DefaultScoreTimeout = 30 * time.Second

// Rank scores cands with one call of scorer and sorts them best first, as the engine ranks a reranked request;
// generators that do not decode themselves (a remote backend) call it so that their requests are ranked the
// same way. Each answer is scored as a reply to prompt (Request.RewardText), without the white space its
// continuation of the prompt starts with (reward templates separate prompt and response themselves, e.g.
// "Assistant: {response}"). The call is bounded by timeout (0: DefaultScoreTimeout) and returns as soon as ctx
// is done even if the scorer ignores ctx. On success Rank sets every candidate's Score, Scored and Rank and
// returns ""; otherwise it leaves cands in their order and returns why (a result is then Degraded with that
// reason): no scorer, a scorer error, a timeout, or a wrong number of scores.
func Rank(ctx context.Context, scorer Scorer, prompt string, cands []Candidate, timeout time.Duration) string {
	if scorer == nil {
		return "no scorer configured"
	}
	if timeout <= 0 {
		timeout = DefaultScoreTimeout
	}
	texts := make([]string, len(cands))
	for i, c := range cands {
		texts[i] = strings.TrimLeftFunc(c.Text, unicode.IsSpace)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	scores, err := callScorer(sctx, scorer, prompt, texts)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Sprintf("scorer timed out after %v", timeout)
	case err != nil:
		return "scorer failed: " + err.Error()
	case len(scores) != len(texts):
		return fmt.Sprintf("scorer returned %d scores for %d candidates", len(scores), len(texts))
	}
	rankCandidates(cands, scores)
	return ""
}

// callScorer runs the scorer but returns as soon as ctx is done, even if the scorer ignores ctx.
func callScorer(ctx context.Context, s Scorer, prompt string, texts []string) ([]float32, error) {
	type out struct {
		scores []float32
		err    error
	}
	ch := make(chan out, 1)
	go func() {
		sc, err := s.Score(ctx, prompt, texts)
		ch <- out{sc, err}
	}()
	select {
	case o := <-ch:
		return o.scores, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rankCandidates sets each candidate's Score from scores (same order) and sorts them best first; ties keep
// sampling order, a NaN score ranks last. Rank becomes 1..len(cands).
func rankCandidates(cands []Candidate, scores []float32) {
	for i := range cands {
		cands[i].Score = scores[i]
		cands[i].Scored = true
	}
	key := func(c Candidate) float64 {
		if math.IsNaN(float64(c.Score)) {
			return math.Inf(-1)
		}
		return float64(c.Score)
	}
	sort.SliceStable(cands, func(a, b int) bool {
		ka, kb := key(cands[a]), key(cands[b])
		if ka != kb {
			return ka > kb
		}
		return cands[a].Index < cands[b].Index
	})
	for i := range cands {
		cands[i].Rank = i + 1
	}
}
