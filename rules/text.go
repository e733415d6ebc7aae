package rules

import (
	"regexp"
	"strconv"
	"strings"
)

// numberWordsEN are the number words FromText reads besides digits.
var numberWordsEN = map[string]int{
	"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
	"eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
	"sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}

const numRe = `(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)`

func parseNum(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return numberWordsEN[strings.ToLower(s)]
}

// quoted matches a phrase in double, curly or single quotes.
const quoted = `(?:"([^"]+)"|“([^”]+)”|'([^']+)')`

var (
	lessRe       = regexp.MustCompile(`(?i)\b(under|fewer than|less than|below)\s+` + numRe + `\s+(words|sentences)\b`)
	atMostRe     = regexp.MustCompile(`(?i)\b(at most|no more than|not more than|up to|maximum of|max\.?)\s+` + numRe + `\s+(words|sentences)\b`)
	atLeastRe    = regexp.MustCompile(`(?i)\b(at least|no fewer than|no less than|minimum of)\s+` + numRe + `\s+(words|sentences)\b`)
	moreThanRe   = regexp.MustCompile(`(?i)\b(more than|over)\s+` + numRe + `\s+(words|sentences)\b`)
	endsWithRe   = regexp.MustCompile(`(?i)\b(?:end(?:s|ing)?|finish(?:es|ing)?)(?:\s+(?:the|your|this|each)\s+[\p{L}]+|\s+it)?\s+with\s+(?:the\s+(?:phrase|words?|sentence|line)\s+)?` + quoted)
	startsWithRe = regexp.MustCompile(`(?i)\b(?:start|begin)(?:s|ning|ing)?(?:\s+(?:the|your|this|each)\s+[\p{L}]+|\s+it)?\s+with\s+(?:the\s+(?:phrase|words?|sentence|line)\s+)?` + quoted)
	namedRe      = regexp.MustCompile(`\b(?:named|called|whose name is)\s+(\p{Lu}[\p{L}'-]*(?:\s+\p{Lu}[\p{L}'-]*)?)`)
	mentionRe    = regexp.MustCompile(`(?i)\b(?:mentions?|mentioning|includes?|including|contains?|containing|features?|featuring|uses?\s+the\s+words?)\s+(?:the\s+words?\s+|the\s+keywords?\s+)?` +
		`((?:` + quoted + `|(?:a|an|the|some)\s+[\p{L}-]+)(?:(?:\s*,\s*|\s+and\s+|\s*,\s*and\s+)(?:` + quoted + `|(?:a|an|the|some)\s+[\p{L}-]+))*)`)
	forbidRe = regexp.MustCompile(`(?i)\b(?:do not|don't|never|without)\s+(?:use|using|mention|mentioning|say|saying|include|including)\s+(?:the\s+words?\s+|any\s+)?` +
		`((?:` + quoted + `|[\p{L}-]+)(?:(?:\s*,\s*|\s+or\s+|\s+and\s+)(?:` + quoted + `|[\p{L}-]+))*)`)
	listItemRe  = regexp.MustCompile(quoted + `|(?:a|an|the|some)\s+([\p{L}-]+)|([\p{L}-]+)`)
	happyRe     = regexp.MustCompile(`(?i)\b(ends?\s+happily|ending\s+happily|happy\s+ending|ends?\s+on\s+a\s+happy\s+note)\b`)
	noCommaRe   = regexp.MustCompile(`(?i)\b(no commas|without (?:using )?(?:any )?commas|(?:do not|don't) use (?:any )?commas)\b`)
	lowerRe     = regexp.MustCompile(`(?i)\b(all lowercase|all in lowercase|only lowercase|in lowercase letters)\b`)
	upperRe     = regexp.MustCompile(`(?i)\b(all capital letters|all caps|in capital letters|all uppercase|in uppercase)\b`)
	jsonRe      = regexp.MustCompile(`(?i)\b(?:in|as|valid|with|using)\s+(?:a\s+)?json\b`)
	jsonKeysRe  = regexp.MustCompile(`(?i)\bkeys?\s+((?:` + quoted + `|[\w-]+)(?:(?:\s*,\s*|\s+and\s+|\s*,\s*and\s+)(?:` + quoted + `|[\w-]+))*)`)
	titleTextRe = regexp.MustCompile(`(?i)(<<|double angular brackets)`)
	psRe        = regexp.MustCompile(`(?i)\b(?:postscript|p\.s\.)`)
)

// article words dropped from mention lists ("a ball" -> "ball").
var stopMention = map[string]bool{"and": true, "or": true, "a": true, "an": true, "the": true, "some": true}

// FromText finds the verifiable instructions stated in an instruction's words: word and sentence limits
// ("under 80 words", "at least 3 sentences"), required words ("mentions a ball and a kite", "include the word
// 'moon'"), forbidden words ("do not use the word 'sad'"), a name ("a cat named Tom"), start and end phrases
// ("ends with 'The end.'"), a happy ending, JSON (with "keys name and age"), no commas, all lowercase or
// capitals, a <<title>>, a P.S. Phrases it does not recognize are ignored; the result may be empty. The result
// is deterministic and in a fixed order of checks.
func FromText(text string) []Instruction {
	var out []Instruction
	add := func(id string, kw map[string]any) {
		if in, err := New(id, kw); err == nil {
			out = append(out, in)
		}
	}
	lengths := map[string]relation{}
	setLimit := func(unit string, r relation) {
		if _, ok := lengths[unit]; !ok {
			lengths[unit] = r
		}
	}
	// "no more than" and "no less than" are atMostRe's and atLeastRe's, not the opposite limits.
	unnegated := func(re *regexp.Regexp) [][]string {
		var out [][]string
		for _, ix := range re.FindAllStringSubmatchIndex(text, -1) {
			if noNotRe.MatchString(text[:ix[0]]) {
				continue
			}
			m := make([]string, len(ix)/2)
			for k := range m {
				if ix[2*k] >= 0 {
					m[k] = text[ix[2*k]:ix[2*k+1]]
				}
			}
			out = append(out, m)
		}
		return out
	}
	for _, m := range unnegated(lessRe) {
		setLimit(strings.ToLower(m[3]), relation{n: parseNum(m[2])})
	}
	for _, m := range atMostRe.FindAllStringSubmatch(text, -1) {
		setLimit(strings.ToLower(m[3]), relation{n: parseNum(m[2]) + 1})
	}
	for _, m := range atLeastRe.FindAllStringSubmatch(text, -1) {
		setLimit(strings.ToLower(m[3])+"+", relation{atLeast: true, n: parseNum(m[2])})
	}
	for _, m := range unnegated(moreThanRe) {
		setLimit(strings.ToLower(m[3])+"+", relation{atLeast: true, n: parseNum(m[2]) + 1})
	}
	for _, unit := range []string{"words", "words+", "sentences", "sentences+"} {
		r, ok := lengths[unit]
		if !ok || r.n <= 0 {
			continue
		}
		rel := "less than"
		if r.atLeast {
			rel = "at least"
		}
		if strings.HasPrefix(unit, "words") {
			add("length_constraints:number_words", map[string]any{"num_words": r.n, "relation": rel})
		} else {
			add("length_constraints:number_sentences", map[string]any{"num_sentences": r.n, "relation": rel})
		}
	}

	if m := namedRe.FindStringSubmatch(text); m != nil {
		add("detectable_content:name", map[string]any{"name": m[1]})
	}

	var mentions []string
	for _, ix := range mentionRe.FindAllStringSubmatchIndex(text, -1) {
		if negated(text[:ix[0]]) {
			continue // "do not use the word 'sad'" is forbidRe's
		}
		mentions = append(mentions, listItems(text[ix[2]:ix[3]])...)
	}
	if len(mentions) > 0 {
		add("keywords:existence", map[string]any{"keywords": dedupe(mentions)})
	}
	var forbidden []string
	for _, m := range forbidRe.FindAllStringSubmatch(text, -1) {
		if strings.Contains(strings.ToLower(m[1]), "comma") {
			continue
		}
		forbidden = append(forbidden, listItems(m[1])...)
	}
	if len(forbidden) > 0 {
		add("keywords:forbidden_words", map[string]any{"forbidden_words": dedupe(forbidden)})
	}

	if m := startsWithRe.FindStringSubmatch(text); m != nil {
		add("startend:start_checker", map[string]any{"start_phrase": firstNonEmpty(m[1:]...)})
	}
	if m := endsWithRe.FindStringSubmatch(text); m != nil {
		add("startend:end_checker", map[string]any{"end_phrase": firstNonEmpty(m[1:]...)})
	}
	if happyRe.MatchString(text) {
		add("sentiment:ends_happily", nil)
	}
	if jsonRe.MatchString(text) {
		if m := jsonKeysRe.FindStringSubmatch(text); m != nil {
			add("detectable_format:json_keys", map[string]any{"keys": dedupe(listItems(m[1]))})
		} else {
			add("detectable_format:json_format", nil)
		}
	}
	if noCommaRe.MatchString(text) {
		add("punctuation:no_comma", nil)
	}
	if lowerRe.MatchString(text) {
		add("change_case:english_lowercase", nil)
	} else if upperRe.MatchString(text) {
		add("change_case:english_capital", nil)
	}
	if titleTextRe.MatchString(text) {
		add("detectable_format:title", nil)
	}
	if psRe.MatchString(text) {
		add("detectable_content:postscript", map[string]any{"postscript_marker": "P.S."})
	}
	return out
}

var noNotRe = regexp.MustCompile(`(?i)\b(no|not)\s+$`)

var negatedRe = regexp.MustCompile(`(?i)\b(not|n't|never|without)\s*$`)

// negated reports whether the text before a match ends in a negation.
func negated(before string) bool { return negatedRe.MatchString(before) }

// listItems splits "a ball, a kite and 'the moon'" into [ball kite the moon].
func listItems(s string) []string {
	var out []string
	for _, m := range listItemRe.FindAllStringSubmatch(s, -1) {
		w := firstNonEmpty(m[1:]...)
		if w == "" || stopMention[strings.ToLower(w)] {
			continue
		}
		out = append(out, w)
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		k := strings.ToLower(s)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}
