package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type refEntry struct {
	Template     string  `json:"template"`
	Conversation int     `json:"conversation"`
	Output       *string `json:"output"`
	Error        *string `json:"error"`
}

type testCases struct {
	Tokens        map[string]struct{ BOS, EOS string } `json:"tokens"`
	Conversations [][]Message                          `json:"conversations"`
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadReference(t *testing.T) (testCases, map[string][]refEntry) {
	var cases testCases
	loadJSON(t, "cases.json", &cases)
	var ref map[string][]refEntry
	loadJSON(t, "reference.json", &ref)
	if len(cases.Conversations) == 0 || len(ref["jinja"]) == 0 || len(ref["builtin"]) == 0 {
		t.Fatal("empty test data")
	}
	return cases, ref
}

// The built-in templates match prompts computed by scripts/chat_reference.py from the published definitions
// (Stanford Alpaca PROMPT_DICT, FastChat vicuna_v1.1, Meta's Llama-2-chat and ChatML Jinja templates run by
// Python jinja2).
func TestBuiltinsMatchReference(t *testing.T) {
	cases, ref := loadReference(t)
	seen := map[string]int{}
	for _, e := range ref["builtin"] {
		tmpl, err := Lookup(e.Template)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Render(cases.Conversations[e.Conversation])
		if e.Error != nil {
			if !errors.Is(err, ErrConversation) {
				t.Errorf("%s conversation %d: got %q, %v; want an ErrConversation (reference: %s)", e.Template, e.Conversation, got, err, *e.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s conversation %d: %v", e.Template, e.Conversation, err)
			continue
		}
		if got != *e.Output {
			t.Errorf("%s conversation %d:\ngot  %q\nwant %q", e.Template, e.Conversation, got, *e.Output)
		}
		seen[e.Template]++
	}
	for _, name := range Names() {
		if name == "story" {
			continue // bestofn's own, with no published definition to compare with: TestStoryTemplate
		}
		if seen[name] < 3 {
			t.Errorf("only %d reference prompts checked for %s", seen[name], name)
		}
	}
}

// Real chat templates rendered by gonja match Python jinja2 rendering them the way transformers does.
func TestJinjaMatchesPythonJinja2(t *testing.T) {
	cases, ref := loadReference(t)
	for _, e := range ref["jinja"] {
		src, err := os.ReadFile(filepath.Join("testdata", "templates", e.Template+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		tok, ok := cases.Tokens[e.Template]
		if !ok {
			t.Fatalf("no tokens for %s", e.Template)
		}
		tmpl, err := Jinja(string(src), tok.BOS, tok.EOS)
		if err != nil {
			t.Fatalf("%s: %v", e.Template, err)
		}
		got, err := tmpl.Render(cases.Conversations[e.Conversation])
		if e.Error != nil {
			if !errors.Is(err, ErrTemplateException) || !strings.Contains(err.Error(), *e.Error) {
				t.Errorf("%s conversation %d: got %q, %v; want the template's exception %q", e.Template, e.Conversation, got, err, *e.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s conversation %d: %v", e.Template, e.Conversation, err)
			continue
		}
		// Templates that call strftime_now insert today's date; compare with it masked.
		if strings.Contains(*e.Output, "Today Date: ") && !strings.Contains(got, "Today Date: "+time.Now().Format("02 Jan 2006")) {
			t.Errorf("%s conversation %d: strftime_now date missing: %q", e.Template, e.Conversation, got)
		}
		want := todayDate.ReplaceAllString(*e.Output, "Today Date: <date>")
		got = todayDate.ReplaceAllString(got, "Today Date: <date>")
		if got != want {
			t.Errorf("%s conversation %d:\ngot  %q\nwant %q", e.Template, e.Conversation, got, want)
		}
	}
}

var todayDate = regexp.MustCompile(`Today Date: \d{2} [A-Z][a-z]{2} \d{4}`)

// The paper's prompts, written out by hand from Algorithm 1 / Stanford Alpaca, and the documented mapping of
// conversations onto them.
func TestAlpacaExact(t *testing.T) {
	const noInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
	const withInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n"
	tmpl, err := Lookup("alpaca")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		msgs []Message
		want string
	}{
		{"instruction", []Message{{"user", "Give three tips for staying healthy."}},
			noInput + "### Instruction:\nGive three tips for staying healthy.\n\n### Response:"},
		{"instruction and input", []Message{{"user", "Classify the sentiment."}, {"user", "I loved it."}},
			withInput + "### Instruction:\nClassify the sentiment.\n\n### Input:\nI loved it.\n\n### Response:"},
		{"empty input counts as none", []Message{{"user", "Say hi."}, {"user", ""}},
			noInput + "### Instruction:\nSay hi.\n\n### Response:"},
		// A system message is the system prompt in place of the preamble, as in Ollama's Alpaca-format
		// Modelfiles: TEMPLATE "{{ .System }}\n\n### Instruction:\n{{ .Prompt }}\n\n### Response:".
		{"system replaces the preamble", []Message{{"system", "You are GPT-4."}, {"user", "Say hi."}},
			"You are GPT-4.\n\n### Instruction:\nSay hi.\n\n### Response:"},
		{"systems joined", []Message{{"system", "Be brief."}, {"user", "Say hi."}, {"system", "Be kind."}, {"user", "in French"}},
			"Be brief.\n\nBe kind.\n\n### Instruction:\nSay hi.\n\n### Input:\nin French\n\n### Response:"},
		{"empty system counts as none", []Message{{"system", ""}, {"user", "Say hi."}},
			noInput + "### Instruction:\nSay hi.\n\n### Response:"},
		{"multi-turn", []Message{{"user", "Name a color."}, {"assistant", "Blue."}, {"user", "Another one?"}},
			noInput + "### Instruction:\nName a color.\n\n### Response:\nBlue.\n\n### Instruction:\nAnother one?\n\n### Response:"},
		{"multi-turn with input", []Message{{"user", "Hi"}, {"user", "there"}, {"assistant", "Hello."}, {"user", "Translate."}, {"user", "Bonjour"}},
			withInput + "### Instruction:\nHi\n\nthere\n\n### Response:\nHello.\n\n### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:"},
	}
	for _, c := range cases {
		got, err := tmpl.Render(c.msgs)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestLookupAndConversationErrors(t *testing.T) {
	_, err := Lookup("alpacca")
	if !errors.Is(err, ErrUnknownTemplate) {
		t.Fatalf("unknown name: %v", err)
	}
	for _, n := range Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %q", err, n)
		}
	}
	if !strings.HasPrefix(err.Error(), "chat: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	bad := [][]Message{
		nil,
		{{"tool", "x"}, {"user", "y"}},
		{{"user", "x"}, {"assistant", "y"}},
		{{"system", "x"}},
	}
	for _, name := range Names() {
		tmpl, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if tmpl.Name() != name {
			t.Errorf("Lookup(%q).Name() = %q", name, tmpl.Name())
		}
		for i, msgs := range bad {
			if _, err := tmpl.Render(msgs); !errors.Is(err, ErrConversation) {
				t.Errorf("%s: bad conversation %d: %v", name, i, err)
			}
		}
	}
}

func TestJinjaErrors(t *testing.T) {
	for _, src := range []string{"", "   ", "{% for m in messages %}", "{{ messages[0]['content'] ", "{% include 'x' %}{% endfor %}"} {
		if _, err := Jinja(src, "", ""); err == nil {
			t.Errorf("%q: no error", src)
		} else if !strings.HasPrefix(err.Error(), "chat: ") {
			t.Errorf("%q: error %q lacks the package prefix", src, err)
		}
	}
	// No file access from a template.
	tmpl, err := Jinja("{% include '/etc/hostname' %}", "", "")
	if err == nil {
		if out, err := tmpl.Render([]Message{{"user", "x"}}); err == nil {
			t.Errorf("include read a file: %q", out)
		}
	}
	tmpl, err = Jinja("{{ raise_exception('nope') }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render([]Message{{"user", "x"}}); !errors.Is(err, ErrTemplateException) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("raise_exception: %v", err)
	}
	if _, err := tmpl.Render(nil); !errors.Is(err, ErrConversation) {
		t.Errorf("no messages: %v", err)
	}
}

// A parsed template can be rendered from many goroutines at once.
func TestJinjaConcurrent(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "templates", "llama2.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Jinja(string(src), "<s>", "</s>")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Lookup("llama2")
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}}
	wantText, _ := want.Render(msgs)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if got, err := tmpl.Render(msgs); err != nil || got != wantText {
					t.Errorf("concurrent render: %q %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSelect(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "templates", "chatml.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, reason, err := Select(string(src), "alpaca", "", "")
	if err != nil || tmpl.Name() != "gguf" || reason != "" {
		t.Errorf("usable GGUF template: %v %q %v", tmpl, reason, err)
	}
	for _, c := range []struct{ name, src string }{
		{"none", ""},
		{"syntax error", "{% if %}"},
		{"raises", "{{ raise_exception('unsupported') }}"},
	} {
		tmpl, reason, err := Select(c.src, "vicuna", "", "")
		if err != nil || tmpl.Name() != "vicuna" || reason == "" {
			t.Errorf("%s: %v %q %v, want the vicuna fallback with a reason", c.name, tmpl, reason, err)
		}
	}
	if _, _, err := Select(string(src), "nope", "", ""); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown fallback: %v", err)
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2024, time.July, 26, 15, 4, 5, 0, time.UTC)
	got := strftime(at, "%d %b %Y %H:%M:%S %I%p %A %B %a %j %y %m %% %Q")
	if want := "26 Jul 2024 15:04:05 03PM Friday July Fri 208 24 07 % %Q"; got != want {
		t.Errorf("strftime = %q, want %q", got, want)
	}
	tmpl, err := Jinja(`{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}{{ date_string }}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render([]Message{{"user", "x"}})
	if err != nil || !regexp.MustCompile(`^\d{2} [A-Z][a-z]{2} \d{4}$`).MatchString(out) {
		t.Errorf("strftime_now in a template: %q %v", out, err)
	}
}

func TestAddBOS(t *testing.T) {
	cases := []struct {
		text, bos string
		def, want bool
	}{
		{"<s>[INST] hi [/INST]", "<s>", true, false},
		{"Below is an instruction", "<s>", true, true},
		{"<|im_start|>user", "<s>", false, false},
		{"x", "", true, true},
	}
	for _, c := range cases {
		if got := AddBOS(c.text, c.bos, c.def); got != c.want {
			t.Errorf("AddBOS(%q, %q, %v) = %v", c.text, c.bos, c.def, got)
		}
	}
}

func ExampleLookup() {
	tmpl, _ := Lookup("alpaca")
	prompt, _ := tmpl.Render([]Message{{Role: "user", Content: "Give three tips for staying healthy."}})
	fmt.Println(prompt)
	// Output:
	// Below is an instruction that describes a task. Write a response that appropriately completes the request.
	//
	// ### Instruction:
	// Give three tips for staying healthy.
	//
	// ### Response:
}
