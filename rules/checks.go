package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
)

// builder makes an instruction's check and description from its arguments; it records argument errors in a.
type builder func(a *args) (checkFunc, string)

func builders() map[string]builder {
	return map[string]builder{
		"keywords:existence":                            keywordsExistence,
		"keywords:forbidden_words":                      forbiddenWords,
		"keywords:frequency":                            keywordFrequency,
		"keywords:letter_frequency":                     letterFrequency,
		"length_constraints:number_words":               numberWords,
		"length_constraints:number_sentences":           numberSentences,
		"length_constraints:number_paragraphs":          numberParagraphs,
		"detectable_format:json_format":                 jsonFormat,
		"detectable_format:json_keys":                   jsonKeys,
		"detectable_format:title":                       title,
		"detectable_format:number_bullet_lists":         bulletLists,
		"detectable_format:number_highlighted_sections": highlightedSections,
		"detectable_content:postscript":                 postscript,
		"detectable_content:number_placeholders":        placeholders,
		"detectable_content:name":                       name,
		"startend:end_checker":                          endChecker,
		"startend:start_checker":                        startChecker,
		"startend:quotation":                            quotation,
		"change_case:english_lowercase":                 lowercase,
		"change_case:english_capital":                   capital,
		"change_case:capital_word_frequency":            capitalWordFrequency,
		"punctuation:no_comma":                          noComma,
		"combination:repeat_prompt":                     repeatPrompt,
		"sentiment:ends_happily":                        endsHappily,
	}
}

// args reads an instruction's keyword arguments, remembering which were read and the first error.
type args struct {
	id   string
	kw   map[string]any
	used map[string]bool
	err  error
}

func (a *args) fail(name, format string, v ...any) {
	if a.err == nil {
		a.err = fmt.Errorf("rules: %s: argument %q: %s", a.id, name, fmt.Sprintf(format, v...))
	}
}

func (a *args) get(name string) (any, bool) {
	a.used[name] = true
	v, ok := a.kw[name]
	if !ok {
		a.fail(name, "missing")
	}
	return v, ok
}

func (a *args) int(name string) int {
	v, ok := a.get(name)
	if !ok {
		return 0
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			a.fail(name, "not a number: %v", x)
		}
	default:
		a.fail(name, "must be a number, not %T", v)
		return 0
	}
	if f != math.Trunc(f) || f < 0 || f > 1e9 {
		a.fail(name, "must be a whole number >= 0, not %v", f)
		return 0
	}
	return int(f)
}

func (a *args) str(name string) string {
	v, ok := a.get(name)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr || strings.TrimSpace(s) == "" {
		a.fail(name, "must be a non-empty string")
	}
	return s
}

func (a *args) strs(name string) []string {
	v, ok := a.get(name)
	if !ok {
		return nil
	}
	var out []string
	switch x := v.(type) {
	case []string:
		out = x
	case []any:
		for _, e := range x {
			s, isStr := e.(string)
			if !isStr {
				a.fail(name, "must be a list of strings")
				return nil
			}
			out = append(out, s)
		}
	default:
		a.fail(name, "must be a list of strings, not %T", v)
	}
	if len(out) == 0 {
		a.fail(name, "must not be empty")
	}
	for _, s := range out {
		if strings.TrimSpace(s) == "" {
			a.fail(name, "holds an empty string")
		}
	}
	return out
}

// relation is IFEval's comparison: "less than" (count < n) or "at least" (count >= n).
type relation struct {
	atLeast bool
	n       int
}

func (a *args) relation(relName, numName string) relation {
	r := relation{n: a.int(numName)}
	switch s := a.str(relName); s {
	case "less than":
	case "at least":
		r.atLeast = true
	default:
		a.fail(relName, `must be "less than" or "at least", not %q`, s)
	}
	return r
}

func (r relation) String() string {
	if r.atLeast {
		return fmt.Sprintf("at least %d", r.n)
	}
	return fmt.Sprintf("fewer than %d", r.n)
}

// holds compares a count; credit decays with the distance to the allowed range, relative to n.
func (r relation) holds(count int) Result {
	var d int
	if r.atLeast {
		d = r.n - count
	} else {
		d = count - r.n + 1
	}
	if d <= 0 {
		return Result{Followed: true}
	}
	return Result{Credit: math.Exp(-float64(d) / float64(max(r.n, 1)))}
}

