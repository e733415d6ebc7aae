package rules

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func mustNew(t *testing.T, id string, kw map[string]any) Instruction {
	t.Helper()
	in, err := New(id, kw)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestChecks(t *testing.T) {
	story := "Once upon a time, there was a cat named Tom. Tom had a red ball. He played with it all day and smiled. The end."
	cases := []struct {
		id     string
		kw     map[string]any
		answer string
		strict bool
	}{
		{"keywords:existence", map[string]any{"keywords": []any{"ball", "cat"}}, story, true},
		{"keywords:existence", map[string]any{"keywords": []any{"ball"}}, "He had a balloon.", false}, // whole words
		{"keywords:existence", map[string]any{"keywords": []any{"The End"}}, story, true},             // phrases, any case
		{"keywords:forbidden_words", map[string]any{"forbidden_words": []any{"dog"}}, story, true},
		{"keywords:forbidden_words", map[string]any{"forbidden_words": []any{"TOM"}}, story, false},
		{"keywords:frequency", map[string]any{"keyword": "tom", "frequency": 2.0, "relation": "at least"}, story, true},
		{"keywords:frequency", map[string]any{"keyword": "tom", "frequency": 2.0, "relation": "less than"}, story, false},
		{"keywords:letter_frequency", map[string]any{"letter": "z", "let_frequency": 1, "let_relation": "less than"}, story, true},
		{"length_constraints:number_words", map[string]any{"num_words": 80, "relation": "less than"}, story, true},
		{"length_constraints:number_words", map[string]any{"num_words": 24, "relation": "less than"}, story, false}, // 24 words
		{"length_constraints:number_words", map[string]any{"num_words": 24, "relation": "at least"}, story, true},
		{"length_constraints:number_sentences", map[string]any{"num_sentences": 4, "relation": "at least"}, story, true},
		{"length_constraints:number_sentences", map[string]any{"num_sentences": 2, "relation": "less than"}, "Mr. Smith met Dr. J. Brown at 3.30 p.m! Then he left.", false},
		{"length_constraints:number_sentences", map[string]any{"num_sentences": 3, "relation": "less than"}, "Mr. Smith met Dr. J. Brown at 3.30! Then he left.", true},
		{"length_constraints:number_paragraphs", map[string]any{"num_paragraphs": 2}, "One.\n***\nTwo.", true},
		{"length_constraints:number_paragraphs", map[string]any{"num_paragraphs": 2}, "One.\n***\n\n***\nTwo.", false},
		{"detectable_format:json_format", nil, "```json\n{\"a\": 1}\n```", true},
		{"detectable_format:json_format", nil, "{\"a\": 1,}", false},
		{"detectable_format:json_keys", map[string]any{"keys": []any{"name", "age"}}, `{"name": "Tom", "age": 3}`, true},
		{"detectable_format:json_keys", map[string]any{"keys": []any{"name", "age"}}, `{"name": "Tom"}`, false},
		{"detectable_format:json_keys", map[string]any{"keys": []any{"name"}}, `["name"]`, false},
		{"detectable_format:title", nil, "<<The Cat>>\nOnce upon a time.", true},
		{"detectable_format:title", nil, "<< >> no title", false},
		{"detectable_format:number_bullet_lists", map[string]any{"num_bullets": 2}, "* one\n* two", true},
		{"detectable_format:number_bullet_lists", map[string]any{"num_bullets": 2}, "* one\n- two\n- three", false},
		{"detectable_format:number_highlighted_sections", map[string]any{"num_highlights": 2}, "*a* and **b**", true},
		{"detectable_content:postscript", map[string]any{"postscript_marker": "P.S."}, "Hi.\n\nP.S. bye", true},
		{"detectable_content:postscript", map[string]any{"postscript_marker": "P.S."}, "Hi. PS bye", false},
		{"detectable_content:number_placeholders", map[string]any{"num_placeholders": 2}, "Dear [name], at [address]", true},
		{"detectable_content:name", map[string]any{"name": "Tom"}, story, true},
		{"detectable_content:name", map[string]any{"name": "Tom"}, "tom and Tommy", false},
		{"startend:end_checker", map[string]any{"end_phrase": "The end."}, story + "\n", true},
		{"startend:end_checker", map[string]any{"end_phrase": "The end."}, "The end. Or is it?", false},
		{"startend:start_checker", map[string]any{"start_phrase": "Once upon a time"}, "  " + story, true},
		{"startend:quotation", nil, `"quoted"`, true},
		{"change_case:english_lowercase", nil, "all lower, ok", true},
		{"change_case:english_lowercase", nil, "Not lower", false},
		{"change_case:english_capital", nil, "ALL CAPS 42", true},
		{"change_case:capital_word_frequency", map[string]any{"capital_frequency": 2, "capital_relation": "at least"}, "THE BIG dog", true},
		{"punctuation:no_comma", nil, story, false},
		{"punctuation:no_comma", nil, "No comma here.", true},
		{"combination:repeat_prompt", map[string]any{"prompt_to_repeat": "Tell me a story."}, "Tell me a story. Once...", true},
		{"sentiment:ends_happily", nil, story, true},
		{"sentiment:ends_happily", nil, "Tom lost his ball. He cried. The end.", false},
		{"sentiment:ends_happily", nil, "Tom lost his ball. He was not happy.", false},
		{"sentiment:ends_happily", nil, "Tom lost his ball. Then he found it and hugged his mom!", true},
		{"sentiment:ends_happily", nil, "Tom was happy. But then the ball broke and he was sad.", false},
	}
	for i, c := range cases {
		in := mustNew(t, c.id, c.kw)
		got := in.Check(c.answer)
		if got.Followed != c.strict {
			t.Errorf("case %d %s %v on %q: followed %v, want %v", i, c.id, c.kw, c.answer, got.Followed, c.strict)
		}
		if got.Followed && got.Credit != 1 || got.Credit < 0 || got.Credit > 1 {
			t.Errorf("case %d %s: credit %v", i, c.id, got.Credit)
		}
		if loose := in.CheckLoose(c.answer); c.strict && !loose.Followed {
			t.Errorf("case %d %s: strict follows but loose does not", i, c.id)
		}
	}
}

func TestWordsAndSentences(t *testing.T) {
	if got := Words("Don't stop-believing, 3 cats_x!"); !slices.Equal(got, []string{"Don", "t", "stop", "believing", "3", "cats_x"}) {
		t.Errorf("Words = %q", got)
	}
	got := Sentences(`He said "hi!" Then Mr. Lee left... Was it 3.5 p.m.? Yes! e.g. this`)
	want := []string{`He said "hi!"`, "Then Mr. Lee left...", "Was it 3.5 p.m.?", "Yes!", "e.g. this"}
	if !slices.Equal(got, want) {
		t.Errorf("Sentences = %q\nwant %q", got, want)
	}
}

func TestLoose(t *testing.T) {
	in := mustNew(t, "startend:start_checker", map[string]any{"start_phrase": "Once upon a time"})
	ans := "Sure! Here is a story:\nOnce upon a time there was a cat."
	if in.Check(ans).Followed || !in.CheckLoose(ans).Followed {
		t.Error("a chatty first line: strict must fail and loose pass")
	}
	end := mustNew(t, "startend:end_checker", map[string]any{"end_phrase": "The end."})
	if ans := "Once upon a time.\n**The end.**"; end.Check(ans).Followed || !end.CheckLoose(ans).Followed {
		t.Error("markdown emphasis: strict must fail and loose pass")
	}
}

func TestParseErrors(t *testing.T) {
	bad := []struct {
		id   string
		kw   map[string]any
		want string
	}{
		{"keywords:nonsense", nil, "unknown instruction id"},
		{"length_constraints:number_words", map[string]any{"num_words": 10}, `"relation": missing`},
		{"length_constraints:number_words", map[string]any{"num_words": 10, "relation": "exactly"}, `must be "less than" or "at least"`},
		{"length_constraints:number_words", map[string]any{"num_words": "ten", "relation": "at least"}, "must be a number"},
		{"length_constraints:number_words", map[string]any{"num_words": 2.5, "relation": "at least"}, "whole number"},
		{"keywords:existence", map[string]any{"keywords": []any{}}, "must not be empty"},
		{"keywords:existence", map[string]any{"keywords": "ball"}, "list of strings"},
		{"punctuation:no_comma", map[string]any{"extra": 1}, `unknown argument "extra"`},
	}
	for _, c := range bad {
		_, err := New(c.id, c.kw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%s, %v) = %v, want an error containing %q", c.id, c.kw, err, c.want)
		}
	}
	if _, err := Parse([]string{"punctuation:no_comma"}, []map[string]any{{}, {}}); err == nil {
		t.Error("more kwargs than ids: no error")
	}
}

