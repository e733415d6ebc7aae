package sampler

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func randLogits(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// refSoftmax is the float64 softmax of x/t, written independently of the sampler.
func refSoftmax(x []float32, t float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v)/t)
	}
	p := make([]float64, len(x))
	var s float64
	for i, v := range x {
		p[i] = math.Exp(float64(v)/t - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// chiSquareCritical is the upper 0.001 quantile of the chi-square distribution with df degrees of
// freedom, by the Wilson–Hilferty approximation (z = 3.0902 for p = 0.001).
func chiSquareCritical(df int) float64 {
	const z = 3.0902
	k := float64(df)
	a := 2 / (9 * k)
	return k * math.Pow(1-a+z*math.Sqrt(a), 3)
}

// chiSquare draws n tokens and returns the statistic against the expected probabilities (cells with
// expected count < 5 are pooled) and its degrees of freedom.
func chiSquare(t *testing.T, s *Sampler, logits []float32, want []float64, n int) (float64, int) {
	t.Helper()
	counts := make([]int, len(logits))
	for range n {
		id, _ := s.Sample(logits)
		counts[id]++
	}
	var stat, poolE float64
	var poolO, cells int
	for i, p := range want {
		e := p * float64(n)
		if p == 0 {
			if counts[i] != 0 {
				t.Fatalf("token %d has probability 0 but was drawn %d times", i, counts[i])
			}
			continue
		}
		if e < 5 {
			poolE += e
			poolO += counts[i]
			continue
		}
		d := float64(counts[i]) - e
		stat += d * d / e
		cells++
	}
	if poolE > 0 {
		d := float64(poolO) - poolE
		stat += d * d / poolE
		cells++
	}
	return stat, cells - 1
}

func TestSoftmaxChiSquare(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := randLogits(r, 50, 1.5)
	for _, temp := range []float64{1, 0.7, 1.8} {
		s, err := New(Params{Temperature: float32(temp), Seed: 42}, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		stat, df := chiSquare(t, s, logits, refSoftmax(logits, temp), 100000)
		if crit := chiSquareCritical(df); stat > crit {
			t.Errorf("T=%v: chi-square %.1f > %.1f (df %d): draws do not follow softmax(logits/T)", temp, stat, crit, df)
		}
	}
}

// A wrong distribution must fail the same test: sampling at T=1 checked against softmax at T=1.3.
func TestChiSquareDetectsWrongDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	logits := randLogits(r, 50, 1.5)
	s, _ := New(Params{Temperature: 1, Seed: 42}, len(logits))
	stat, df := chiSquare(t, s, logits, refSoftmax(logits, 1.3), 100000)
	if stat <= chiSquareCritical(df) {
		t.Errorf("chi-square %.1f did not reject a wrong distribution (critical %.1f)", stat, chiSquareCritical(df))
	}
}

// With top-k, draws follow the softmax renormalized over the kept tokens.
func TestTopKChiSquare(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	logits := randLogits(r, 200, 1)
	const k, temp = 10, 0.8
	s, _ := New(Params{Temperature: temp, TopK: k, Seed: 7}, len(logits))
	kept := refFilter(logits, k, 1, 0)
	want := make([]float64, len(logits))
	sub := make([]float32, len(kept))
	for i, id := range kept {
		sub[i] = logits[id]
	}
	for i, p := range refSoftmax(sub, temp) {
		want[kept[i]] = p
	}
	stat, df := chiSquare(t, s, logits, want, 50000)
	if crit := chiSquareCritical(df); stat > crit {
		t.Errorf("chi-square %.1f > %.1f (df %d)", stat, crit, df)
	}
}

// The paper's decoding (T=1, top_p=1, no penalties) is plain softmax sampling: one uniform draw from the
// seeded PCG per token, inverted through the cumulative softmax in token-id order.
func TestPaperDecodingIsPlainSoftmax(t *testing.T) {
	const vocab, seed = 512, 1234
	r := rand.New(rand.NewPCG(5, 6))
	s, err := New(Params{Temperature: 1, TopP: 1, Seed: seed}, vocab)
	if err != nil {
		t.Fatal(err)
	}
	ref := rand.New(rand.NewPCG(seed, pcgStream))
	for step := range 2000 {
		logits := randLogits(r, vocab, 2)
		got, _ := s.Sample(logits)
		p := refSoftmax(logits, 1)
		u := ref.Float64()
		want := int32(vocab - 1)
		var cum float64
		for i, pi := range p {
			cum += pi
			if u < cum {
				want = int32(i)
				break
			}
		}
		if got != want {
			t.Fatalf("step %d: sampled %d, plain softmax sampling gives %d", step, got, want)
		}
	}
}

// refFilter is the brute-force reference of top-k, top-p, min-p: rank every token (value descending, id
// ascending), cut the top k, then the shortest prefix whose softmax mass reaches p, then tokens with
// probability >= minP * max. It returns the kept ids in rank order.
func refFilter(logits []float32, k int, p, minP float64) []int32 {
	ids := make([]int32, len(logits))
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.Slice(ids, func(a, b int) bool {
		va, vb := logits[ids[a]], logits[ids[b]]
		if va != vb {
			return va > vb
		}
		return ids[a] < ids[b]
	})
	if k > 0 && k < len(ids) {
		ids = ids[:k]
	}
	if p > 0 && p < 1 {
		sub := make([]float32, len(ids))
		for i, id := range ids {
			sub[i] = logits[id]
		}
		probs := refSoftmax(sub, 1)
		var cum float64
		for i, pi := range probs {
			cum += pi
			if cum >= p {
				ids = ids[:i+1]
				break
			}
		}
	}
	if minP > 0 {
		sub := make([]float32, len(ids))
		for i, id := range ids {
			sub[i] = logits[id]
		}
		probs := refSoftmax(sub, 1)
		var kept []int32
		for i, pi := range probs {
			if pi >= minP*probs[0] {
				kept = append(kept, ids[i])
			}
		}
		ids = kept
	}
	return ids
}

// nearBoundary reports whether a top-p or min-p decision is too close to call in floating point, so a
// random case is skipped rather than compared.
func nearBoundary(logits []float32, k int, p, minP float64) bool {
	ranked := refFilter(logits, k, 1, 0)
	sub := make([]float32, len(ranked))
	for i, id := range ranked {
		sub[i] = logits[id]
	}
	probs := refSoftmax(sub, 1)
	if p > 0 && p < 1 {
		var cum float64
		for _, pi := range probs {
			cum += pi
			if math.Abs(cum-p) < 1e-6 {
				return true
			}
		}
	}
	if minP > 0 {
		for _, pi := range probs {
			if math.Abs(pi/probs[0]-minP) < 1e-6 {
				return true
			}
		}
	}
	return false
}

func TestFiltersKeepExactSets(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	checked := 0
	for c := range 400 {
		vocab := 1 + r.IntN(3000)
		logits := randLogits(r, vocab, 0.5+3*r.Float64())
		// Quantize some logits so ties occur and the id tie-break is exercised.
		if c%3 == 0 {
			for i := range logits {
				logits[i] = float32(math.Round(float64(logits[i])*2) / 2)
			}
		}
		k := 0
		if r.IntN(2) == 0 {
			k = 1 + r.IntN(vocab+5)
		}
		p := 0.0
		if r.IntN(2) == 0 {
			p = 0.05 + 0.9*r.Float64()
		}
		minP := 0.0
		if r.IntN(2) == 0 {
			minP = 0.9 * r.Float64()
		}
		if nearBoundary(logits, k, p, minP) {
			continue
		}
		s, err := New(Params{Temperature: 1, TopK: k, TopP: float32(p), MinP: float32(minP)}, vocab)
		if err != nil {
			t.Fatal(err)
		}
		copy(s.work, logits)
		maxLogit := float64(slices.Max(logits))
		n := s.filter(s.work, maxLogit)
		got := slices.Clone(s.cand[:n])
		want := refFilter(logits, k, float64(float32(p)), float64(float32(minP)))
		// The sampler keeps candidates in no particular order; compare the sets.
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("case %d (vocab %d, k %d, p %.4f, min_p %.4f): kept %v, want %v", c, vocab, k, p, minP, head(got), head(want))
		}
		checked++
	}
	if checked < 300 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func head(x []int32) []int32 {
	if len(x) > 20 {
		return x[:20]
	}
	return x
}

func TestPenaltiesHandComputed(t *testing.T) {
	s, err := New(Params{Temperature: 1, RepeatPenalty: 2, RepeatLastN: 3, FrequencyPenalty: 0.5, PresencePenalty: 0.25,
		LogitBias: map[int32]float32{4: 1.5}}, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{0, 1, 0, 3} { // window of 3: {1, 0, 3}; counts 0:2, 1:1, 3:1
		s.Accept(id)
	}
	work := []float32{1, -1, 2, 0.5, -2, 0}
	for i, id := range s.biasIDs {
		work[id] += s.biasVals[i]
	}
	s.applyPenalties(work)
	want := []float32{
		1.0/2 - 2*0.5 - 0.25,  // repeated (positive: divided), seen twice
		-1.0*2 - 1*0.5 - 0.25, // repeated (negative: multiplied), seen once
		2,                     // never seen
		0.5/2 - 1*0.5 - 0.25,  // repeated, seen once
		-2 + 1.5,              // bias only
		0,
	}
	for i := range want {
		if math.Abs(float64(work[i]-want[i])) > 1e-6 {
			t.Errorf("token %d: %v, want %v", i, work[i], want[i])
		}
	}

	// Window eviction: with RepeatLastN 2, token 0 accepted before the last two is not repeat-penalized,
	// but still counts for the frequency penalty.
	s, _ = New(Params{Temperature: 1, RepeatPenalty: 4, RepeatLastN: 2, FrequencyPenalty: 1}, 4)
	for _, id := range []int32{0, 1, 2} {
		s.Accept(id)
	}
	work = []float32{8, 8, -8, 8}
	s.applyPenalties(work)
	if want := []float32{7, 8.0/4 - 1, -8*4 - 1, 8}; !slices.Equal(work, want) {
		t.Errorf("window: %v, want %v", work, want)
	}

}

func TestGreedy(t *testing.T) {
	s, err := New(Params{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Sample([]float32{1, 3, 2, 3, -1}); id != 1 {
		t.Errorf("greedy with a tie: %d, want 1 (lowest id)", id)
	}
	nan := float32(math.NaN())
	if id, _ := s.Sample([]float32{nan, 0, nan, 0.5, 0.1}); id != 3 {
		t.Errorf("greedy with NaN: %d, want 3", id)
	}
	inf := float32(math.Inf(-1))
	if id, lp := s.Sample([]float32{inf, inf, inf, inf, inf}); id != 0 || !math.IsInf(float64(lp), -1) {
		t.Errorf("all -Inf: %d %v, want 0 -Inf", id, lp)
	}
	if id, _ := s.Sample([]float32{1, float32(math.Inf(1)), 2, 3, 4}); id != 1 {
		t.Errorf("greedy with +Inf: %d, want 1", id)
	}
	// A tiny temperature is greedy in effect, without NaNs.
	tiny, _ := New(Params{Temperature: 1e-45, Seed: 1}, 5)
	for range 20 {
		if id, lp := tiny.Sample([]float32{1, 3, 2, 0.5, -1}); id != 1 || lp != lp {
			t.Fatalf("T=1e-45: %d %v, want 1 and a number", id, lp)
		}
	}
	// Penalties and bias change the argmax.
	s, _ = New(Params{RepeatPenalty: 3, LogitBias: map[int32]float32{4: 1.5}}, 5)
	s.Accept(1)
	if id, _ := s.Sample([]float32{1, 3, 2, 0, 1}); id != 4 {
		t.Errorf("greedy with penalty and bias: %d, want 4", id)
	}
	// Sampling with everything filtered to one token is deterministic too.
	s, _ = New(Params{Temperature: 1, TopK: 1, Seed: 9}, 5)
	for range 20 {
		if id, _ := s.Sample([]float32{0, 1, 5, 4.9, 2}); id != 2 {
			t.Fatalf("top_k 1: %d, want 2", id)
		}
	}
	// A banned token (bias -Inf) is never sampled.
	s, _ = New(Params{Temperature: 2, Seed: 9, LogitBias: map[int32]float32{0: float32(math.Inf(-1))}}, 3)
	for range 500 {
		if id, _ := s.Sample([]float32{5, 0, 0}); id == 0 {
			t.Fatal("banned token sampled")
		}
	}
}

func TestDeterminismBySeed(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const vocab = 1000
	rows := make([][]float32, 300)
	for i := range rows {
		rows[i] = randLogits(r, vocab, 2)
	}
	run := func(seed uint64) []int32 {
		s, err := New(Params{Temperature: 0.9, TopK: 50, TopP: 0.95, MinP: 0.01, RepeatPenalty: 1.1, Seed: seed}, vocab)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int32, len(rows))
		for i, row := range rows {
			out[i], _ = s.Sample(row)
			s.Accept(out[i])
		}
		return out
	}
	a, b, c := run(5), run(5), run(6)
	if !slices.Equal(a, b) {
		t.Error("same seed gave different tokens")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same 300 tokens")
	}
}

func TestLogprobsAreRaw(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const vocab = 300
	for _, params := range []Params{
		{Temperature: 0.5, TopK: 20, RepeatPenalty: 1.5, LogitBias: map[int32]float32{7: 3}, TopLogprobs: 5, Seed: 1},
		{Temperature: 1, TopLogprobs: 5, Seed: 2},              // shares the draw's exp pass
		{Temperature: 1, TopP: 0.7, TopLogprobs: 5, Seed: 3},   // shares top-p's exp pass
		{Temperature: 1.3, MinP: 0.1, TopLogprobs: 5, Seed: 4}, // separate pass
		{TopLogprobs: 5}, // greedy
	} {
		s, err := New(params, vocab)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			logits := randLogits(r, vocab, 2)
			logits[3] = logits[4] // a tie for the top list
			id, lp := s.Sample(logits)
			s.Accept(id)
			p := refSoftmax(logits, 1)
			if want := math.Log(p[id]); math.Abs(float64(lp)-want) > 1e-4 {
				t.Fatalf("%+v: logprob of %d = %v, want log_softmax %v", params, id, lp, want)
			}
			ranked := refFilter(logits, 5, 1, 0)
			top := s.TopLogprobs()
			if len(top) != 5 {
				t.Fatalf("%d top logprobs, want 5", len(top))
			}
			for i, e := range top {
				if e.ID != ranked[i] || math.Abs(float64(e.Logprob)-math.Log(p[ranked[i]])) > 1e-4 {
					t.Fatalf("%+v: top[%d] = %+v, want id %d logprob %v", params, i, e, ranked[i], math.Log(p[ranked[i]]))
				}
			}
		}
	}
}

// With top-p and min-p at T=1 (the probabilities computed for filtering are reused for the draw), draws
// follow the softmax renormalized over the kept tokens.
func TestTopPMinPChiSquare(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	logits := randLogits(r, 200, 1.2)
	for _, c := range []struct{ p, minP, temp float64 }{{0.8, 0, 1}, {0.9, 0.05, 1}, {0.85, 0, 0.7}} {
		s, _ := New(Params{Temperature: float32(c.temp), TopP: float32(c.p), MinP: float32(c.minP), Seed: 8}, len(logits))
		kept := refFilter(logits, 0, float64(float32(c.p)), float64(float32(c.minP)))
		want := make([]float64, len(logits))
		sub := make([]float32, len(kept))
		for i, id := range kept {
			sub[i] = logits[id]
		}
		for i, p := range refSoftmax(sub, c.temp) {
			want[kept[i]] = p
		}
		stat, df := chiSquare(t, s, logits, want, 30000)
		if crit := chiSquareCritical(df); stat > crit {
			t.Errorf("%+v: chi-square %.1f > %.1f (df %d)", c, stat, crit, df)
		}
	}
}

func TestNewValidation(t *testing.T) {
	nan := float32(math.NaN())
	bad := []struct {
		name  string
		p     Params
		v     int
		param string // the *ParamError's parameter; "" for a vocabulary error
	}{
		{"negative temperature", Params{Temperature: -1}, 10, "temperature"},
		{"NaN temperature", Params{Temperature: nan}, 10, "temperature"},
		{"negative top_k", Params{TopK: -1}, 10, "top_k"},
		{"top_p > 1", Params{TopP: 1.5}, 10, "top_p"},
		{"negative top_p", Params{TopP: -0.1}, 10, "top_p"},
		{"min_p 1", Params{MinP: 1}, 10, "min_p"},
		{"negative repeat penalty", Params{RepeatPenalty: -1}, 10, "repeat_penalty"},
		{"huge repeat window", Params{RepeatLastN: MaxRepeatLastN + 1}, 10, "repeat_last_n"},
		{"infinite presence", Params{PresencePenalty: float32(math.Inf(1))}, 10, "presence_penalty"},
		{"NaN frequency", Params{FrequencyPenalty: nan}, 10, "frequency_penalty"},
		{"too many top logprobs", Params{TopLogprobs: MaxTopLogprobs + 1}, 10, "top_logprobs"},
		{"bias out of vocab", Params{LogitBias: map[int32]float32{10: 1}}, 10, "logit_bias"},
		{"negative bias id", Params{LogitBias: map[int32]float32{-1: 1}}, 10, "logit_bias"},
		{"NaN bias", Params{LogitBias: map[int32]float32{1: nan}}, 10, "logit_bias"},
		{"+Inf bias", Params{LogitBias: map[int32]float32{1: float32(math.Inf(1))}}, 10, "logit_bias"},
		{"huge bias", Params{LogitBias: map[int32]float32{1: 1e30}}, 10, "logit_bias"},
		{"huge frequency penalty", Params{FrequencyPenalty: -1e7}, 10, "frequency_penalty"},
		{"zero vocab", Params{}, 0, ""},
		{"huge vocab", Params{}, MaxVocabSize + 1, ""},
	}
	for _, c := range bad {
		_, err := New(c.p, c.v)
		var pe *ParamError
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case !strings.HasPrefix(err.Error(), "sampler: "):
			t.Errorf("%s: error %q lacks the package prefix", c.name, err)
		case c.param != "" && (!errors.As(err, &pe) || pe.Param != c.param):
			t.Errorf("%s: error %v does not name %q", c.name, err, c.param)
		case c.param == "" && !errors.Is(err, ErrVocabSize):
			t.Errorf("%s: error %v is not ErrVocabSize", c.name, err)
		}
		if c.v == 10 && ((c.p.ValidateFor(10) == nil) != (err == nil)) {
			t.Errorf("%s: ValidateFor disagrees with New", c.name)
		}
	}
	good := []Params{{}, {Temperature: 1, TopP: 1}, {TopP: 0.5, MinP: 0.05, TopK: 40, RepeatPenalty: 1.1},
		{LogitBias: map[int32]float32{9: float32(math.Inf(-1))}}, {TopLogprobs: MaxTopLogprobs}}
	for i, p := range good {
		if _, err := New(p, 10); err != nil {
			t.Errorf("good params %d: %v", i, err)
		}
	}
}

func TestSampleAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	const vocab = 32000
	logits := randLogits(r, vocab, 3)
	for _, p := range []Params{
		{Temperature: 1},
		{},
		{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, PresencePenalty: 0.2,
			FrequencyPenalty: 0.1, LogitBias: map[int32]float32{5: -1}, TopLogprobs: 5, Seed: 3},
		{Temperature: 0.7, TopP: 0.9},
	} {
		s, err := New(p, vocab)
		if err != nil {
			t.Fatal(err)
		}
		var tok int32
		allocs := testing.AllocsPerRun(50, func() {
			tok, _ = s.Sample(logits)
			s.Accept(tok)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per Sample+Accept", p, allocs)
		}
	}
}

func benchSample(b *testing.B, vocab int, p Params) {
	r := rand.New(rand.NewPCG(17, 18))
	logits := randLogits(r, vocab, 3)
	s, err := New(p, vocab)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		id, _ := s.Sample(logits)
		s.Accept(id)
	}
}

func BenchmarkSample(b *testing.B) {
	for _, v := range []int{32000, 128256} {
		cases := []struct {
			name string
			p    Params
		}{
			{"greedy", Params{}},
			{"paper_T1", Params{Temperature: 1, TopP: 1}},
			{"topk40", Params{Temperature: 0.8, TopK: 40}},
			{"topp0.9", Params{Temperature: 0.8, TopP: 0.9}},
			{"llamacpp_default", Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1}},
		}
		for _, c := range cases {
			b.Run(c.name+"/v"+strconv.Itoa(v), func(b *testing.B) { benchSample(b, v, c.p) })
		}
	}
}

// BenchmarkTopPFullSort is the naive top-p the sampler avoids: sort the whole vocabulary by logit, then walk
// the cumulative softmax. Compare with BenchmarkSample/topp0.9 at the same vocabulary size.
func BenchmarkTopPFullSort(b *testing.B) {
	for _, v := range []int{32000, 128256} {
		b.Run("v"+strconv.Itoa(v), func(b *testing.B) {
			r := rand.New(rand.NewPCG(17, 18))
			logits := randLogits(r, v, 3)
			ids := make([]int32, v)
			for b.Loop() {
				for i := range ids {
					ids[i] = int32(i)
				}
				slices.SortFunc(ids, func(a, c int32) int {
					if logits[a] != logits[c] {
						if logits[a] > logits[c] {
							return -1
						}
						return 1
					}
					return int(a - c)
				})
				m := float64(logits[ids[0]])
				var total float64
				for _, id := range ids {
					total += math.Exp(float64(logits[id]) - m)
				}
				var cum float64
				for _, id := range ids {
					cum += math.Exp(float64(logits[id]) - m)
					if cum >= 0.9*total {
						break
					}
				}
			}
		})
	}
}
