package sampler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Limits on request-controlled sizes, so that no buffer is sized by an untrusted count.
const (
	// MaxTopLogprobs is the largest Params.TopLogprobs accepted (OpenAI's limit).
	MaxTopLogprobs = 20
	// MaxRepeatLastN is the largest Params.RepeatLastN accepted.
	MaxRepeatLastN = 1 << 16
	// DefaultRepeatLastN is the repetition-penalty window used when Params.RepeatLastN is 0.
	DefaultRepeatLastN = 64
	// MaxVocabSize is the largest vocabulary New accepts.
	MaxVocabSize = 1 << 22
	// MaxAbsBias bounds the magnitude of logit biases (besides -Inf, which bans a token) and of the presence
	// and frequency penalties, so that no adjusted logit overflows.
	MaxAbsBias = 1e6
)

// pcgStream is the second word of the PCG state; the first is Params.Seed.
const pcgStream = 0x9e3779b97f4a7c15

// Params are the decoding parameters of one sequence. The zero value of every field means "off", so
// Params{Temperature: 1} is plain softmax sampling (the paper's decoding) and Params{} is greedy decoding.
type Params struct {
	// Temperature divides the logits of the tokens that survive filtering before the final draw.
	// 0 means greedy: the highest-scoring token after bias and penalties, ties to the lowest id.
	Temperature float32
	// TopK keeps only the K highest-scoring tokens (ties broken toward the lower id); 0 = off.
	TopK int
	// TopP keeps the smallest prefix of tokens, by decreasing probability, whose probability mass reaches
	// TopP (probabilities at temperature 1, after bias and penalties, like llama.cpp); 0 or 1 = off.
	TopP float32
	// MinP keeps tokens whose probability is at least MinP times the most likely token's; 0 = off.
	MinP float32
	// RepeatPenalty divides positive logits (multiplies negative ones) of tokens seen among the last
	// RepeatLastN accepted tokens (CTRL / llama.cpp rule); 0 or 1 = off.
	RepeatPenalty float32
	// RepeatLastN is the window of RepeatPenalty in accepted tokens; 0 means DefaultRepeatLastN.
	RepeatLastN int
	// PresencePenalty is subtracted from the logit of every token accepted at least once (OpenAI rule,
	// over all accepted tokens, not only the window).
	PresencePenalty float32
	// FrequencyPenalty times the number of times a token was accepted is subtracted from its logit
	// (OpenAI rule, over all accepted tokens).
	FrequencyPenalty float32
	// LogitBias is added to the logits of the given token ids before anything else; -Inf bans a token.
	LogitBias map[int32]float32
	// Seed seeds the sampler's own PCG source; the same Seed and the same logits reproduce the same tokens.
	Seed uint64
	// TopLogprobs is how many of the most likely alternatives Sample records (see Sampler.TopLogprobs);
	// at most MaxTopLogprobs.
	TopLogprobs int
	// JSON, when not nil, constrains the sequence to one JSON object (JSON mode): after bias and penalties,
	// every token whose text would make the output so far invalid JSON gets -Inf, and end-of-generation
	// tokens are allowed only once the object is closed (and are then the only choice). Tokens must be fed
	// back with Accept. See MaxJSONDepth and MaxJSONSpace for its limits.
	JSON *JSONVocab
}

// ParamError reports a parameter out of range. Param names it as the OpenAI and Ollama APIs spell it
// ("min_p", "logit_bias", "stop"), so a server can point at the request field.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return "sampler: " + e.Msg }