// exact compares a count with a required one.
func exact(count, want int) Result {
	if count == want {
		return Result{Followed: true}
	}
	d := math.Abs(float64(count - want))
	return Result{Credit: math.Exp(-d / float64(max(want, 1)))}
}

func boolResult(ok bool) Result { return Result{Followed: ok} }

// --- text helpers ---

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || unicode.Is(unicode.Mn, r)
}

// Words splits text into runs of letters, digits and underscores (IFEval's \w+).
func Words(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) })
}

// countPhrase counts occurrences of phrase's words as consecutive words of text.
func countPhrase(text, phrase string, fold bool) int {
	if fold {
		text, phrase = strings.ToLower(text), strings.ToLower(phrase)
	}
	tw, pw := Words(text), Words(phrase)
	if len(pw) == 0 {
		return 0
	}
	n := 0
	for i := 0; i+len(pw) <= len(tw); i++ {
		match := true
		for j := range pw {
			if tw[i+j] != pw[j] {
				match = false
				break
			}
		}
		if match {
			n++
		}
	}
	return n
}

var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true, "jr": true, "sr": true, "vs": true,
	"etc": true, "e.g": true, "i.e": true, "inc": true, "ltd": true, "co": true, "no": false,
}

// Sentences splits text at '.', '!' or '?' (with any closing quotes or brackets) followed by white space or
// the end, except after an abbreviation or a one-letter initial; empty pieces are dropped.
func Sentences(text string) []string {
	var out []string
	rs := []rune(text)
	start := 0
	for i := 0; i < len(rs); i++ {
		if rs[i] != '.' && rs[i] != '!' && rs[i] != '?' {
			continue
		}
		j := i
		for j+1 < len(rs) && strings.ContainsRune(".!?\"'”’)]", rs[j+1]) {
			j++
		}
		if j+1 < len(rs) && !unicode.IsSpace(rs[j+1]) {
			i = j
			continue
		}
		if rs[i] == '.' && j == i {
			k := i
			for k > start && !unicode.IsSpace(rs[k-1]) {
				k--
			}
			w := strings.ToLower(strings.TrimLeft(string(rs[k:i]), "(\"'“‘"))
			if abbreviations[w] || (len([]rune(w)) == 1 && unicode.IsLetter([]rune(w)[0])) {
				i = j
				continue
			}
		}
		if s := strings.TrimSpace(string(rs[start : j+1])); s != "" {
			out = append(out, s)
		}
		start = j + 1
		i = j
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" && strings.ContainsFunc(s, isWordRune) {
		out = append(out, s)
	}
	return out
}

func stripFences(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"```json", "```Json", "```JSON", "```"} {
		if strings.HasPrefix(s, p) {
			s = s[len(p):]
			break
		}
	}
	return strings.TrimSpace(strings.TrimSuffix(s, "```"))
}

// --- the checks ---

func keywordsExistence(a *args) (checkFunc, string) {
	kws := a.strs("keywords")
	return func(r string) Result {
		found := 0
		for _, k := range kws {
			if countPhrase(r, k, true) > 0 {
				found++
			}
		}
		return Result{Followed: found == len(kws), Credit: float64(found) / float64(len(kws))}
	}, "mentions " + quoteList(kws)
}

func forbiddenWords(a *args) (checkFunc, string) {
	kws := a.strs("forbidden_words")
	return func(r string) Result {
		found := 0
		for _, k := range kws {
			if countPhrase(r, k, true) > 0 {
				found++
			}
		}
		return Result{Followed: found == 0, Credit: 1 - float64(found)/float64(len(kws))}
	}, "does not use " + quoteList(kws)
}

func keywordFrequency(a *args) (checkFunc, string) {
	kw := a.str("keyword")
	rel := a.relation("relation", "frequency")
	return func(r string) Result { return rel.holds(countPhrase(r, kw, true)) },
		fmt.Sprintf("uses %q %s times", kw, rel)
}

func letterFrequency(a *args) (checkFunc, string) {
	letter := strings.ToLower(a.str("letter"))
	if len([]rune(letter)) != 1 {
		a.fail("letter", "must be one letter")
	}
	rel := a.relation("let_relation", "let_frequency")
	return func(r string) Result { return rel.holds(strings.Count(strings.ToLower(r), letter)) },
		fmt.Sprintf("uses the letter %q %s times", letter, rel)
}

func numberWords(a *args) (checkFunc, string) {
	rel := a.relation("relation", "num_words")
	return func(r string) Result { return rel.holds(len(Words(r))) }, rel.String() + " words"
}

