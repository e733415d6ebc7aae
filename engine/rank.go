package engine

import (
	"math"
	"sort"
)

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