func paramErr(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// Validate reports the first parameter out of range as a *ParamError. It is what New checks, but for the
// vocabulary (see ValidateFor).
func (p Params) Validate() error {
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return paramErr("temperature", "temperature %v must be finite and >= 0", p.Temperature)
	case p.TopK < 0:
		return paramErr("top_k", "top_k %d must be >= 0", p.TopK)
	case !finite(p.TopP) || p.TopP < 0 || p.TopP > 1:
		return paramErr("top_p", "top_p %v must be in (0, 1] (0 means 1)", p.TopP)
	case !finite(p.MinP) || p.MinP < 0 || p.MinP >= 1:
		return paramErr("min_p", "min_p %v must be in [0, 1)", p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty < 0:
		return paramErr("repeat_penalty", "repeat_penalty %v must be finite and > 0 (0 means 1)", p.RepeatPenalty)
	case p.RepeatLastN < 0 || p.RepeatLastN > MaxRepeatLastN:
		return paramErr("repeat_last_n", "repeat_last_n %d must be in [0, %d]", p.RepeatLastN, MaxRepeatLastN)
	case !finite(p.PresencePenalty) || math.Abs(float64(p.PresencePenalty)) > MaxAbsBias:
		return paramErr("presence_penalty", "presence_penalty %v must be in [-%g, %g]", p.PresencePenalty, MaxAbsBias, MaxAbsBias)
	case !finite(p.FrequencyPenalty) || math.Abs(float64(p.FrequencyPenalty)) > MaxAbsBias:
		return paramErr("frequency_penalty", "frequency_penalty %v must be in [-%g, %g]", p.FrequencyPenalty, MaxAbsBias, MaxAbsBias)
	case p.TopLogprobs < 0 || p.TopLogprobs > MaxTopLogprobs:
		return paramErr("top_logprobs", "top_logprobs %d must be in [0, %d]", p.TopLogprobs, MaxTopLogprobs)
	}
	for id, b := range p.LogitBias {
		if !math.IsInf(float64(b), -1) && !(math.Abs(float64(b)) <= MaxAbsBias) {
			return paramErr("logit_bias", "logit_bias for token %d is %v (must be in [-%g, %g] or -Inf)", id, b, MaxAbsBias, MaxAbsBias)
		}
	}
	return nil
}

// ValidateFor is Validate plus the checks that need the vocabulary: every logit_bias token id must be in
// [0, vocabSize). It is exactly what New checks of p.
func (p Params) ValidateFor(vocabSize int) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if vocabSize <= 0 || vocabSize > MaxVocabSize {
		return fmt.Errorf("%w: vocabulary size %d (want 1..%d)", ErrVocabSize, vocabSize, MaxVocabSize)
	}
	for id := range p.LogitBias {
		if id < 0 || int(id) >= vocabSize {
			return fmt.Errorf("%w: %w", ErrVocabSize, paramErr("logit_bias", "logit_bias token %d is not in the vocabulary of %d tokens", id, vocabSize))
		}
	}
	return nil
}

// ErrVocabSize is returned (wrapped) by New for a vocabulary size out of range or a logit bias on a
// token outside the vocabulary.
var ErrVocabSize = errors.New("sampler: token id or vocabulary size out of range")

// Logprob is a token id with its log-probability.
type Logprob struct {
	ID      int32
	Logprob float32
}

// Sampler draws the tokens of one sequence. It is not safe for concurrent use; use one per sequence.
//
// Logprobs (the value returned by Sample and TopLogprobs) are those of the raw model distribution,
// log_softmax(logits) before bias, penalties, filtering and temperature, as vLLM returns by default: they
// describe what the model predicted, independent of how the token was chosen.
type Sampler struct {
	p         Params
	vocab     int
	rng       *rand.Rand
	greedy    bool
	penalize  bool
	repeatPen float32

	biasIDs  []int32   // (nbias) token ids of LogitBias, sorted
	biasVals []float32 // (nbias) matching biases

	work  []float32 // (vocab) logits after bias and penalties
	probs []float64 // (vocab) unnormalized probabilities of the candidates, by token id
	cand  []int32   // (vocab) candidate token ids

	maxLogit float64 // max of work in the last draw
	e1Valid  bool    // probs holds exp(work-maxLogit) for the top-k candidates
	e1Full   bool    // ... for the whole vocabulary, and e1Total is their sum
	e1Total  float64

	counts   []int32  // (vocab) times each token was accepted
	distinct []int32  // tokens with counts > 0, in first-accept order
	ring     []int32  // (RepeatLastN) last accepted tokens, circular
	ringLen  int      // valid entries of ring
	ringPos  int      // next write position in ring
	stamp    []uint32 // (vocab) dedup marks for the repetition penalty
	stampGen uint32

	top []Logprob // (TopLogprobs) alternatives of the last Sample, best first

	json *jsonConstraint // JSON mode, or nil
}

