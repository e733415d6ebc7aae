package evalstats

import (
	"fmt"
	"strings"
	"unicode"
)

// RougeScore is one ROUGE-L score.
type RougeScore struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F         float64 `json:"f"`
}

// RougeTokens tokenizes as rouge-score's tokenize(text, use_stemmer=False): lowercase, runs of characters
// other than a-z0-9 become separators. "Don't stop!" -> [don t stop]. Lowercasing is Python's str.lower: Go's
// simple mapping plus the one unconditional full mapping of SpecialCasing.txt, U+0130 (İ) -> "i\u0307", which
// splits "İstanbul" into [i stanbul] as rouge-score does.
func RougeTokens(text string) []string {
	text = strings.ToLower(strings.ReplaceAll(text, "\u0130", "i\u0307"))
	return strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// UnicodeTokens tokenizes text of any script: lowercase runs of letters and digits, with each Han, Hiragana,
// Katakana or Hangul character a token of its own (these scripts do not separate words with spaces).
func UnicodeTokens(text string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			flush()
			toks = append(toks, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			cur.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return toks
}

// RougeL scores a prediction against a reference with rouge-score's rougeL (see the package doc).
func RougeL(reference, prediction string) RougeScore {
	return RougeLTokens(RougeTokens(reference), RougeTokens(prediction))
}

// RougeLTokens is ROUGE-L of token lists: LCS length over the prediction's length (precision) and over the
// reference's (recall), and their harmonic mean. Either list empty scores 0.
func RougeLTokens(reference, prediction []string) RougeScore {
	if len(reference) == 0 || len(prediction) == 0 {
		return RougeScore{}
	}
	lcs := float64(LCSLength(reference, prediction))
	p := lcs / float64(len(prediction))
	r := lcs / float64(len(reference))
	s := RougeScore{Precision: p, Recall: r}
	if p+r > 0 {
		s.F = 2 * p * r / (p + r)
	}
	return s
}

// LCSLength is the length of the longest common subsequence of a and b (dynamic programming in two rows).
func LCSLength(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			if a[i] == b[j] {
				cur[j+1] = prev[j] + 1
			} else {
				cur[j+1] = max(cur[j], prev[j+1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Buckets are the reference-length buckets of Fig. 6, in order.
var Buckets = []string{"0-2", "3-5", "6-10", ">10"}

// BucketOf names the Fig. 6 bucket of a reference of n tokens.
func BucketOf(n int) string {
	switch {
	case n <= 2:
		return "0-2"
	case n <= 5:
		return "3-5"
	case n <= 10:
		return "6-10"
	}
	return ">10"
}

// Bucket is the mean ROUGE-L F-measure of the items whose reference length falls in one bucket.
type Bucket struct {
	Bucket string `json:"bucket"`
	N      int    `json:"n"`
	// MeanF is the mean F-measure; 0 when N is 0.
	MeanF float64 `json:"mean_f"`
}

// Tokenizer turns text into ROUGE tokens: RougeTokens or UnicodeTokens.
type Tokenizer func(string) []string

// RougeLBuckets scores predictions[i] against references[i] and averages the F-measures per bucket of the
// reference's length in tokens; all four buckets are returned, empty ones with N 0. A nil tokenize means
// RougeTokens. It also returns the overall mean and each item's score.
func RougeLBuckets(references, predictions []string, tokenize Tokenizer) (buckets []Bucket, mean float64, items []RougeScore, err error) {
	if len(references) != len(predictions) {
		return nil, 0, nil, fmt.Errorf("evalstats: %d references for %d predictions", len(references), len(predictions))
	}
	if tokenize == nil {
		tokenize = RougeTokens
	}
	buckets = make([]Bucket, len(Buckets))
	index := map[string]int{}
	for i, b := range Buckets {
		buckets[i].Bucket = b
		index[b] = i
	}
	items = make([]RougeScore, len(references))
	for i := range references {
		ref := tokenize(references[i])
		s := RougeLTokens(ref, tokenize(predictions[i]))
		items[i] = s
		b := &buckets[index[BucketOf(len(ref))]]
		b.N++
		b.MeanF += s.F
		mean += s.F
	}
	for i := range buckets {
		if buckets[i].N > 0 {
			buckets[i].MeanF /= float64(buckets[i].N)
		}
	}
	if len(references) > 0 {
		mean /= float64(len(references))
	}
	return buckets, mean, items, nil
}
