package trainjobs

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
)

// TestQualityBagOfWords is the baseline the README compares the reward models with (go test ./trainjobs -run
// QualityBagOfWords -quality -v): a bag-of-words logistic regression over the training rows of the HH-RLHF
// split alone (HHSplitFilesWith with -quality.splitseed and -quality.heldout), in 5-fold cross-validation,
// so that the held-out rows stay unseen. A pair's features are the chosen dialogue's word frequencies minus the
// rejected one's (each normalized by its length; the shared prompt cancels), the model has no bias (swapping
// the pair negates its score), and it reports the pairwise accuracy (ties one half) over the five folds with
// its 95% Wilson interval. It fails only if the baseline is not above chance.
func TestQualityBagOfWords(t *testing.T) {
	if !*quality {
		t.Skip("with the quality runs: go test ./trainjobs -run QualityBagOfWords -quality -v")
	}
	trainJSONL, _, err := HHSplitFilesWith(hhTest, *qualitySeed, *qualityHeld)
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]map[string]float64
	for _, line := range splitLines(trainJSONL) {
		p, rerr := ParsePreference(line)
		if rerr != nil {
			t.Fatal(rerr)
		}
		pairs = append(pairs, [2]map[string]float64{wordFrequencies(p.Chosen), wordFrequencies(p.Rejected)})
	}
	const folds = 5
	order := rand.New(rand.NewPCG(HHSplitSeed, 5)).Perm(len(pairs))
	var correct float64
	for f := range folds {
		var train, test [][2]map[string]float64
		for i, k := range order {
			if i%folds == f {
				test = append(test, pairs[k])
			} else {
				train = append(train, pairs[k])
			}
		}
		w := fitPairwiseLogistic(train, 1e-4, 300, 20)
		for _, p := range test {
			switch s := score(w, p[0]) - score(w, p[1]); {
			case s > 0:
				correct++
			case s == 0:
				correct += 0.5
			}
		}
	}
	n := float64(len(pairs))
	lo, hi := Wilson95(correct/n, n)
	t.Logf("bag of words, %d-fold cross-validation over %d training rows (split seed %d, held out %.3f): pairwise accuracy %.4f (95%% Wilson %.4f-%.4f)",
		folds, len(pairs), *qualitySeed, *qualityHeld, correct/n, lo, hi)
	if lo <= 0.5 {
		t.Errorf("the bag-of-words baseline is not above chance: %.4f-%.4f", lo, hi)
	}
}

// wordFrequencies returns the lower-cased words (runs of letters and digits) of text with their share of its
// words.
func wordFrequencies(text string) map[string]float64 {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	f := map[string]float64{}
	for _, w := range words {
		f[w] += 1 / float64(len(words))
	}
	return f
}

func score(w, x map[string]float64) float64 {
	var s float64
	for k, v := range x {
		s += w[k] * v
	}
	return s
}

// fitPairwiseLogistic minimizes the mean of log(1 + exp(-(w.x_chosen - w.x_rejected))) plus l2/2 |w|^2 by full-
// batch gradient descent (iters steps of size lr).
func fitPairwiseLogistic(pairs [][2]map[string]float64, l2 float64, iters int, lr float64) map[string]float64 {
	diffs := make([]map[string]float64, len(pairs))
	for i, p := range pairs {
		d := map[string]float64{}
		for k, v := range p[0] {
			d[k] += v
		}
		for k, v := range p[1] {
			d[k] -= v
		}
		diffs[i] = d
	}
	w := map[string]float64{}
	for range iters {
		grad := map[string]float64{}
		for _, d := range diffs {
			g := -1 / (1 + math.Exp(score(w, d))) // d/ds log(1+e^-s)
			for k, v := range d {
				grad[k] += g * v / float64(len(diffs))
			}
		}
		for k, v := range w {
			grad[k] += l2 * v
		}
		for k, g := range grad {
			w[k] -= lr * g
		}
	}
	return w
}