// New returns a Sampler for a model with vocabSize logits per step. Every buffer is allocated here, sized by
// vocabSize and the validated params; Sample allocates nothing.
func New(p Params, vocabSize int) (*Sampler, error) {
	if err := p.ValidateFor(vocabSize); err != nil {
		return nil, err
	}
	if p.TopLogprobs > vocabSize {
		p.TopLogprobs = vocabSize
	}
	s := &Sampler{p: p, vocab: vocabSize}
	for id := range p.LogitBias {
		s.biasIDs = append(s.biasIDs, id)
	}
	slices.Sort(s.biasIDs)
	s.biasVals = make([]float32, len(s.biasIDs))
	for i, id := range s.biasIDs {
		s.biasVals[i] = p.LogitBias[id]
	}
	s.greedy = p.Temperature == 0
	s.repeatPen = p.RepeatPenalty
	if s.repeatPen == 0 {
		s.repeatPen = 1
	}
	n := p.RepeatLastN
	if n == 0 {
		n = DefaultRepeatLastN
	}
	s.penalize = s.repeatPen != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
	if s.penalize {
		s.counts = make([]int32, vocabSize)
		s.distinct = make([]int32, 0, vocabSize)
		if s.repeatPen != 1 {
			s.ring = make([]int32, n)
			s.stamp = make([]uint32, vocabSize)
		}
	}
	s.work = make([]float32, vocabSize)
	s.probs = make([]float64, vocabSize)
	s.cand = make([]int32, vocabSize)
	s.top = make([]Logprob, 0, p.TopLogprobs)
	s.rng = rand.New(rand.NewPCG(p.Seed, pcgStream))
	if p.JSON != nil {
		s.json = newJSONConstraint(p.JSON)
	}
	return s, nil
}

// Accept records a token of the sequence for the penalties and JSON mode. Call it for each generated token
// (and, if the prompt should count for the penalties, for each prompt token: not in JSON mode, whose
// object starts with the first generated token). Ids outside the vocabulary are ignored. It allocates
// nothing once the set of distinct tokens stops growing.
func (s *Sampler) Accept(id int32) {
	if s.json != nil {
		s.json.accept(id)
	}
	if !s.penalize || id < 0 || int(id) >= s.vocab {
		return
	}
	if s.counts[id] == 0 {
		s.distinct = append(s.distinct, id)
	}
	if s.counts[id] < math.MaxInt32 {
		s.counts[id]++
	}
	if len(s.ring) > 0 {
		s.ring[s.ringPos] = id
		s.ringPos++
		if s.ringPos == len(s.ring) {
			s.ringPos = 0
		}
		if s.ringLen < len(s.ring) {
			s.ringLen++
		}
	}
}

// Sample picks the next token from logits (one row of VocabSize values, not modified) and returns it with
// its log-probability under the raw model distribution. The pipeline follows llama.cpp's default chain:
// logit bias, penalties, (JSON mode's mask), top-k, top-p, min-p, temperature, then one uniform draw from the seeded source,
// inverted through the cumulative distribution of the kept tokens; at temperature 0 it returns the argmax
// after bias and penalties (ties to the lowest id) and draws nothing. NaN logits count as -Inf; if no token
// has a finite logit, token 0 is returned with logprob -Inf. A row shorter than VocabSize is a programming
// error: the missing logits count as -Inf.
func (s *Sampler) Sample(logits []float32) (int32, float32) {
	work := s.work
	n := copy(work, logits)
	for i := n; i < len(work); i++ {
		work[i] = float32(math.Inf(-1))
	}
	for i, v := range work[:n] {
		if !(v <= math.MaxFloat32) { // NaN or +Inf
			if v != v {
				work[i] = float32(math.Inf(-1))
			} else {
				work[i] = math.MaxFloat32
			}
		}
	}
	if s.p.TopLogprobs > 0 {
		s.topRaw(work)
	}
	// The raw distribution's normalizer: computed here when work is about to change (or for greedy, which
	// needs no exponentials otherwise); else shared with the draw's exp pass when it covers the vocabulary.
	modified := len(s.biasIDs) > 0 || s.penalize && len(s.distinct) > 0 || s.json != nil
	var rawLSE float64
	haveLSE := false
	if modified || s.greedy {
		rawLSE = logSumExp(work)
		haveLSE = true
	}
	for i, id := range s.biasIDs {
		work[id] += s.biasVals[i]
	}
	if s.penalize {
		s.applyPenalties(work)
	}
	if s.json != nil {
		s.json.mask(work)
	}

	var id int32
	s.e1Full = false
	if s.greedy {
		id = argmax(work)
	} else {
		id = s.draw(work)
	}
	if !haveLSE {
		if s.e1Full { // work is still the raw logits and e1 covered all of them
			rawLSE = s.maxLogit + math.Log(s.e1Total)
		} else {
			rawLSE = logSumExp(work)
		}
	}
	for i := range s.top {
		s.top[i].Logprob = float32(float64(s.top[i].Logprob) - rawLSE)
	}
	lp := float32(math.Inf(-1))
	if int(id) < n && !math.IsInf(rawLSE, -1) {
		if v := min(logits[id], math.MaxFloat32); v == v {
			lp = float32(float64(v) - rawLSE)
		}
	}
	return id, lp
}

