package evalstats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Relative is the paper's relative score of a model against an opponent over the same questions.
type Relative struct {
	// N is the number of paired questions.
	N int `json:"n"`
	// Model and Opponent are the sums of the judge's scores.
	Model    float64 `json:"model"`
	Opponent float64 `json:"opponent"`
	// Ratio is Model / Opponent (0.94 for 94%); +Inf when Opponent is 0 and Model is not, NaN when both are
	// (null in JSON).
	Ratio Ratio `json:"ratio"`
}

// Ratio is a float64 that is null in JSON when it is not finite (encoding/json rejects NaN and Inf).
type Ratio float64

// MarshalJSON implements json.Marshaler.
func (r Ratio) MarshalJSON() ([]byte, error) {
	f := float64(r)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON implements json.Unmarshaler; null becomes NaN.
func (r *Ratio) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = Ratio(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*r = Ratio(f)
	return nil
}

// String formats r as the paper does, e.g. "624 : 667 = 94%".
func (r Relative) String() string {
	return fmt.Sprintf("%s : %s = %s", FormatScore(r.Model), FormatScore(r.Opponent), FormatPercent(float64(r.Ratio)))
}

// FormatScore prints a sum of scores with at most one decimal ("624", "726.5").
func FormatScore(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// FormatPercent prints a ratio as a whole percentage ("94%"), or "n/a" when it is not finite.
func FormatPercent(ratio float64) string {
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*ratio)
}

// errLengths is returned when paired slices differ in length.
var errLengths = errors.New("evalstats: model and opponent scores differ in length")

// RelativeScore sums both sides' scores and divides.
func RelativeScore(model, opponent []float64) (Relative, error) {
	if len(model) != len(opponent) {
		return Relative{}, fmt.Errorf("%w (%d vs %d)", errLengths, len(model), len(opponent))
	}
	r := Relative{N: len(model)}
	for i := range model {
		r.Model += model[i]
		r.Opponent += opponent[i]
	}
	r.Ratio = Ratio(ratio(r.Model, r.Opponent))
	return r, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return math.NaN()
		}
		return math.Inf(1)
	}
	return a / b
}

// BootstrapOptions configure BootstrapRatio. The zero value means 10,000 resamples, a 95% interval, seed 0.
type BootstrapOptions struct {
	Resamples int
	Level     float64
	Seed      uint64
}

// Interval is a bootstrap confidence interval of a ratio.
type Interval struct {
	Low       Ratio   `json:"low"`
	High      Ratio   `json:"high"`
	Level     float64 `json:"level"`
	Resamples int     `json:"resamples"`
	Seed      uint64  `json:"seed"`
}

// Excludes reports whether v lies outside the interval (e.g. parity, 1.0).
func (iv Interval) Excludes(v float64) bool { return v < float64(iv.Low) || v > float64(iv.High) }

// BootstrapRatio is the paired percentile bootstrap interval of sum(model)/sum(opponent): each resample draws
// len(model) question indices with replacement and takes the ratio of the drawn pairs' sums. A resample whose
// opponent sum is 0 counts as +Inf (or is dropped when its model sum is 0 too). It needs at least one pair.
func BootstrapRatio(model, opponent []float64, opts BootstrapOptions) (Interval, error) {
	if len(model) != len(opponent) {
		return Interval{}, fmt.Errorf("%w (%d vs %d)", errLengths, len(model), len(opponent))
	}
	if len(model) == 0 {
		return Interval{}, errors.New("evalstats: bootstrap of no pairs")
	}
	if opts.Resamples <= 0 {
		opts.Resamples = 10000
	}
	if opts.Level == 0 {
		opts.Level = 0.95
	}
	if opts.Level <= 0 || opts.Level >= 1 {
		return Interval{}, fmt.Errorf("evalstats: confidence level %v is not in (0, 1)", opts.Level)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15))
	n := len(model)
	ratios := make([]float64, 0, opts.Resamples)
	for range opts.Resamples {
		var a, b float64
		for range n {
			j := rng.IntN(n)
			a += model[j]
			b += opponent[j]
		}
		if r := ratio(a, b); !math.IsNaN(r) {
			ratios = append(ratios, r)
		}
	}
	if len(ratios) == 0 {
		return Interval{}, errors.New("evalstats: every resample has zero scores on both sides")
	}
	slices.Sort(ratios)
	alpha := (1 - opts.Level) / 2
	return Interval{
		Low:       Ratio(Quantile(ratios, alpha)),
		High:      Ratio(Quantile(ratios, 1-alpha)),
		Level:     opts.Level,
		Resamples: opts.Resamples,
		Seed:      opts.Seed,
	}, nil
}

// Quantile is the q-quantile of sorted values with linear interpolation between order statistics (numpy's
// default, Hyndman and Fan's type 7): position q*(n-1).
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	if lo < 0 {
		return sorted[0]
	}
	frac := pos - float64(lo)
	if frac == 0 {
		return sorted[lo]
	}
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// WinTieLoss counts the questions where the model scored above, equal to and below the opponent.
type WinTieLoss struct {
	Win  int `json:"win"`
	Tie  int `json:"tie"`
	Loss int `json:"loss"`
}

// CountWinTieLoss compares paired scores; scores within 1e-9 of each other tie.
func CountWinTieLoss(model, opponent []float64) (WinTieLoss, error) {
	if len(model) != len(opponent) {
		return WinTieLoss{}, fmt.Errorf("%w (%d vs %d)", errLengths, len(model), len(opponent))
	}
	var w WinTieLoss
	for i := range model {
		switch d := model[i] - opponent[i]; {
		case d > 1e-9:
			w.Win++
		case d < -1e-9:
			w.Loss++
		default:
			w.Tie++
		}
	}
	return w, nil
}

// Category is the relative score and win/tie/loss counts of the questions of one category.
type Category struct {
	Category   string     `json:"category"`
	Relative   Relative   `json:"relative"`
	WinTieLoss WinTieLoss `json:"win_tie_loss"`
}

// ByCategory splits paired scores by category, in order of each category's first appearance.
func ByCategory(categories []string, model, opponent []float64) ([]Category, error) {
	if len(categories) != len(model) || len(model) != len(opponent) {
		return nil, fmt.Errorf("evalstats: %d categories for %d and %d scores", len(categories), len(model), len(opponent))
	}
	index := map[string]int{}
	var out []Category
	var ms, os [][]float64
	for i, c := range categories {
		k, ok := index[c]
		if !ok {
			k = len(out)
			index[c] = k
			out = append(out, Category{Category: c})
			ms, os = append(ms, nil), append(os, nil)
		}
		ms[k] = append(ms[k], model[i])
		os[k] = append(os[k], opponent[i])
	}
	for k := range out {
		out[k].Relative, _ = RelativeScore(ms[k], os[k])
		out[k].WinTieLoss, _ = CountWinTieLoss(ms[k], os[k])
	}
	return out, nil
}