// IFEval's published rows carry every argument of every instruction, mostly null; they parse as they are.
func TestParseIFEvalRow(t *testing.T) {
	row := `{"key": 1000, "prompt": "Write a 300+ word summary of the wikipedia page... Do not use any commas and highlight at least 3 sections that has titles in markdown format, for example *highlighted section part 1*, *highlighted section part 2*, *highlighted section part 3*.",
	"instruction_id_list": ["punctuation:no_comma", "detectable_format:number_highlighted_sections", "length_constraints:number_words"],
	"kwargs": [{}, {"num_highlights": 3, "relation": null, "num_words": null}, {"num_highlights": null, "relation": "at least", "num_words": 300}]}`
	var q struct {
		Prompt string `json:"prompt"`
		Spec
	}
	if err := json.Unmarshal([]byte(row), &q); err != nil {
		t.Fatal(err)
	}
	ins, err := q.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 3 || ins[2].String() != "at least 300 words" {
		t.Fatalf("instructions %v", ins)
	}
	ans := strings.Repeat("word ", 300) + "*one* *two* *three*"
	o := Evaluate(ins, ans)
	if !AllFollowed(o.Strict) {
		t.Errorf("a compliant answer: %+v", o.Strict)
	}
	o = Evaluate(ins, "Short, with a comma.")
	if FractionFollowed(o.Strict) != 0 {
		t.Errorf("a failing answer: %+v", o.Strict)
	}
	// Round trip through the machine-readable form.
	b, _ := json.Marshal(SpecOf(ins))
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, err := back.Instructions()
	if err != nil || len(again) != 3 || again[2].String() != ins[2].String() {
		t.Errorf("round trip %s: %v %v", b, again, err)
	}
}