// TopLogprobs returns the Params.TopLogprobs most likely tokens of the last Sample's raw distribution, best
// first (ties to the lower id). The slice is owned by the Sampler and overwritten by the next Sample.
func (s *Sampler) TopLogprobs() []Logprob { return s.top }

// applyPenalties applies the repetition, frequency and presence penalties in place.
func (s *Sampler) applyPenalties(work []float32) {
	if len(s.ring) > 0 && s.ringLen > 0 {
		s.stampGen++
		if s.stampGen == 0 { // wrapped: clear the marks once every 2^32 calls
			clear(s.stamp)
			s.stampGen = 1
		}
		for _, id := range s.ring[:s.ringLen] {
			if s.stamp[id] == s.stampGen {
				continue
			}
			s.stamp[id] = s.stampGen
			if work[id] <= 0 {
				work[id] *= s.repeatPen
			} else {
				work[id] /= s.repeatPen
			}
		}
	}
	if s.p.FrequencyPenalty != 0 || s.p.PresencePenalty != 0 {
		for _, id := range s.distinct {
			work[id] -= float32(s.counts[id])*s.p.FrequencyPenalty + s.p.PresencePenalty
		}
	}
}

// filter fills s.cand[:k] with the ids that survive top-k, top-p and min-p, in no particular order, and
// returns k >= 1. maxLogit is the (finite) maximum of work. Top-p uses exp(work - maxLogit) of the top-k
// candidates, stored in s.probs by id (s.e1Valid), and a mass quickselect: nothing is sorted.
func (s *Sampler) filter(work []float32, maxLogit float64) int {
	v := len(work)
	cand := s.cand[:v]
	k := v
	if s.p.TopK > 0 && s.p.TopK < v && s.p.TopK <= topKHeapMax {
		k = s.p.TopK
		s.selectTopHeap(work, k)
	} else {
		for i := range cand {
			cand[i] = int32(i)
		}
		if s.p.TopK > 0 && s.p.TopK < v {
			k = s.p.TopK
			s.selectTop(0, v, k)
		}
	}
	if s.p.TopP > 0 && s.p.TopP < 1 {
		var total float64
		for _, id := range cand[:k] {
			e := expNeg(float64(work[id]) - maxLogit)
			s.probs[id] = e
			total += e
		}
		s.e1Valid = true
		if k == v {
			s.e1Full, s.e1Total = true, total
		}
		k = s.selectMass(0, k, float64(s.p.TopP)*total)
	}
	if s.p.MinP > 0 {
		// p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p); the maximum itself always stays.
		minLogit := maxLogit + math.Log(float64(s.p.MinP))
		j := 0
		for _, id := range cand[:k] {
			if float64(work[id]) >= minLogit {
				cand[j] = id
				j++
			}
		}
		k = max(j, 1)
	}
	return k
}

// draw samples from the filtered candidates at the configured temperature.
func (s *Sampler) draw(work []float32) int32 {
	m := float32(math.Inf(-1))
	for _, v := range work {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		return argmax(work)
	}
	maxLogit := float64(m)
	s.maxLogit = maxLogit
	s.e1Valid = false
	k := s.filter(work, maxLogit)
	cand := s.cand[:k]
	if k == 1 {
		return cand[0]
	}
	probs := s.probs
	var total float64
	if s.p.Temperature == 1 && s.e1Valid {
		for _, id := range cand {
			total += probs[id]
		}
	} else {
		invT := 1 / float64(s.p.Temperature)
		for _, id := range cand {
			e := 1.0 // the maximum; also avoids 0 * Inf at a tiny temperature
			if d := float64(work[id]) - maxLogit; d != 0 {
				e = expNeg(d * invT)
			}
			probs[id] = e
			total += e
		}
		if s.p.Temperature == 1 && k == len(work) {
			s.e1Full, s.e1Total = true, total
		}
	}
	u := s.rng.Float64() * total
	var cum float64
	last := cand[0]
	for _, id := range cand {
		p := probs[id]
		if p == 0 {
			continue
		}
		cum += p
		last = id
		if u < cum {
			return id
		}
	}
	return last // rounding: u landed at the very end
}