func numberSentences(a *args) (checkFunc, string) {
	rel := a.relation("relation", "num_sentences")
	return func(r string) Result { return rel.holds(len(Sentences(r))) }, rel.String() + " sentences"
}

var paragraphSplit = regexp.MustCompile(`\s?\*\*\*\s?`)

func numberParagraphs(a *args) (checkFunc, string) {
	want := a.int("num_paragraphs")
	return func(r string) Result {
		ps := paragraphSplit.Split(r, -1)
		n := len(ps)
		for i, p := range ps {
			if strings.TrimSpace(p) == "" {
				if i == 0 || i == len(ps)-1 {
					n--
				} else {
					return Result{}
				}
			}
		}
		return exact(n, want)
	}, fmt.Sprintf("%d paragraphs separated by ***", want)
}

func jsonFormat(a *args) (checkFunc, string) {
	return func(r string) Result { return boolResult(json.Valid([]byte(stripFences(r)))) }, "valid JSON"
}

func jsonKeys(a *args) (checkFunc, string) {
	keys := a.strs("keys")
	return func(r string) Result {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stripFences(r)), &obj); err != nil {
			return Result{}
		}
		found := 0
		for _, k := range keys {
			if _, ok := obj[k]; ok {
				found++
			}
		}
		return Result{Followed: found == len(keys), Credit: float64(found) / float64(len(keys))}
	}, "a JSON object with the keys " + quoteList(keys)
}

var titleRe = regexp.MustCompile(`<<[^\n]+>>`)

func title(a *args) (checkFunc, string) {
	return func(r string) Result {
		for _, m := range titleRe.FindAllString(r, -1) {
			if strings.TrimSpace(strings.Trim(m, "<>")) != "" {
				return Result{Followed: true}
			}
		}
		return Result{}
	}, "a title in <<double angular brackets>>"
}

var (
	starBullet = regexp.MustCompile(`(?m)^\s*\*[^\*].*$`)
	dashBullet = regexp.MustCompile(`(?m)^\s*-.*$`)
)

func bulletLists(a *args) (checkFunc, string) {
	want := a.int("num_bullets")
	return func(r string) Result {
		return exact(len(starBullet.FindAllString(r, -1))+len(dashBullet.FindAllString(r, -1)), want)
	}, fmt.Sprintf("exactly %d bullet points", want)
}

var (
	highlight     = regexp.MustCompile(`\*[^\n\*]*\*`)
	boldHighlight = regexp.MustCompile(`\*\*[^\n\*]*\*\*`)
)

func highlightedSections(a *args) (checkFunc, string) {
	rel := relation{atLeast: true, n: a.int("num_highlights")}
	return func(r string) Result {
		n := 0
		for _, m := range highlight.FindAllString(r, -1) {
			if strings.TrimSpace(strings.Trim(m, "*")) != "" {
				n++
			}
		}
		for _, m := range boldHighlight.FindAllString(r, -1) {
			if strings.TrimSpace(strings.Trim(m, "*")) != "" {
				n++
			}
		}
		return rel.holds(n)
	}, rel.String() + " highlighted sections"
}

func postscript(a *args) (checkFunc, string) {
	marker := a.str("postscript_marker")
	var re *regexp.Regexp
	switch marker {
	case "P.P.S":
		re = regexp.MustCompile(`(?m)\s*p\.\s?p\.\s?s.*$`)
	case "P.S.":
		re = regexp.MustCompile(`(?m)\s*p\.\s?s\..*$`)
	default:
		re = regexp.MustCompile(`(?m)\s*` + regexp.QuoteMeta(strings.ToLower(marker)) + `.*$`)
	}
	return func(r string) Result { return boolResult(re.MatchString(strings.ToLower(r))) },
		"a postscript starting with " + marker
}

var placeholderRe = regexp.MustCompile(`\[.*?\]`)

func placeholders(a *args) (checkFunc, string) {
	rel := relation{atLeast: true, n: a.int("num_placeholders")}
	return func(r string) Result { return rel.holds(len(placeholderRe.FindAllString(r, -1))) },
		rel.String() + " [placeholders]"
}

func name(a *args) (checkFunc, string) {
	n := a.str("name")
	return func(r string) Result { return boolResult(countPhrase(r, n, false) > 0) }, "names " + n
}