func TestFromText(t *testing.T) {
	cases := []struct {
		text string
		want []string // String() of each instruction, in FromText's order
	}{
		{"Write a story about a cat named Tom, under 80 words, that mentions a ball and ends with 'The end.'",
			[]string{"fewer than 80 words", "names Tom", `mentions "ball"`, `ends with "The end."`}},
		{"Tell a story about a dog called Max Power that ends happily. Use at most 3 sentences and do not use the word 'sad'.",
			[]string{"fewer than 4 sentences", "names Max Power", `does not use "sad"`, "ends happily"}},
		{"Write at least fifty words about a kite. Include the words \"wind\" and \"sky\", and start with \"One day\".",
			[]string{"at least 50 words", `mentions "wind", "sky"`, `starts with "One day"`}},
		{"Answer in JSON with the keys name and age. No commas.",
			[]string{`a JSON object with the keys "name", "age"`, "no commas"}},
		{"How can I improve my time management skills?", nil},
		{"Write no less than 30 words and not more than 3 sentences.", []string{"at least 30 words", "fewer than 4 sentences"}},
		{"Write a short story about a dog whose name is Rex. Mention a kite. Use fewer than 40 words. End the story with \"The end.\"",
			[]string{"fewer than 40 words", "names Rex", `mentions "kite"`, `ends with "The end."`}},
		{"Begin your story with 'One sunny day' and do not mention cats. No more than 5 sentences.",
			[]string{"fewer than 6 sentences", `does not use "cats"`, `starts with "One sunny day"`}},
		{"Write a poem all in lowercase with a title in double angular brackets, like <<title>>. Add a P.S. at the end.",
			[]string{"all lowercase", "a title in <<double angular brackets>>", "a postscript starting with P.S."}},
	}
	for _, c := range cases {
		var got []string
		for _, in := range FromText(c.text) {
			got = append(got, in.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("FromText(%q)\n got %q\nwant %q", c.text, got, c.want)
		}
	}
}

func TestScorer(t *testing.T) {
	prompt := "Write a story about a cat named Tom, under 20 words, that mentions a ball and ends with 'The end.'"
	cands := []string{
		"Tom the cat found a red ball. He played all day. The end.",                                                        // all 4
		"Tom the cat found a red ball. He played all day.",                                                                 // 3 of 4
		"Once upon a time there was a girl named Lily. She liked to play in the park.",                                     // 1 of 4 (length)
		"Tom the cat found a red ball and he played with it all day long in the big green park with his friends. The end.", // 3 of 4, too long
	}
	s := &Scorer{}
	scores, err := s.Score(context.Background(), prompt, cands)
	if err != nil {
		t.Fatal(err)
	}
	if !(scores[0] > scores[1] && scores[1] > scores[2] && scores[3] > scores[2]) {
		t.Errorf("scores %v: want the compliant story first and the off-topic one last", scores)
	}
	if scores[0] < 1 || scores[0] > 1+TieBreak+1e-6 {
		t.Errorf("a fully compliant answer scores %v, want 1 + TieBreak", scores[0])
	}
	// Both candidates 1 and 3 follow 3 of 4; the tie-breaker prefers the one nearer to the missed rule:
	// candidate 1 misses "The end." entirely (credit 0), candidate 3 is 25 words for "under 20" (credit > 0).
	if !(scores[3] > scores[1]) {
		t.Errorf("tie-breaker: %v vs %v", scores[3], scores[1])
	}
	// Known prompts use their machine-readable rules instead of the text.
	s.Known = map[string][]Instruction{prompt: {mustNew(t, "keywords:existence", map[string]any{"keywords": []any{"Lily"}})}}
	scores, _ = s.Score(context.Background(), prompt, cands)
	if scores[2] < 1 || scores[0] >= 1 {
		t.Errorf("known rules: %v", scores)
	}
	// No instructions: all zero.
	scores, _ = (&Scorer{}).Score(context.Background(), "Hello?", cands)
	for _, v := range scores {
		if v != 0 {
			t.Errorf("no instructions: %v", scores)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Scorer{}).Score(ctx, prompt, cands); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestAccuracy(t *testing.T) {
	ins := FromText("A story named Tom, under 10 words, ending with 'The end.'")
	var a Accuracy
	a.Add(Evaluate(ins, "Tom ran. The end."))                                    // 3/3
	a.Add(Evaluate(ins, "Tom ran far away from home today and never came back")) // names only: 1/3
	a.Add(Evaluate(ins, "Sure!\nTom ran. The end."))                             // strict 2/3 (11 words? no: 5 words), loose 3/3
	a.Add(Evaluate(nil, "ignored"))
	r := a.Rates()
	if a.Prompts != 3 || a.Instructions != 9 {
		t.Fatalf("counts %+v", a)
	}
	if r.PromptStrict != 2.0/3 || r.InstructionStrict != 7.0/9 || r.PromptLoose != 2.0/3 || r.InstructionLoose != 7.0/9 {
		t.Errorf("rates %+v (counts %+v)", r, a)
	}
}
