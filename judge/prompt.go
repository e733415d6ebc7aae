package judge

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// SystemPrompt is the system message of Vicuna's GPT-4 reviewer.
const SystemPrompt = "You are a helpful and precise assistant for checking the quality of the answer."

// PairPrompt is the pairwise two-score prompt of Vicuna's GPT-4 reviewer ("general" reviewer, FastChat's
// table/prompt.jsonl), with %[1]s the question, %[2]s and %[3]s the answers of Assistant 1 and 2.
const PairPrompt = `[Question]
%[1]s

[The Start of Assistant 1's Answer]
%[2]s

[The End of Assistant 1's Answer]

[The Start of Assistant 2's Answer]
%[3]s

[The End of Assistant 2's Answer]

[System]
We would like to request your feedback on the performance of two AI assistants in response to the user question displayed above.
Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.
Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses were presented does not affect your judgment.`

// FormatPair fills PairPrompt.
func FormatPair(question, answer1, answer2 string) string {
	return fmt.Sprintf(PairPrompt, question, answer1, answer2)
}

// MaxScore is the top of the judge's scale; scores outside [0, MaxScore] are a parse failure.
const MaxScore = 10

// ParseError says why a judge's output gave no scores.
type ParseError struct {
	Reason string
}

func (e *ParseError) Error() string { return "judge: unparseable scores: " + e.Reason }

var (
	number         = regexp.MustCompile(`[-+]?\d+(?:\.\d+)?`)
	outOfTen       = regexp.MustCompile(`(\d+(?:\.\d+)?)\s*/\s*10\b`)
	labelled1      = regexp.MustCompile(`(?i)assistant\s*1\s*(?:'s)?\s*(?:score|rating)?\s*[:=\-]?\s*(?:score|rating)?\s*[:=]?\s*(\d+(?:\.\d+)?)`)
	labelled2      = regexp.MustCompile(`(?i)assistant\s*2\s*(?:'s)?\s*(?:score|rating)?\s*[:=\-]?\s*(?:score|rating)?\s*[:=]?\s*(\d+(?:\.\d+)?)`)
	assistantLabel = regexp.MustCompile(`(?i)assistant\s*[12]`)
	markdownish    = strings.NewReplacer("*", "", "`", "", "#", "", "[", " ", "]", " ", "(", " ", ")", " ")
)

// ParseScores reads the two scores of a pairwise judgment. As Vicuna's parser, it reads the first line (the
// first non-empty one, after markdown emphasis is removed), with commas, "and", "/10" and labels tolerated:
// "8 7", "8, 7", "8/10 7/10", "Scores: 8 and 7", "**8 7**". When the first line has no such pair, labelled
// scores anywhere ("Assistant 1: 8 ... Assistant 2: 7") are accepted. Anything else (one number, three numbers,
// no numbers, a score outside 0-10) is a *ParseError.
func ParseScores(text string) (s1, s2 float64, err error) {
	first := ""
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(markdownish.Replace(line)); l != "" {
			first = l
			break
		}
	}
	if first == "" {
		return 0, 0, &ParseError{Reason: "empty output"}
	}
	line := outOfTen.ReplaceAllString(first, "$1")
	// "Assistant 1" and "Assistant 2" labels hold digits that are not scores.
	line = assistantLabel.ReplaceAllString(line, " ")
	nums := number.FindAllString(line, -1)
	if len(nums) == 2 {
		a, _ := strconv.ParseFloat(nums[0], 64)
		b, _ := strconv.ParseFloat(nums[1], 64)
		return checkRange(a, b)
	}
	if a, b, ok := labelledScores(text); ok {
		return checkRange(a, b)
	}
	switch len(nums) {
	case 0:
		return 0, 0, &ParseError{Reason: fmt.Sprintf("no scores on the first line %q", clip(first))}
	default:
		return 0, 0, &ParseError{Reason: fmt.Sprintf("%d numbers on the first line %q, want 2", len(nums), clip(first))}
	}
}

func labelledScores(text string) (float64, float64, bool) {
	m1 := labelled1.FindStringSubmatch(text)
	m2 := labelled2.FindStringSubmatch(text)
	if m1 == nil || m2 == nil {
		return 0, 0, false
	}
	a, _ := strconv.ParseFloat(m1[1], 64)
	b, _ := strconv.ParseFloat(m2[1], 64)
	return a, b, true
}

func checkRange(a, b float64) (float64, float64, error) {
	for _, v := range []float64{a, b} {
		if math.IsNaN(v) || v < 0 || v > MaxScore {
			return 0, 0, &ParseError{Reason: fmt.Sprintf("score %v is outside 0-%d", v, MaxScore)}
		}
	}
	return a, b, nil
}

func clip(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "..."
	}
	return s
}
