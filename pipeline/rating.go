package pipeline

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The rating prompts, in the spirit of Vicuna's GPT-4 reviewer (FastChat's original review prompt, which the
// paper's Fig. 4 used through Vicuna's evaluation) and of the paper's 1-10 feedback: the same criteria
// (helpfulness, relevance, accuracy, level of detail), the score alone on the first line so it can be parsed,
// then the explanation. RatingSystem is the system message of both.
const (
	RatingSystem = "You are a helpful and precise assistant for checking the quality of the answer."

	// RatingSingle rates one answer; %[1]s is the question, %[2]s the answer.
	RatingSingle = "[Question]\n%[1]s\n\n" +
		"[The Start of Assistant's Answer]\n%[2]s\n[The End of Assistant's Answer]\n\n" +
		"[System]\nWe would like to request your feedback on the performance of an AI assistant in response to the " +
		"user question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of " +
		"the response. The assistant receives an overall score on a scale of 1 to 10, where a higher score " +
		"indicates better overall performance.\nPlease first output a single line containing only the score, a " +
		"number from 1 to 10. In the subsequent line, please provide a comprehensive explanation of your " +
		"evaluation, avoiding any potential bias."

	// RatingPair rates two answers; %[1]s is the question, %[2]s and %[3]s the answers of Assistant 1 and 2.
	RatingPair = "[Question]\n%[1]s\n\n" +
		"[The Start of Assistant 1's Answer]\n%[2]s\n[The End of Assistant 1's Answer]\n\n" +
		"[The Start of Assistant 2's Answer]\n%[3]s\n[The End of Assistant 2's Answer]\n\n" +
		"[System]\nWe would like to request your feedback on the performance of two AI assistants in response to " +
		"the user question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details " +
		"of their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score " +
		"indicates better overall performance.\nPlease first output a single line containing only two values " +
		"indicating the scores for Assistant 1 and 2, respectively. The two values are separated by a space. In " +
		"the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any " +
		"potential bias and ensuring that the order in which the responses were presented does not affect your " +
		"judgment."
)

// Rating scale bounds: scores outside are parse failures.
const (
	minScore = 0
	maxScore = 10
)

var (
	number = `(\d+(?:[.,]\d+)?)`
	// "8/10", "8 out of 10", "7 von 10", "7 sur 10", "7 de 10", "8／10", "8 of 10".
	outOf = regexp.MustCompile(`(?i)` + number + `\s*(?:/|／|out\s+of|of|von|sur|de|su|из)\s*10\b`)
	// A label before a number: "Score: 8", "Rating - 7", "评分：8", "Note : 8", "Puntuación: 9".
	labelled = regexp.MustCompile(`(?i)(?:score|rating|rated|grade|rate it|give it|give this|overall|评分|分数|得分|打分|note|puntuación|puntaje|bewertung|punteggio|valutazione|оценка|점수)\W{0,4}(?:a|an|of|is|:|：)?\s*(?:a\s+)?` + number)
	// "8分", "8 points", "8점".
	points     = regexp.MustCompile(`(?i)` + number + `\s*(?:分|points?|pts|점|баллов|балла|punti|puntos|punkte)`)
	anyNumber  = regexp.MustCompile(number)
	markdownRe = regexp.MustCompile("[*_#`>]+")
	// "Assistant 1: 8" in a pair judgment.
	assistantScore = regexp.MustCompile(`(?i)assistant\s*([12])\s*(?:'s)?\s*(?:score|rating)?\s*[:：=\-]?\s*` + number)
)

var cjkDigits = map[rune]string{'零': "0", '一': "1", '二': "2", '两': "2", '三': "3", '四': "4", '五': "5", '六': "6", '七': "7", '八': "8", '九': "9", '十': "10"}