func endChecker(a *args) (checkFunc, string) {
	p := a.str("end_phrase")
	want := strings.ToLower(strings.TrimSpace(p))
	return func(r string) Result {
		return boolResult(strings.HasSuffix(strings.ToLower(strings.TrimSpace(r)), want))
	}, fmt.Sprintf("ends with %q", p)
}

func startChecker(a *args) (checkFunc, string) {
	p := a.str("start_phrase")
	want := strings.ToLower(strings.TrimSpace(p))
	return func(r string) Result {
		return boolResult(strings.HasPrefix(strings.ToLower(strings.TrimSpace(r)), want))
	}, fmt.Sprintf("starts with %q", p)
}

func quotation(a *args) (checkFunc, string) {
	return func(r string) Result {
		r = strings.TrimSpace(r)
		return boolResult(len(r) > 1 && r[0] == '"' && r[len(r)-1] == '"')
	}, "wrapped in double quotes"
}

func lowercase(a *args) (checkFunc, string) {
	return func(r string) Result { return boolResult(r == strings.ToLower(r)) }, "all lowercase"
}

func capital(a *args) (checkFunc, string) {
	return func(r string) Result { return boolResult(r == strings.ToUpper(r)) }, "all capital letters"
}

func capitalWordFrequency(a *args) (checkFunc, string) {
	rel := a.relation("capital_relation", "capital_frequency")
	return func(r string) Result {
		n := 0
		for _, w := range Words(r) {
			if strings.ContainsFunc(w, unicode.IsLetter) && w == strings.ToUpper(w) {
				n++
			}
		}
		return rel.holds(n)
	}, rel.String() + " words in capitals"
}

func noComma(a *args) (checkFunc, string) {
	return func(r string) Result {
		n := strings.Count(r, ",")
		return Result{Followed: n == 0, Credit: math.Exp(-float64(n) / 3)}
	}, "no commas"
}

func repeatPrompt(a *args) (checkFunc, string) {
	p := a.str("prompt_to_repeat")
	want := strings.ToLower(strings.TrimSpace(p))
	return func(r string) Result {
		return boolResult(strings.HasPrefix(strings.ToLower(strings.TrimSpace(r)), want))
	}, "repeats the request first"
}

// The happy and sad lexicons of sentiment:ends_happily: small, fixed lists of words that children's stories
// end with.
var (
	happyWords = wordSet("happy happily happier happiest happiness smile smiled smiles smiling laugh laughed " +
		"laughs laughing joy joyful glad love loved loves hug hugged hugs fun safe proud excited delighted " +
		"cheer cheered cheerful celebrate celebrated thank thanked thankful grateful wonderful great best " +
		"friends friend together yay giggled giggle content kind")
	sadWords = wordSet("sad sadly sadder sadness cry cried cries crying tears angry hurt scared afraid lost " +
		"alone lonely died dead die broke broken upset worried pain sorry mad cold hungry")
	negations = wordSet("not no never nobody nothing without isn't wasn't don't didn't can't couldn't " +
		"wouldn't won't")
)

func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

var theEnd = regexp.MustCompile(`(?i)^\W*the end\W*$`)

func endsHappily(a *args) (checkFunc, string) {
	return func(r string) Result {
		ss := Sentences(r)
		for len(ss) > 0 && theEnd.MatchString(ss[len(ss)-1]) {
			ss = ss[:len(ss)-1]
		}
		if len(ss) == 0 {
			return Result{}
		}
		pos, neg := sentiment(ss[len(ss)-1])
		if pos > 0 && neg == 0 {
			return Result{Followed: true}
		}
		if pos > neg {
			return Result{Credit: 0.5}
		}
		return Result{}
	}, "ends happily"
}

// sentiment counts happy and sad words of a sentence; a word within two words after a negation counts for
// the other side ("not happy" is sad).
func sentiment(sentence string) (pos, neg int) {
	ws := Words(strings.ToLower(strings.ReplaceAll(sentence, "’", "'")))
	// Words splits "didn't" into "didn" and "t"; rejoin the common contractions for the negation check.
	lastNeg := -10
	for i, w := range ws {
		if negations[w] || (w == "t" && i > 0 && strings.HasSuffix(ws[i-1], "n")) {
			lastNeg = i
			continue
		}
		happy, sad := happyWords[w], sadWords[w]
		if i-lastNeg <= 2 {
			happy, sad = sad, happy
		}
		if happy {
			pos++
		}
		if sad {
			neg++
		}
	}
	return pos, neg
}

func quoteList(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, ", ")
}
