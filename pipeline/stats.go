package pipeline

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/bestofn/bestofn/evalstats"
)

// WinRateUnpaired is the probability that a random treatment score beats a random control score, ties
// counting half (the common-language effect size; the Mann-Whitney U statistic over n_t*n_c), computed from
// midranks of the pooled scores.
func WinRateUnpaired(treatment, control []float64) float64 {
	nt, nc := len(treatment), len(control)
	if nt == 0 || nc == 0 {
		return math.NaN()
	}
	type obs struct {
		v float64
		t bool
	}
	all := make([]obs, 0, nt+nc)
	for _, v := range treatment {
		all = append(all, obs{v, true})
	}
	for _, v := range control {
		all = append(all, obs{v, false})
	}
	sort.Slice(all, func(a, b int) bool { return all[a].v < all[b].v })
	rankSum := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].t {
				rankSum += mid
			}
		}
		i = j
	}
	u := rankSum - float64(nt)*float64(nt+1)/2
	return u / (float64(nt) * float64(nc))
}

// percentileCI is the percentile interval (2.5%, 97.5%) of bootstrap statistics.
func percentileCI(vals []float64) [2]float64 {
	return [2]float64{sampleQuantile(vals, 0.025), sampleQuantile(vals, 0.975)}
}

// bootstrapRounds is the number of bootstrap resamples of every interval.
const bootstrapRounds = 2000

// BootstrapUnpairedCI is the 95% percentile bootstrap interval of WinRateUnpaired, resampling each group
// with replacement, seeded.
func BootstrapUnpairedCI(treatment, control []float64, seed uint64) [2]float64 {
	return bootstrapUnpaired(treatment, control, seed, bootstrapRounds)
}

func bootstrapUnpaired(treatment, control []float64, seed uint64, rounds int) [2]float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t := make([]float64, len(treatment))
	c := make([]float64, len(control))
	vals := make([]float64, rounds)
	for b := range vals {
		for i := range t {
			t[i] = treatment[rng.IntN(len(treatment))]
		}
		for i := range c {
			c[i] = control[rng.IntN(len(control))]
		}
		vals[b] = WinRateUnpaired(t, c)
	}
	return percentileCI(vals)
}

// BootstrapMeanCI is the 95% percentile bootstrap interval of the mean of xs (e.g. per-prompt outcomes 1,
// 0.5, 0 of paired comparisons), seeded.
func BootstrapMeanCI(xs []float64, seed uint64) [2]float64 {
	return bootstrapMean(xs, seed, bootstrapRounds)
}

func bootstrapMean(xs []float64, seed uint64, rounds int) [2]float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	vals := make([]float64, rounds)
	for b := range vals {
		s := 0.0
		for range xs {
			s += xs[rng.IntN(len(xs))]
		}
		vals[b] = s / float64(len(xs))
	}
	return percentileCI(vals)
}

// meanCI is the mean with a normal-approximation 95% interval (mean ± 1.96 s/√n); the interval is nil for
// fewer than two values.
func meanCI(xs []float64) (float64, *[2]float64) {
	n := float64(len(xs))
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= n
	if len(xs) < 2 {
		return m, nil
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	h := 1.96 * math.Sqrt(ss/(n-1)/n)
	return m, &[2]float64{m - h, m + h}
}

// Bucket is a cumulative histogram bucket: Count observations <= Upper.
type Bucket struct {
	Upper float64
	Count float64
}

// HistogramQuantile estimates the q-quantile of a cumulative histogram as PromQL's histogram_quantile does:
// the rank q*total is located in its bucket and interpolated linearly within it (from 0 for the first bucket
// when its bound is positive); a rank in the +Inf bucket gives the highest finite bound. The buckets must end
// with +Inf; NaN when there are no observations.
func HistogramQuantile(q float64, buckets []Bucket) float64 {
	if len(buckets) < 2 || !math.IsInf(buckets[len(buckets)-1].Upper, 1) {
		return math.NaN()
	}
	bs := append([]Bucket(nil), buckets...)
	sort.Slice(bs, func(a, b int) bool { return bs[a].Upper < bs[b].Upper })
	for i := 1; i < len(bs); i++ { // counts must not decrease (PromQL's monotonicity fix)
		bs[i].Count = math.Max(bs[i].Count, bs[i-1].Count)
	}
	total := bs[len(bs)-1].Count
	switch {
	case total == 0 || math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	rank := q * total
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].Count >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].Upper
	}
	if b == 0 && bs[0].Upper <= 0 {
		return bs[0].Upper
	}
	start, prev := 0.0, 0.0
	if b > 0 {
		start, prev = bs[b-1].Upper, bs[b-1].Count
	}
	end, count := bs[b].Upper, bs[b].Count-prev
	if count == 0 {
		return end
	}
	return start + (end-start)*((rank-prev)/count)
}

// sampleQuantile is the q-quantile of xs by linear interpolation between closest ranks (numpy's default).
func sampleQuantile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return evalstats.Quantile(s, q)
}