// normalize maps full-width digits and punctuation to ASCII and single Chinese numerals (一..十) followed by 分
// to digits, so "评分：８分" and "八分" parse like "评分: 8分".
func normalize(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		case r == '．':
			b.WriteByte('.')
		case cjkDigits[r] != "" && i+1 < len(rs) && (rs[i+1] == '分' || rs[i+1] == '点'):
			b.WriteString(cjkDigits[r])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func parseNumber(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	return v, err == nil
}

// uniqueScores collects the numbers of the first capture group of matches, in range, without repeats.
func uniqueScores(matches [][]string) []float64 {
	var out []float64
	for _, m := range matches {
		v, ok := parseNumber(m[1])
		if !ok || v < minScore || v > maxScore {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == v
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// ParseRating reads a 1-10 score from a rater's text. It tries, in order: the first non-empty line when it
// holds exactly one number (after a label such as "Score:" and without a "/10"); "N/10" or "N out of 10" forms;
// a label followed by a number ("Rating: 7", "评分：8"); "N points"/"N分". Each step must find one value (or
// the same value repeated): two different candidates ("7 or 8", "Answer 1: 6/10, Answer 2: 9/10") are
// ambiguous and fail, as does text without any ("N/A"). The error says why.
func ParseRating(text string) (float64, error) {
	s := normalize(text)
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("empty rating")
	}
	if v, ok := firstLineScore(s); ok {
		return v, nil
	}
	for _, re := range []*regexp.Regexp{outOf, labelled, points} {
		vals := uniqueScores(re.FindAllStringSubmatch(s, -1))
		switch len(vals) {
		case 0:
			continue
		case 1:
			return vals[0], nil
		default:
			return 0, fmt.Errorf("ambiguous rating: several scores %v", vals)
		}
	}
	nums := anyNumber.FindAllString(s, -1)
	if len(nums) == 0 {
		return 0, fmt.Errorf("no rating found")
	}
	return 0, fmt.Errorf("no rating found (numbers %v are not labelled as a score)", nums)
}

// firstLineScore accepts a first line that is one number in range, optionally labelled and optionally "/10".
func firstLineScore(s string) (float64, bool) {
	line := firstLine(s)
	line = strings.TrimSpace(markdownRe.ReplaceAllString(line, ""))
	// Drop a leading label ("Score:", "Rating -") and a trailing "/10", ".", "分".
	if i := strings.IndexAny(line, ":："); i >= 0 && i < 24 {
		_, w := utf8.DecodeRuneInString(line[i:])
		line = strings.TrimSpace(line[i+w:])
	}
	line = strings.TrimSpace(strings.TrimRight(line, ".。!"))
	for _, suf := range []string{"/10", "／10", "分", " points", " out of 10"} {
		line = strings.TrimSpace(strings.TrimSuffix(line, suf))
	}
	v, ok := parseNumber(line)
	if !ok || v < minScore || v > maxScore {
		return 0, false
	}
	return v, true
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	return ""
}

// ParsePairRating reads the two scores of a pair judgment: the first non-empty line with exactly two numbers
// in range (Vicuna's format "8 7", also "8, 7", "8/10 7/10"), else "Assistant 1: 8 ... Assistant 2: 7".
func ParsePairRating(text string) (float64, float64, error) {
	s := normalize(text)
	line := markdownRe.ReplaceAllString(firstLine(s), "")
	line = strings.ReplaceAll(strings.ReplaceAll(line, "/10", " "), "／10", " ")
	if !strings.Contains(strings.ToLower(line), "assistant") {
		var vals []float64
		for _, m := range anyNumber.FindAllString(line, -1) {
			if v, ok := parseNumber(m); ok {
				vals = append(vals, v)
			}
		}
		if len(vals) == 2 && inRange(vals[0]) && inRange(vals[1]) {
			return vals[0], vals[1], nil
		}
	}
	var a, b []float64
	for _, m := range assistantScore.FindAllStringSubmatch(s, -1) {
		v, ok := parseNumber(m[2])
		if !ok || !inRange(v) {
			continue
		}
		if m[1] == "1" {
			a = append(a, v)
		} else {
			b = append(b, v)
		}
	}
	if len(a) >= 1 && len(b) >= 1 {
		return a[0], b[0], nil
	}
	return 0, 0, fmt.Errorf("no pair of scores found")
}

func inRange(v float64) bool { return v >= minScore && v <= maxScore }
