package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/dlclark/regexp2"
)

// Pre-tokenizer regexes, copied from llama.cpp's src/llama-vocab.cpp (llm_tokenizer_bpe) for each
// tokenizer.ggml.pre value. Each list is applied in order: every regex splits every fragment left by the previous
// ones into matches and the text between them (both kept), exactly like llama.cpp's unicode_regex_split.
const (
	reGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	reLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// reLlama3HF is the same regex as written in HF tokenizer.json files.
	reLlama3HF = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2    = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// preTokenizerRegexes maps a tokenizer.ggml.pre value to its regex list; ok is false for an unknown name.
func preTokenizerRegexes(pre string) (regexes []string, ok bool) {
	switch pre {
	case "", "default":
		return []string{
			`[\p{P}\$\+<=>\^~\|]+`,
			reGPT2,
			`\p{N}+`,
			`[0-9][0-9][0-9]`,
		}, true
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "dbrx", "smaug-bpe":
		return []string{reLlama3}, true
	case "deepseek-llm":
		// Careful: this class holds code points that Unicode normalization would change (U+1F7D, U+1FBE,
		// U+1FD3, U+1FDB, U+2126, U+212A); editors and tools that normalize text break it.
		return []string{
			"[\r\n]",
			`\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+`,
			`\s?[!-/:-~！-／：-～‘-‟　-。]+`,
			`\s+$`,
			`[一-龥ࠀ-一가-퟿]+`,
			`\p{N}+`,
		}, true
	case "deepseek-coder":
		return []string{
			"[\r\n]",
			`\s?\p{L}+`,
			`\s?\p{P}+`,
			`[一-龥ࠀ-一가-퟿]+`,
			`\p{N}`,
		}, true
	case "falcon":
		return []string{
			`[\p{P}\$\+<=>\^~\|` + "`" + `]+`,
			reGPT2,
			`[0-9][0-9][0-9]`,
		}, true
	case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b":
		return []string{`\p{N}`, reGPT2}, true
	case "gpt-2", "gpt2", "gpt-neox", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "jina-v1-en",
		"jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "exaone4", "trillion":
		return []string{reGPT2}, true
	case "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan":
		return []string{reQwen2}, true
	case "chatglm-bpe", "glm4":
		return []string{reLlama3}, true
	case "poro-chat", "bloom", "gpt3-finnish":
		return []string{` ?[^(\s|.,!?…。，、।۔،)]+`}, true
	case "viking":
		return []string{` ?[^(\s|.,!?…。，、।۔،)]+`, `\p{N}`}, true
	}
	return nil, false
}

// splitter refines a list of fragment lengths (in code points) over cpts into a finer one.
type splitter interface {
	split(cpts []rune, offsets []int) []int
}

// preTokenizer splits text into the words that BPE merges run on.
type preTokenizer struct {
	splitters []splitter
}

// newPreTokenizer compiles regexes. unicodeClasses selects how \p{...} is matched: false reproduces llama.cpp
// (code points collapsed to one placeholder per category, ASCII as itself), true uses real Unicode classes (for
// regexes from HF tokenizer.json files that llama.cpp has no adaptation of).
func newPreTokenizer(regexes []string, unicodeClasses bool) (*preTokenizer, error) {
	p := &preTokenizer{}
	for _, re := range regexes {
		switch re {
		case reGPT2:
			p.splitters = append(p.splitters, gpt2Splitter{})
			continue
		case reLlama3, reLlama3HF:
			p.splitters = append(p.splitters, llama3Splitter{})
			continue
		}
		s, err := newRegexSplitter(re, unicodeClasses)
		if err != nil {
			return nil, err
		}
		p.splitters = append(p.splitters, s)
	}
	return p, nil
}

// split returns the pre-tokens of text as code point ranges: fragment lengths over cpts.
func (p *preTokenizer) split(cpts []rune) []int {
	offsets := []int{len(cpts)}
	for _, s := range p.splitters {
		offsets = s.split(cpts, offsets)
	}
	return offsets
}

// fragmentScanner holds the bookkeeping shared by llama.cpp's hand-written splitters.
type fragmentScanner struct {
	cpts     []rune
	ini, end int
	prevEnd  int
	out      []int
}

func (f *fragmentScanner) cpt(pos int) rune {
	if pos >= f.ini && pos < f.end {
		return f.cpts[pos]
	}
	return outOfRange
}

func (f *fragmentScanner) flags(pos int) cptFlags {
	if pos >= f.ini && pos < f.end {
		return flagsOf(f.cpts[pos])
	}
	return 0
}

func (f *fragmentScanner) add(end int) int {
	n := end - f.prevEnd
	if n > 0 {
		f.out = append(f.out, n)
	}
	f.prevEnd = end
	return n
}

// gpt2Splitter is llama.cpp's unicode_regex_split_custom_gpt2, for
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
type gpt2Splitter struct{}

func (gpt2Splitter) split(cpts []rune, offsets []int) []int {
	f := fragmentScanner{cpts: cpts, out: make([]int, 0, len(offsets))}
	start := 0
	for _, off := range offsets {
		f.ini, f.end, f.prevEnd = start, start+off, start
		start += off
		for pos := f.ini; pos < f.end; {
			c := f.cpt(pos)
			fl := f.flags(pos)
			if c == '\'' && pos+1 < f.end {
				n := f.cpt(pos + 1)
				if n == 's' || n == 't' || n == 'm' || n == 'd' {
					pos += f.add(pos + 2)
					continue
				}
				if pos+2 < f.end {
					nn := f.cpt(pos + 2)
					if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
						pos += f.add(pos + 3)
						continue
					}
				}
			}
			fl2 := fl
			if c == ' ' {
				fl2 = f.flags(pos + 1)
			}
			if fl2&flagLetter != 0 {
				if c == ' ' {
					pos++
				}
				for fl2&flagLetter != 0 {
					pos++
					fl2 = f.flags(pos)
				}
				f.add(pos)
				continue
			}
			if fl2&flagNumber != 0 {
				if c == ' ' {
					pos++
				}
				for fl2&flagNumber != 0 {
					pos++
					fl2 = f.flags(pos)
				}
				f.add(pos)
				continue
			}
			if fl2&(flagWhitespace|flagLetter|flagNumber) == 0 && fl2 != 0 {
				if c == ' ' {
					pos++
				}
				for fl2&(flagWhitespace|flagLetter|flagNumber) == 0 && fl2 != 0 {
					pos++
					fl2 = f.flags(pos)
				}
				f.add(pos)
				continue
			}
			nws := 0
			for f.flags(pos+nws)&flagWhitespace != 0 {
				nws++
			}
			if nws > 1 && f.cpt(pos+nws) != outOfRange {
				pos += nws - 1
				f.add(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				f.add(pos)
				continue
			}
			pos++
			f.add(pos)
		}
	}
	return f.out
}

// llama3Splitter is llama.cpp's unicode_regex_split_custom_llama3, for
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
type llama3Splitter struct{}

func (llama3Splitter) split(cpts []rune, offsets []int) []int {
	f := fragmentScanner{cpts: cpts, out: make([]int, 0, len(offsets))}
	start := 0
	for _, off := range offsets {
		f.ini, f.end, f.prevEnd = start, start+off, start
		start += off
		for pos := f.ini; pos < f.end; {
			c := f.cpt(pos)
			fl := f.flags(pos)
			if c == '\'' && pos+1 < f.end {
				n := unicode.ToLower(f.cpt(pos + 1))
				if n == 's' || n == 't' || n == 'm' || n == 'd' {
					pos += f.add(pos + 2)
					continue
				}
				if pos+2 < f.end {
					nn := unicode.ToLower(f.cpt(pos + 2))
					if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
						pos += f.add(pos + 3)
						continue
					}
				}
			}
			if !(c == '\r' || c == '\n' || fl&flagNumber != 0) {
				if fl&flagLetter != 0 || f.flags(pos+1)&flagLetter != 0 {
					pos++
					for f.flags(pos)&flagLetter != 0 {
						pos++
					}
					f.add(pos)
					continue
				}
			}
			if fl&flagNumber != 0 {
				ini := pos
				for f.flags(pos)&flagNumber != 0 {
					pos++
					if pos-ini >= 3 {
						f.add(pos)
						ini = pos
					}
				}
				f.add(pos)
				continue
			}
			fl2 := fl
			if c == ' ' {
				fl2 = f.flags(pos + 1)
			}
			if fl2&(flagWhitespace|flagLetter|flagNumber) == 0 && fl != 0 {
				if c == ' ' {
					pos++
				}
				for fl2&(flagWhitespace|flagLetter|flagNumber) == 0 && fl2 != 0 {
					pos++
					fl2 = f.flags(pos)
				}
				c2 := f.cpt(pos)
				for c2 == '\r' || c2 == '\n' {
					pos++
					c2 = f.cpt(pos)
				}
				f.add(pos)
				continue
			}
			nws := 0
			lastRN := 0
			for f.flags(pos+nws)&flagWhitespace != 0 {
				c2 := f.cpt(pos + nws)
				if c2 == '\r' || c2 == '\n' {
					lastRN = pos + nws + 1
				}
				nws++
			}
			if lastRN > 0 {
				pos = lastRN
				f.add(pos)
				continue
			}
			if nws > 1 && f.cpt(pos+nws) != outOfRange {
				pos += nws - 1
				f.add(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				f.add(pos)
				continue
			}
			pos++
			f.add(pos)
		}
	}
	return f.out
}

// regexSplitter runs a general regex over each fragment, like llama.cpp's std::regex fallback. In collapsed mode
// each code point is replaced by itself when ASCII, by 0x0B when whitespace, else by one placeholder rune per
// category (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5 symbol, 0xD0 other), and \p{X} in the
// regex by that placeholder plus the ASCII members llama.cpp assigns to X. Without categories, non-ASCII
// whitespace still becomes 0x0B (std::wregex's \s only knows ASCII).
type regexSplitter struct {
	re        *regexp2.Regexp
	collapsed bool
}

// collapsedClass returns the placeholder rune and the ASCII members llama.cpp assigns to the category class p
// (e.g. `\p{N}`) in collapsed matching, as regexp2 class content.
func collapsedClass(p string) (string, bool) {
	switch p {
	case `\p{N}`:
		return `\u00D10-9`, true
	case `\p{L}`, `\p{Lu}`, `\p{Ll}`, `\p{Lt}`, `\p{Lm}`, `\p{Lo}`:
		return `\u00D2A-Za-z`, true
	case `\p{P}`:
		return `\u00D3\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\x5B-\x5D\x5F\x7B\x7D`, true
	case `\p{M}`:
		return `\u00D4`, true
	case `\p{S}`:
		return `\u00D5\x24\x2B\x3C-\x3E\x5E\x60\x7C`, true
	}
	return "", false
}

// usesCategories reports whether expr contains a \p{...} class that collapsed matching handles.
func usesCategories(expr string) bool {
	for i := 0; i+2 < len(expr); i++ {
		if expr[i] == '\\' && expr[i+1] == 'p' && expr[i+2] == '{' {
			if j := strings.IndexByte(expr[i:], '}'); j > 0 {
				if _, ok := collapsedClass(expr[i : i+j+1]); ok {
					return true
				}
			}
		}
	}
	return false
}

func newRegexSplitter(expr string, unicodeClasses bool) (*regexSplitter, error) {
	collapsed := !unicodeClasses && usesCategories(expr)
	src := translateRegex(expr, collapsed)
	re, err := regexp2.Compile(src, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: pre-tokenizer regex %q: %w", expr, err)
	}
	return &regexSplitter{re: re, collapsed: collapsed}, nil
}

// translateRegex rewrites an ECMAScript-style regex for regexp2: \p{X} classes for collapsed text, an unescaped
// `$` outside a class as \z (end of input only, as in ECMAScript), \s as ECMAScript's ASCII set with \v.
func translateRegex(expr string, collapsed bool) string {
	var b strings.Builder
	inside := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == '\\' && i+1 < len(expr):
			if collapsed && expr[i+1] == 'p' && i+2 < len(expr) && expr[i+2] == '{' {
				if j := strings.IndexByte(expr[i:], '}'); j > 0 {
					if cls, ok := collapsedClass(expr[i : i+j+1]); ok {
						if !inside {
							b.WriteByte('[')
						}
						b.WriteString(cls)
						if !inside {
							b.WriteByte(']')
						}
						i += j
						continue
					}
				}
			}
			if expr[i+1] == 's' {
				if inside {
					b.WriteString(`\t\n\v\f\r `)
				} else {
					b.WriteString(`[\t\n\v\f\r ]`)
				}
				i++
				continue
			}
			if expr[i+1] == 'S' && !inside {
				b.WriteString(`[^\t\n\v\f\r ]`)
				i++
				continue
			}
			b.WriteByte(c)
			b.WriteByte(expr[i+1])
			i++
		case c == '[' && !inside:
			inside = true
			b.WriteByte(c)
		case c == ']' && inside:
			inside = false
			b.WriteByte(c)
		case c == '$' && !inside:
			b.WriteString(`\z`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *regexSplitter) split(cpts []rune, offsets []int) []int {
	text := make([]rune, len(cpts))
	for i, r := range cpts {
		switch {
		case r < 0x80:
			text[i] = r
		case flagsOf(r)&flagWhitespace != 0:
			text[i] = 0x0B
		case !s.collapsed:
			text[i] = r
		default:
			switch flagsOf(r) &^ flagWhitespace {
			case flagNumber:
				text[i] = 0xD1
			case flagLetter:
				text[i] = 0xD2
			case flagPunctuation:
				text[i] = 0xD3
			case flagAccentMark:
				text[i] = 0xD4
			case flagSymbol:
				text[i] = 0xD5
			default:
				text[i] = 0xD0
			}
		}
	}
	out := make([]int, 0, len(offsets))
	start := 0
	for _, off := range offsets {
		frag := text[start : start+off]
		startIdx := 0
		m, err := s.re.FindRunesMatch(frag)
		for err == nil && m != nil {
			if m.Length == 0 {
				// Our regexes never match empty; stop rather than loop.
				break
			}
			if m.Index > startIdx {
				out = append(out, m.Index-startIdx)
			}
			out = append(out, m.Length)
			startIdx = m.Index + m.Length
			m, err = s.re.FindNextMatch(m)
		}
		if startIdx < off {
			out = append(out, off-startIdx)
		}
		start += off
	}
	return out
}
