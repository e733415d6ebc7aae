package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/bestofn/bestofn/chat"
)

// Data preparation: the row formats the training jobs take, turned into Examples and Pairs.
//
//	SFT:     Alpaca rows {instruction, input?, output}, rendered with the paper's Algorithm 1 prompt (the
//	         chat package's "alpaca" template), loss on the output and EOS; chat rows {messages: [{role,
//	         content}]}, loss on the final assistant message.
//	Reward:  TRL rows {prompt?, chosen, rejected, margin?} (without prompt the prompt is the common prefix of
//	         chosen and rejected, as TRL's extract_prompt: HH-RLHF's format); the paper's comparison rows
//	         {user_input, responses_and_scores: [{response, score, source}]}, every two responses with
//	         different scores making a pair.
//
// A bad row (not an object, a missing or empty field, a field of the wrong type, nothing to learn from) is a
// *RowError naming it, or with PrepOptions.SkipBadRows a skip counted by reason in PrepStats.

// Tokenizer is what data preparation needs of a tokenizer (*tokenizer.Tokenizer has it).
type Tokenizer interface {
	Encode(text string, addBOS, parseSpecial bool) []int32
	BOS() int32
	EOS() int32
	AddBOSDefault() bool
	TokenText(id int32) string
}

// DefaultRewardTemplate joins a prompt and a response for the reward model, as the reward package's
// DefaultTemplate (HH-RLHF's dialogue format): training and serving must render inputs alike.
const DefaultRewardTemplate = "\n\nHuman: {prompt}\n\nAssistant: {response}"

// PrepOptions controls data preparation.
type PrepOptions struct {
	// MaxLen is the longest token sequence kept (the model's MaxSeqLen). SFT sequences are cut at the end;
	// reward inputs lose prompt tokens from the left first, then response tokens from the end (as the reward
	// package truncates). 0 means no limit.
	MaxLen int
	// SkipBadRows counts bad rows in PrepStats instead of failing on the first.
	SkipBadRows bool
	// Template renders SFT conversations; nil means the Alpaca template.
	Template chat.Template
	// RewardTemplate joins prompt and response of reward inputs with explicit prompts; "" means
	// DefaultRewardTemplate. It holds "{response}" once and may hold "{prompt}" once, before it.
	RewardTemplate string
	// ScoreMargin sets the margin of pairs from comparison rows to MarginScale times the score gap (0 means
	// 1 when ScoreMargin is set); without it they have no margin.
	ScoreMargin bool
	MarginScale float64
}

// PrepStats counts what preparation did.
type PrepStats struct {
	// Rows is the number of input rows.
	Rows int
	// Produced is the number of examples or pairs made.
	Produced int
	// Skipped counts skipped rows (SkipBadRows) by reason.
	Skipped map[string]int
	// Truncated counts examples or pair sides cut to MaxLen.
	Truncated int
}

// SkippedRows is the total of Skipped.
func (s PrepStats) SkippedRows() int {
	n := 0
	for _, v := range s.Skipped {
		n += v
	}
	return n
}

// RowError is a bad input row.
type RowError struct {
	// Row is the row's 1-based number (the line of a JSONL file, the element of a JSON array).
	Row int
	// Reason is a short, countable description ("missing field", "empty text", ...).
	Reason string
	// Detail says which field and what is wrong.
	Detail string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("train: row %d: %s: %s", e.Row, e.Reason, e.Detail)
}

// Row is one raw input row and its 1-based number.
type Row struct {
	N    int
	JSON json.RawMessage
}

// ReadRows reads a JSON array of objects or JSON Lines (one object per line; blank lines are skipped)
// from r, detected by the first non-space byte.
func ReadRows(r io.Reader) ([]Row, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	first := 1 // line number of the first line left in br
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			return nil, fmt.Errorf("train: read rows: %w", err)
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			if c, _ := br.ReadByte(); c == '\n' {
				first++
			}
			continue
		}
		if b[0] == '[' {
			var arr []json.RawMessage
			if err := json.NewDecoder(br).Decode(&arr); err != nil {
				return nil, fmt.Errorf("train: read rows: JSON array: %w", err)
			}
			rows := make([]Row, len(arr))
			for i, a := range arr {
				rows[i] = Row{N: i + 1, JSON: a}
			}
			return rows, nil
		}
		break
	}
	var rows []Row
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := first; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		rows = append(rows, Row{N: n, JSON: append(json.RawMessage(nil), line...)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: read rows: %w", err)
	}
	return rows, nil
}

// fields is a row decoded as an object, with typed accessors that produce RowErrors.
type fields struct {
	row int
	m   map[string]json.RawMessage
}

