package train

import (
	"compress/gzip"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const hhRLHF = "../../shared/data/hh_rlhf_harmless_base_test.jsonl.gz"

func storiesTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	ck, err := weights.Open(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tok, err := tokenizer.FromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func rowsOf(t *testing.T, text string) []Row {
	t.Helper()
	rows, err := ReadRows(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestReadRows(t *testing.T) {
	rows := rowsOf(t, "\n{\"a\":1}\n\n  {\"b\":2}\n")
	if len(rows) != 2 || rows[0].N != 2 || rows[1].N != 4 || string(rows[1].JSON) != `{"b":2}` {
		t.Errorf("JSON Lines: %+v", rows)
	}
	rows = rowsOf(t, " [{\"a\":1}, {\"b\":2}, 3]")
	if len(rows) != 3 || rows[2].N != 3 || string(rows[2].JSON) != "3" {
		t.Errorf("JSON array: %+v", rows)
	}
	if _, err := ReadRows(strings.NewReader("[{\"a\":1},")); err == nil {
		t.Error("a truncated JSON array was accepted")
	}
}

func TestSFTExamplesAlpaca(t *testing.T) {
	tok := storiesTokenizer(t)
	rows := rowsOf(t, `{"instruction":"Tell a story.","input":"","output":"Once upon a time."}
{"instruction":"Name the cat.","input":"The cat is grey.","output":"Tom."}
{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}`)
	exs, st, err := SFTExamples(rows, tok, PrepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 3 || st.Produced != 3 || st.Rows != 3 {
		t.Fatalf("%d examples, stats %+v", len(exs), st)
	}
	alpaca, _ := chat.Lookup("alpaca")
	for i, c := range []struct {
		msgs     []chat.Message
		response string
	}{
		{[]chat.Message{{Role: "user", Content: "Tell a story."}}, "Once upon a time."},
		{[]chat.Message{{Role: "user", Content: "Name the cat."}, {Role: "user", Content: "The cat is grey."}}, "Tom."},
		{[]chat.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}, "Hello."},
	} {
		prompt, _ := alpaca.Render(c.msgs)
		if i == 1 && !strings.Contains(prompt, "### Input:\nThe cat is grey.") {
			t.Errorf("the input is not rendered as Alpaca's input section: %q", prompt)
		}
		want := append(tok.Encode(prompt+c.response, true, true), tok.EOS())
		ex := exs[i]
		if !equalInt32(ex.Tokens, want) {
			t.Errorf("example %d: tokens %v, want %v", i, ex.Tokens, want)
			continue
		}
		np := len(tok.Encode(prompt, true, true))
		var loss []int32
		for j, l := range ex.Loss {
			if l != (j >= np) {
				t.Errorf("example %d: loss mask at %d is %v (prompt has %d tokens)", i, j, l, np)
				break
			}
			if l {
				loss = append(loss, ex.Tokens[j])
			}
		}
		if got := tok.Decode(loss[:len(loss)-1]); strings.TrimSpace(got) != c.response || loss[len(loss)-1] != tok.EOS() {
			t.Errorf("example %d: loss on %q + %d, want %q + EOS", i, got, loss[len(loss)-1], c.response)
		}
	}
}

func TestBadRows(t *testing.T) {
	tok := storiesTokenizer(t)
	sft := `{"instruction":"a","output":"b"}
{"instruction":"a"}
{"instruction":"","output":"b"}
{"instruction":"a","output":5}
[1,2]
{"messages":[{"role":"user","content":"hi"}]}
{"text":"x"}
`
	cases := []struct {
		row    int
		reason string
	}{{2, "missing field"}, {3, "empty text"}, {4, "wrong type"},
		{5, "not a JSON object"}, {6, "bad conversation"}, {7, "unknown format"}}
	rows := rowsOf(t, sft)
	for _, c := range cases {
		_, _, err := SFTExamples([]Row{rows[0], rows[c.row-1]}, tok, PrepOptions{})
		var re *RowError
		if !errors.As(err, &re) || re.Row != c.row || re.Reason != c.reason {
			t.Errorf("row %d: error %v, want a RowError for row %d (%s)", c.row, err, c.row, c.reason)
		}
	}
	exs, st, err := SFTExamples(rows, tok, PrepOptions{SkipBadRows: true})
	if err != nil || len(exs) != 1 || st.SkippedRows() != 6 || st.Skipped["wrong type"] != 1 {
		t.Errorf("skipping: %d examples, stats %+v, %v", len(exs), st, err)
	}

	pref := `{"chosen":"\n\nHuman: hi\n\nAssistant: hello","rejected":"\n\nHuman: hi\n\nAssistant: go away"}
{"chosen":"same","rejected":"same"}
{"prompt":"q","chosen":"a","rejected":"b","margin":"big"}
{"user_input":"q","responses_and_scores":[{"response":"a","score":3},{"response":"b","score":3}]}
{"user_input":"q","responses_and_scores":[{"response":"a"},{"response":"b","score":3}]}
{"user_input":"q","responses_and_scores":"a"}
{"prompt":"q","chosen":"","rejected":"b"}
`
	cases = []struct {
		row    int
		reason string
	}{{2, "identical responses"}, {3, "wrong type"}, {4, "no pair"},
		{5, "missing field"}, {6, "wrong type"}, {7, "empty text"}}
	rows = rowsOf(t, pref)
	for _, c := range cases {
		_, _, err := PreferencePairs([]Row{rows[0], rows[c.row-1]}, tok, PrepOptions{})
		var re *RowError
		if !errors.As(err, &re) || re.Row != c.row || re.Reason != c.reason {
			t.Errorf("preference row %d: error %v, want a RowError for row %d (%s)", c.row, err, c.row, c.reason)
		}
	}
	pairs, st, err := PreferencePairs(rows, tok, PrepOptions{SkipBadRows: true})
	if err != nil || len(pairs) != 1 || st.SkippedRows() != 6 {
		t.Errorf("skipping: %d pairs, stats %+v, %v", len(pairs), st, err)
	}
}

func TestComparisonPairs(t *testing.T) {
	tok := storiesTokenizer(t)
	rows := rowsOf(t, `[{"user_input":"Tell a story.","responses_and_scores":[
  {"response":"Once upon a time.","score":9,"source":"gpt4"},
  {"response":"No.","score":2,"source":"icm-1.3b"},
  {"response":"A story.","score":9,"source":"text-davinci-003"}]}]`)
	pairs, st, err := PreferencePairs(rows, tok, PrepOptions{ScoreMargin: true, MarginScale: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// 9 vs 2 twice; the two 9s make no pair.
	if len(pairs) != 2 || st.Produced != 2 {
		t.Fatalf("%d pairs from one row with scores 9, 2, 9", len(pairs))
	}
	enc := RewardEncoder{Tok: tok}
	text, start, _ := renderReward(DefaultRewardTemplate, "Tell a story.", "Once upon a time.")
	want, _ := enc.EncodeText(text, start)
	if !equalInt32(pairs[0].Chosen, want) || pairs[0].Margin != 3.5 {
		t.Errorf("first pair: chosen %v margin %g, want %v and 3.5", pairs[0].Chosen, pairs[0].Margin, want)
	}
	if got := tok.Decode(pairs[1].Rejected); !strings.HasSuffix(got, "Assistant: No.") {
		t.Errorf("second pair's rejected side decodes to %q", got)
	}
}

// TestHHRLHFPairs reads real HH-RLHF rows (implicit prompts): every pair keeps its dialogue's text and the
// response split leaves the shared prompt with both sides; truncation keeps the response's start.
func TestHHRLHFPairs(t *testing.T) {
	tok := storiesTokenizer(t)
	f, err := os.Open(hhRLHF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2312 {
		t.Fatalf("%d rows, want 2312", len(rows))
	}
	rows = rows[:200]
	pairs, st, err := PreferencePairs(rows, tok, PrepOptions{MaxLen: 128, SkipBadRows: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pairs from %d rows, %d sides truncated, skipped %v", len(pairs), st.Rows, st.Truncated, st.Skipped)
	if st.Produced+st.SkippedRows() != len(rows) || len(pairs) < 190 {
		t.Errorf("%d pairs and %d skips from %d rows", len(pairs), st.SkippedRows(), len(rows))
	}
	for i, p := range pairs {
		if len(p.Chosen) > 128 || len(p.Rejected) > 128 || p.Chosen[0] != tok.BOS() {
			t.Fatalf("pair %d: lengths %d, %d (max 128), first token %d", i, len(p.Chosen), len(p.Rejected), p.Chosen[0])
		}
	}
	// Untruncated, a pair is the tokenization of its dialogue.
	pairs, _, err = PreferencePairs(rows[:5], tok, PrepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pairs {
		f, _ := decodeObject(rows[i])
		chosen, _ := f.str("chosen", true)
		if got := tok.Decode(pairs[i].Chosen); got != strings.TrimLeft(chosen, " ") && got != chosen {
			t.Errorf("pair %d decodes to %q, the row's chosen text is %q", i, truncateText(got, 80), truncateText(chosen, 80))
		}
	}
}

func TestImplicitPrompt(t *testing.T) {
	c := "\n\nHuman: hi\n\nAssistant: hello there"
	r := "\n\nHuman: hi\n\nAssistant: go away"
	if n := implicitPrompt(c, r); c[:n] != "\n\nHuman: hi\n\nAssistant:" {
		t.Errorf("prompt %q", c[:n])
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