// topRaw records the TopLogprobs best tokens of the raw logits (already NaN-free) in s.top, with their raw
// logits in Logprob until Sample subtracts the normalizer.
func (s *Sampler) topRaw(raw []float32) {
	n := s.p.TopLogprobs
	top := s.top[:0]
	// Insertion into a small sorted list: n <= MaxTopLogprobs, O(V) with a cheap rejection test.
	for i, v := range raw {
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		j := len(top)
		if j < n {
			top = append(top, Logprob{})
		} else {
			j = n - 1
		}
		for j > 0 && v > top[j-1].Logprob {
			top[j] = top[j-1]
			j--
		}
		top[j] = Logprob{ID: int32(i), Logprob: v}
	}
	s.top = top
}

// logSumExp returns log(sum(exp(x))), -Inf when every value is -Inf.
func logSumExp(x []float32) float64 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	if math.IsInf(float64(m), -1) {
		return math.Inf(-1)
	}
	mf := float64(m)
	var sum float64
	for _, v := range x {
		sum += expNeg(float64(v) - mf)
	}
	return mf + math.Log(sum)
}

// argmax returns the index of the largest value, the lowest index among ties; 0 if none is > -Inf.
func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// before reports whether token a ranks before token b: higher value, or equal value and lower id.
func before(vals []float32, a, b int32) bool {
	va, vb := vals[a], vals[b]
	if va != vb {
		return va > vb
	}
	return a < b
}

// partition partitions s.cand[lo:hi] (hi-lo >= 2) around a median-of-three pivot and returns the pivot's
// final index p: s.cand[lo:p] rank before it, s.cand[p+1:hi] after it.
func (s *Sampler) partition(lo, hi int) int {
	ids, vals := s.cand, s.work
	a, b, c := lo, lo+(hi-lo)/2, hi-1
	if before(vals, ids[b], ids[a]) {
		a, b = b, a
	}
	if before(vals, ids[c], ids[b]) {
		b = c
		if before(vals, ids[b], ids[a]) {
			b = a
		}
	}
	ids[b], ids[hi-1] = ids[hi-1], ids[b]
	pivot := ids[hi-1]
	store := lo
	for i := lo; i < hi-1; i++ {
		if before(vals, ids[i], pivot) {
			ids[i], ids[store] = ids[store], ids[i]
			store++
		}
	}
	ids[store], ids[hi-1] = ids[hi-1], ids[store]
	return store
}

// selectTop rearranges s.cand[lo:hi] so that its first k entries are the k best-ranked ones (in no
// particular order): quickselect, O(hi-lo) on average.
func (s *Sampler) selectTop(lo, hi, k int) {
	target := lo + k // first index that must hold a worse-ranked element
	for hi-lo > 1 && target > lo && target < hi {
		p := s.partition(lo, hi)
		switch {
		case p == target || p+1 == target:
			return
		case p > target:
			hi = p
		default:
			lo = p + 1
		}
	}
}

// topKHeapMax is the largest top-k served by a heap scan; larger ones use quickselect.
const topKHeapMax = 512

// selectTopHeap puts the k best-ranked token ids of work into s.cand[:k] (in no particular order) with one
// scan and a min-heap of the best so far: most tokens are rejected by a single comparison with the root.
func (s *Sampler) selectTopHeap(work []float32, k int) {
	h := s.cand[:k]
	for i := range h {
		h[i] = int32(i)
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(work, h, i)
	}
	for i := k; i < len(work); i++ {
		// Token i comes after every id in the heap, so on a tie with the root it ranks worse.
		if work[i] <= work[h[0]] {
			continue
		}
		h[0] = int32(i)
		siftDown(work, h, 0)
	}
}

// siftDown restores the heap order of h (the worst-ranked token at the root) below index i.
func siftDown(vals []float32, h []int32, i int) {
	for {
		worst := i
		if l := 2*i + 1; l < len(h) && before(vals, h[worst], h[l]) {
			worst = l
		}
		if r := 2*i + 2; r < len(h) && before(vals, h[worst], h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// selectMass rearranges s.cand[lo:hi] so that its first n entries are the smallest set of best-ranked
// tokens whose mass (s.probs by id) reaches target, and returns n >= 1: top-p without sorting, O(hi-lo)
// on average.
func (s *Sampler) selectMass(lo, hi int, target float64) int {
	ids, probs := s.cand, s.probs
	base := lo
	for hi-lo > 1 {
		p := s.partition(lo, hi)
		var upper float64
		for _, id := range ids[lo:p] {
			upper += probs[id]
		}
		if upper >= target { // the answer is a prefix of the better part
			hi = p
			continue
		}
		target -= upper + probs[ids[p]]
		if target <= 0 {
			return p + 1 - base
		}
		lo = p + 1
	}
	return max(hi-base, 1)
}