func decodeObject(r Row) (fields, error) {
	f := fields{row: r.N}
	if err := json.Unmarshal(r.JSON, &f.m); err != nil || f.m == nil {
		return f, &RowError{Row: r.N, Reason: "not a JSON object", Detail: truncateText(string(r.JSON), 60)}
	}
	return f, nil
}

func (f fields) has(name string) bool {
	v, ok := f.m[name]
	return ok && string(v) != "null"
}

// str returns a string field; required fields must be present and non-empty (after trimming spaces).
func (f fields) str(name string, required bool) (string, error) {
	v, ok := f.m[name]
	if !ok || string(v) == "null" {
		if required {
			return "", &RowError{Row: f.row, Reason: "missing field", Detail: fmt.Sprintf("no %q", name)}
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", &RowError{Row: f.row, Reason: "wrong type", Detail: fmt.Sprintf("%q is %s, want a string", name, jsonKind(v))}
	}
	if required && strings.TrimSpace(s) == "" {
		return "", &RowError{Row: f.row, Reason: "empty text", Detail: fmt.Sprintf("%q is empty", name)}
	}
	return s, nil
}

// num returns an optional number field (0 when absent).
func (f fields) num(name string) (float64, error) {
	v, ok := f.m[name]
	if !ok || string(v) == "null" {
		return 0, nil
	}
	var x float64
	if err := json.Unmarshal(v, &x); err != nil || math.IsInf(x, 0) {
		return 0, &RowError{Row: f.row, Reason: "wrong type", Detail: fmt.Sprintf("%q is %s, want a number", name, jsonKind(v))}
	}
	return x, nil
}

func jsonKind(v json.RawMessage) string {
	s := bytes.TrimSpace(v)
	if len(s) == 0 {
		return "empty"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// prep runs fn over rows, collecting stats and applying the bad-row policy.
func prep(rows []Row, opts PrepOptions, fn func(Row) (int, error)) (PrepStats, error) {
	st := PrepStats{Rows: len(rows), Skipped: map[string]int{}}
	for _, r := range rows {
		n, err := fn(r)
		if err != nil {
			var re *RowError
			if opts.SkipBadRows && errors.As(err, &re) {
				st.Skipped[re.Reason]++
				continue
			}
			return st, err
		}
		st.Produced += n
	}
	return st, nil
}

// SFTExamples turns Alpaca rows and chat rows (each row's keys decide) into examples. The prompt is rendered
// by the template and the example is Encode(prompt + response) + EOS with the loss on the tokens after those
// of Encode(prompt), as Stanford Alpaca's train.py does; special tokens in the rendered text are parsed, as
// the server parses a rendered prompt, and BOS is added as chat.AddBOS says.
func SFTExamples(rows []Row, tok Tokenizer, opts PrepOptions) ([]Example, PrepStats, error) {
	tmpl := opts.Template
	if tmpl == nil {
		var err error
		if tmpl, err = chat.Lookup("alpaca"); err != nil {
			return nil, PrepStats{}, err
		}
	}
	var out []Example
	truncated := 0
	st, err := prep(rows, opts, func(r Row) (int, error) {
		f, err := decodeObject(r)
		if err != nil {
			return 0, err
		}
		var msgs []chat.Message
		var response string
		switch {
		case f.has("messages"):
			if msgs, response, err = chatRow(f); err != nil {
				return 0, err
			}
		case f.has("instruction") || f.has("output"):
			instr, err := f.str("instruction", true)
			if err != nil {
				return 0, err
			}
			input, err := f.str("input", false)
			if err != nil {
				return 0, err
			}
			if response, err = f.str("output", true); err != nil {
				return 0, err
			}
			msgs = []chat.Message{{Role: chat.RoleUser, Content: instr}}
			if strings.TrimSpace(input) != "" {
				msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: input})
			}
		default:
			return 0, &RowError{Row: r.N, Reason: "unknown format",
				Detail: "want {instruction, input?, output} or {messages: [...]}"}
		}
		prompt, err := tmpl.Render(msgs)
		if err != nil {
			return 0, &RowError{Row: r.N, Reason: "bad conversation", Detail: err.Error()}
		}
		bos := chat.AddBOS(prompt, tok.TokenText(tok.BOS()), tok.AddBOSDefault())
		promptToks := tok.Encode(prompt, bos, true)
		toks := tok.Encode(prompt+response, bos, true)
		if eos := tok.EOS(); eos >= 0 {
			toks = append(toks, eos)
		}
		if opts.MaxLen > 0 && len(toks) > opts.MaxLen {
			toks = toks[:opts.MaxLen]
			truncated++
		}
		if len(promptToks) >= len(toks) {
			return 0, &RowError{Row: r.N, Reason: "prompt too long",
				Detail: fmt.Sprintf("the prompt takes %d tokens, leaving none of the response in %d", len(promptToks), len(toks))}
		}
		ex := Example{Tokens: toks, Loss: make([]bool, len(toks))}
		for i := len(promptToks); i < len(toks); i++ {
			ex.Loss[i] = true
		}
		out = append(out, ex)
		return 1, nil
	})
	st.Truncated = truncated
	return out, st, err
}

// chatRow reads {messages: [{role, content}, ...]} ending with an assistant message: the conversation
// before it and its content.
func chatRow(f fields) ([]chat.Message, string, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(f.m["messages"], &raw); err != nil {
		return nil, "", &RowError{Row: f.row, Reason: "wrong type",
			Detail: fmt.Sprintf(`"messages" is %s, want an array`, jsonKind(f.m["messages"]))}
	}
	if len(raw) < 2 {
		return nil, "", &RowError{Row: f.row, Reason: "bad conversation", Detail: "fewer than two messages"}
	}
	msgs := make([]chat.Message, len(raw))
	for i, m := range raw {
		mf, err := decodeObject(Row{N: f.row, JSON: m})
		if err != nil {
			return nil, "", &RowError{Row: f.row, Reason: "wrong type", Detail: fmt.Sprintf("message %d is not an object", i)}
		}
		role, err := mf.str("role", true)
		if err != nil {
			return nil, "", fmt.Errorf("message %d: %w", i, err)
		}
		content, err := mf.str("content", role == chat.RoleAssistant || role == chat.RoleUser)
		if err != nil {
			return nil, "", err
		}
		msgs[i] = chat.Message{Role: role, Content: content}
	}
	last := msgs[len(msgs)-1]
	if last.Role != chat.RoleAssistant {
		return nil, "", &RowError{Row: f.row, Reason: "bad conversation",
			Detail: fmt.Sprintf("the last message is from %q, want the assistant's", last.Role)}
	}
	return msgs[:len(msgs)-1], last.Content, nil
}

// RewardEncoder tokenizes reward-model inputs the way the reward package's Model.Encode does, so a model
// trained on them scores served inputs alike: BOS (when the tokenizer adds one), then Encode(text) with
// special tokens parsed; a text longer than MaxLen loses prompt tokens from the left first (the text before
// the response, minus trailing spaces, tokenized on its own), then response tokens from the end.
type RewardEncoder struct {
	Tok    Tokenizer
	MaxLen int
}

// EncodeText tokenizes text whose response starts at byte responseStart, and reports truncation.
func (e RewardEncoder) EncodeText(text string, responseStart int) ([]int32, bool) {
	var prefix []int32
	if e.Tok.AddBOSDefault() && e.Tok.BOS() >= 0 {
		prefix = []int32{e.Tok.BOS()}
	}
	full := e.Tok.Encode(text, false, true)
	budget := e.MaxLen - len(prefix)
	if e.MaxLen <= 0 || len(full) <= budget {
		return append(prefix, full...), false
	}
	cut := len(strings.TrimRight(text[:responseStart], " "))
	p := e.Tok.Encode(text[:cut], false, true)
	var r []int32
	if len(p) <= len(full) && slices.Equal(full[:len(p)], p) {
		r = full[len(p):]
	} else {
		r = e.Tok.Encode(text[cut:], false, true)
	}
	keep := max(0, budget-len(r))
	p = p[len(p)-min(keep, len(p)):]
	r = r[:min(len(r), budget-len(p))]
	out := append(prefix, p...)
	return append(out, r...), true
}

// renderReward joins prompt and response with a reward template and returns the text and where the
// response starts.
func renderReward(tmpl, prompt, response string) (string, int, error) {
	before, after, ok := strings.Cut(tmpl, "{response}")
	if !ok || strings.Contains(after, "{response}") || strings.Contains(after, "{prompt}") {
		return "", 0, fmt.Errorf("train: reward template %q must hold {response} once, after any {prompt}", tmpl)
	}
	before = strings.Replace(before, "{prompt}", prompt, 1)
	return before + response + after, len(before), nil
}

// implicitPrompt returns the length of chosen and rejected's common prefix, backed up by one when the
// prefix ends in a space (TRL's extract_prompt: the space stays with the response).
func implicitPrompt(chosen, rejected string) int {
	n := 0
	for n < len(chosen) && n < len(rejected) && chosen[n] == rejected[n] {
		n++
	}
	if n > 0 && chosen[n-1] == ' ' {
		n--
	}
	return n
}

// PreferencePairs turns TRL preference rows and the paper's comparison rows (each row's keys decide) into
// tokenized pairs. Rows with an explicit prompt, and comparison rows, are rendered with the reward template;
// implicit-prompt rows (HH-RLHF's whole dialogues) are used as they are, the response starting after their
// common prefix. A pair whose two sides tokenize identically is a bad row.
func PreferencePairs(rows []Row, tok Tokenizer, opts PrepOptions) ([]Pair, PrepStats, error) {
	tmpl := opts.RewardTemplate
	if tmpl == "" {
		tmpl = DefaultRewardTemplate
	}
	if _, _, err := renderReward(tmpl, "", ""); err != nil {
		return nil, PrepStats{}, err
	}
	enc := RewardEncoder{Tok: tok, MaxLen: opts.MaxLen}
	scale := opts.MarginScale
	if scale == 0 {
		scale = 1
	}
	var out []Pair
	truncated := 0
	encode := func(text string, start int) []int32 {
		t, cut := enc.EncodeText(text, start)
		if cut {
			truncated++
		}
		return t
	}
	st, err := prep(rows, opts, func(r Row) (int, error) {
		f, err := decodeObject(r)
		if err != nil {
			return 0, err
		}
		var pairs []Pair
		switch {
		case f.has("responses_and_scores") || f.has("user_input"):
			if pairs, err = comparisonPairs(f, tmpl, opts.ScoreMargin, scale, encode); err != nil {
				return 0, err
			}
		case f.has("chosen") || f.has("rejected"):
			chosen, err := f.str("chosen", true)
			if err != nil {
				return 0, err
			}
			rejected, err := f.str("rejected", true)
			if err != nil {
				return 0, err
			}
			margin, err := f.num("margin")
			if err != nil {
				return 0, err
			}
			p := Pair{Margin: margin}
			if f.has("prompt") {
				prompt, err := f.str("prompt", true)
				if err != nil {
					return 0, err
				}
				ct, cs, _ := renderReward(tmpl, prompt, chosen)
				rt, rs, _ := renderReward(tmpl, prompt, rejected)
				p.Chosen, p.Rejected = encode(ct, cs), encode(rt, rs)
			} else {
				start := implicitPrompt(chosen, rejected)
				if start == len(chosen) || start == len(rejected) {
					return 0, &RowError{Row: r.N, Reason: "identical responses",
						Detail: "one side is a prefix of the other: no response to compare"}
				}
				p.Chosen, p.Rejected = encode(chosen, start), encode(rejected, start)
			}
			pairs = []Pair{p}
		default:
			return 0, &RowError{Row: r.N, Reason: "unknown format",
				Detail: "want {prompt?, chosen, rejected, margin?} or {user_input, responses_and_scores}"}
		}
		for _, p := range pairs {
			if slices.Equal(p.Chosen, p.Rejected) {
				return 0, &RowError{Row: r.N, Reason: "identical responses", Detail: "chosen and rejected tokenize alike"}
			}
		}
		out = append(out, pairs...)
		return len(pairs), nil
	})
	st.Truncated = truncated
	return out, st, err
}

// comparisonPairs makes the pairs of one comparison row: every two responses with different scores, the
// higher-scored one chosen, in the row's order.
func comparisonPairs(f fields, tmpl string, withMargin bool, scale float64,
	encode func(string, int) []int32) ([]Pair, error) {
	prompt, err := f.str("user_input", true)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(f.m["responses_and_scores"], &raw); err != nil || !f.has("responses_and_scores") {
		return nil, &RowError{Row: f.row, Reason: "wrong type",
			Detail: fmt.Sprintf(`"responses_and_scores" is %s, want an array`, jsonKind(f.m["responses_and_scores"]))}
	}
	type scored struct {
		toks  []int32
		score float64
	}
	var rs []scored
	for i, e := range raw {
		ef, err := decodeObject(Row{N: f.row, JSON: e})
		if err != nil {
			return nil, &RowError{Row: f.row, Reason: "wrong type", Detail: fmt.Sprintf("response %d is not an object", i)}
		}
		resp, err := ef.str("response", true)
		if err != nil {
			return nil, fmt.Errorf("response %d: %w", i, err)
		}
		if !ef.has("score") {
			return nil, &RowError{Row: f.row, Reason: "missing field", Detail: fmt.Sprintf("response %d has no \"score\"", i)}
		}
		sc, err := ef.num("score")
		if err != nil {
			return nil, err
		}
		if _, err := ef.str("source", false); err != nil {
			return nil, err
		}
		text, start, _ := renderReward(tmpl, prompt, resp)
		rs = append(rs, scored{encode(text, start), sc})
	}
	var pairs []Pair
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			a, b := rs[i], rs[j]
			if a.score == b.score {
				continue
			}
			if a.score < b.score {
				a, b = b, a
			}
			p := Pair{Chosen: a.toks, Rejected: b.toks}
			if withMargin {
				p.Margin = scale * (a.score - b.score)
			}
			pairs = append(pairs, p)
		}
	}
	if len(pairs) == 0 {
		return nil, &RowError{Row: f.row, Reason: "no pair",
			Detail: fmt.Sprintf("%d responses without two different scores", len(rs))}
	}
	return pairs, nil
}
