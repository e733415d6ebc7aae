package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/bestofn/bestofn/weights"
)

func mustID(t *testing.T, tk *Tokenizer, text string) int32 {
	t.Helper()
	id, ok := tk.TokenID(text)
	if !ok {
		t.Fatalf("no token %q", text)
	}
	return id
}

func TestSpecialTokensParsedOnlyWhenAsked(t *testing.T) {
	tk := loadT(t, vocabDir+"/ggml-vocab-llama-spm.gguf")
	hello := mustID(t, tk, "▁Hello")
	got := tk.Encode("<s>Hello</s>", false, true)
	if want := []int32{tk.BOS(), hello, tk.EOS()}; !slices.Equal(got, want) {
		t.Errorf("parseSpecial: %v, want %v", got, want)
	}
	plain := tk.Encode("<s>Hello</s>", false, false)
	if slices.Contains(plain, tk.BOS()) || slices.Contains(plain, tk.EOS()) {
		t.Errorf("special tokens parsed without parseSpecial: %v", plain)
	}
	if tk.Decode(plain) != "<s>Hello</s>" {
		t.Errorf("plain text round trip: %q", tk.Decode(plain))
	}
	withBOS := tk.Encode("Hello", true, false)
	if !slices.Equal(withBOS, []int32{tk.BOS(), hello}) {
		t.Errorf("addBOS: %v", withBOS)
	}
	if !tk.IsEOG(tk.EOS()) || tk.IsEOG(hello) || tk.IsEOG(tk.BOS()) {
		t.Errorf("IsEOG")
	}
	if tk.TokenText(hello) != "▁Hello" || tk.TokenText(-1) != "" || tk.TokenText(int32(tk.VocabSize())) != "" {
		t.Errorf("TokenText")
	}
}

// TestUserDefinedAndStrip builds a small vocabulary by hand: a user-defined token is matched even without
// parseSpecial; lstrip/rstrip attributes eat the spaces around a special token.
func TestUserDefinedAndStrip(t *testing.T) {
	s := newSpec(kindSPM)
	s.tokens = []string{"<unk>", "<s>", "</s>", "<tool>", "<sep>", "▁", "a", "b", "▁a", "ab", "▁ab"}
	s.scores = []float32{0, 0, 0, 0, 0, -1, -2, -3, -1, -0.5, -0.1}
	s.types = []tokenType{typeUnknown, typeControl, typeControl, typeUserDefined, typeControl, 1, 1, 1, 1, 1, 1}
	tk, err := s.build()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tk.Encode("ab<tool>ab", false, false), []int32{10, 3, 10}; !slices.Equal(got, want) {
		t.Errorf("user-defined: %v, want %v", got, want)
	}
	if got := tk.Encode("ab<sep>", false, false); slices.Contains(got, 4) {
		t.Errorf("control token matched without parseSpecial: %v", got)
	}
	tk.attrs[4] |= attrLStrip | attrRStrip
	if got, want := tk.Encode("ab  <sep>  ab", false, true), []int32{10, 4, 10}; !slices.Equal(got, want) {
		t.Errorf("strip: %v, want %v", got, want)
	}
	// "c" is not in the vocabulary and there are no byte tokens: it becomes <unk>.
	if got, want := tk.Encode("ac", false, false), []int32{8, 0}; !slices.Equal(got, want) {
		t.Errorf("unknown: %v, want %v", got, want)
	}
}

func TestWordPieceFraming(t *testing.T) {
	tk := loadT(t, vocabDir+"/ggml-vocab-bert-bge.gguf")
	ids := tk.Encode("Hello world", true, false)
	body := tk.Encode("Hello world", false, false)
	if len(ids) != len(body)+2 || ids[0] != tk.BOS() || ids[len(ids)-1] != tk.sep || !slices.Equal(ids[1:len(ids)-1], body) {
		t.Errorf("framing: %v around %v", ids, body)
	}
	if got := tk.Decode(body); got != " hello world" && got != "hello world" {
		t.Errorf("decode %q", got)
	}
}

// TestStoriesTokenizers checks that the stories260K GGUF vocabulary and its llama2.c tok512.bin agree.
func TestStoriesTokenizers(t *testing.T) {
	a := loadT(t, "../../shared/models/stories260K/stories260K.gguf")
	b := loadT(t, "../../shared/models/stories260K/tok512.bin")
	if a.VocabSize() != 512 || b.VocabSize() != 512 {
		t.Fatalf("vocab sizes %d %d", a.VocabSize(), b.VocabSize())
	}
	f, err := os.Open("../../shared/data/vicuna_question_80.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var q struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			t.Fatal(err)
		}
		x, y := a.Encode(q.Text, true, false), b.Encode(q.Text, true, false)
		if !slices.Equal(x, y) {
			t.Errorf("%q: gguf %v, tok512.bin %v", q.Text, x, y)
		}
		if a.Decode(x) != q.Text {
			t.Errorf("round trip %q", q.Text)
		}
		n++
	}
	if n != 80 {
		t.Fatalf("%d questions", n)
	}
}

func TestChatTemplateFromGGUF(t *testing.T) {
	md := openMeta(t, vocabDir+"/ggml-vocab-llama-spm.gguf")
	tk, err := FromMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ChatTemplate() != "" {
		t.Fatalf("template %q in a file without one", tk.ChatTemplate())
	}
	out := weights.NewMetadata()
	for _, k := range md.Keys() {
		v, _ := md.Value(k)
		out.Set(k, v)
	}
	const tmpl = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}"
	out.Set("tokenizer.chat_template", tmpl)
	var buf bytes.Buffer
	if err := weights.WriteGGUF(&buf, out, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.gguf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := loadT(t, p).ChatTemplate(); got != tmpl {
		t.Fatalf("ChatTemplate = %q", got)
	}
}

func TestFromMetadataErrors(t *testing.T) {
	base := func() *weights.Metadata {
		md := weights.NewMetadata()
		md.Set("tokenizer.ggml.model", "llama")
		md.Set("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "a"})
		return md
	}
	if _, err := FromMetadata(base()); err != nil {
		t.Fatalf("minimal vocabulary: %v", err)
	}
	cases := map[string]func(md *weights.Metadata){
		"no model":       func(md *weights.Metadata) { md.Delete("tokenizer.ggml.model") },
		"unknown model":  func(md *weights.Metadata) { md.Set("tokenizer.ggml.model", "rwkv") },
		"no tokens":      func(md *weights.Metadata) { md.Delete("tokenizer.ggml.tokens") },
		"short scores":   func(md *weights.Metadata) { md.Set("tokenizer.ggml.scores", []float32{0}) },
		"bad scores":     func(md *weights.Metadata) { md.Set("tokenizer.ggml.scores", "x") },
		"short types":    func(md *weights.Metadata) { md.Set("tokenizer.ggml.token_type", []int32{1}) },
		"duplicate":      func(md *weights.Metadata) { md.Set("tokenizer.ggml.tokens", []string{"<unk>", "a", "a"}) },
		"gpt2 no merges": func(md *weights.Metadata) { md.Set("tokenizer.ggml.model", "gpt2") },
		"unknown pre": func(md *weights.Metadata) {
			md.Set("tokenizer.ggml.model", "gpt2")
			md.Set("tokenizer.ggml.merges", []string{"a a"})
			md.Set("tokenizer.ggml.pre", "no-such-pre")
		},
		"bos missing": func(md *weights.Metadata) {
			md.Set("tokenizer.ggml.tokens", []string{"<unk>"})
			md.Set("tokenizer.ggml.add_bos_token", true)
		},
	}
	for name, mutate := range cases {
		md := base()
		mutate(md)
		_, err := FromMetadata(md)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		} else if !strings.HasPrefix(err.Error(), "tokenizer: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// TestTruncatedFiles cuts the real tokenizer files at many lengths: each prefix must load or fail with an
// error, never panic.
func TestTruncatedFiles(t *testing.T) {
	bin, err := os.ReadFile(llama2Dir + "/tokenizer.bin")
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(llama2Dir + "/tokenizer.model")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 3, 4, 5, 11, 12, 13, 100, 1000, 54321, len(bin) - 1} {
		if _, err := ParseLlama2C(bin[:n]); err == nil && n < 12 {
			t.Errorf("tokenizer.bin cut at %d loaded", n)
		}
	}
	for _, n := range []int{0, 1, 2, 3, 10, 100, 1000, 200000, len(model) - 7, len(model) - 1} {
		_, _ = ParseSentencePiece(model[:n])
	}
	if _, err := ParseSentencePiece([]byte("not a protobuf at all")); err == nil {
		t.Errorf("garbage parsed as tokenizer.model")
	}
	if _, err := ParseHFJSON([]byte(`{"model":{"type":"Unigram"}}`)); !errors.Is(err, ErrFormat) {
		t.Errorf("unigram tokenizer.json: %v", err)
	}
	if _, err := ParseHFJSON([]byte(`{"model":{"type":"BPE","vocab":{"a":1000000000},"merges":[]}}`)); !errors.Is(err, ErrFormat) {
		t.Errorf("huge id: %v", err)
	}
	if _, err := ParseHFJSON([]byte(`{"model":`)); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated json: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("missing file loaded")
	}
}

// TestASCIIFlags checks the ASCII fast path of flagsOf against the general one (Go's Unicode tables).
func TestASCIIFlags(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		if a, b := asciiFlagsOf(r), flagsOfSlow(r); a != b {
			t.Errorf("%q: fast %b, slow %b", r, a, b)
		}
	}
	if flagsOf('é')&flagLetter == 0 || flagsOf('٣')&flagNumber == 0 || flagsOf('\u3000')&flagWhitespace == 0 ||
		flagsOf(0x0301)&flagAccentMark == 0 || flagsOf(0xE000)&flagControl == 0 || flagsOf(outOfRange) != 0 {
		t.Errorf("non-ASCII flags")
	}
	if unicode.Is(unicode.White_Space, 0x1C) || flagsOf(0x1C)&flagWhitespace != 0 {
		t.Errorf("0x1C must not be whitespace (Python regex \\s)")
	}
}

// TestDeepseekRegexCodepoints guards the deepseek-llm class against Unicode normalization by editors: its
// ranges need the singleton-decomposing code points themselves.
func TestDeepseekRegexCodepoints(t *testing.T) {
	res, _ := preTokenizerRegexes("deepseek-llm")
	for _, r := range []rune{0x1F7D, 0x1FBE, 0x1FD3, 0x1FDB, 0x2126, 0x212A} {
		if !strings.ContainsRune(res[1], r) {
			t.Errorf("deepseek-llm letter class lost U+%04X", r)
		}
	}
	for _, pre := range []string{"default", "llama3", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
		"starcoder", "refact", "gpt-2", "gpt-neox", "qwen2", "poro-chat", "viking", "chatglm-bpe"} {
		res, ok := preTokenizerRegexes(pre)
		if !ok {
			t.Errorf("%s: unknown", pre)
			continue
		}
		if _, err := newPreTokenizer(res, false); err != nil {
			t.Errorf("%s: %v", pre, err)
		}
	}
}

// TestQwen2Split runs the qwen2 regex (regexp2 over collapsed text) on a sample whose llama.cpp split is easy to
// derive by hand from the regex: digits one at a time, letters with one leading non-letter, punctuation runs.
func TestQwen2Split(t *testing.T) {
	res, _ := preTokenizerRegexes("qwen2")
	p, err := newPreTokenizer(res, false)
	if err != nil {
		t.Fatal(err)
	}
	text := []rune("I've 123 apples,  really!\n\nÉté")
	var words []string
	start := 0
	for _, n := range p.split(text) {
		words = append(words, string(text[start:start+n]))
		start += n
	}
	want := []string{"I", "'ve", " ", "1", "2", "3", " apples", ",", " ", " really", "!\n\n", "Été"}
	if !slices.Equal(words, want) {
		t.Errorf("split %q, want %q", words, want)
	}
}

func TestTokenPiece(t *testing.T) {
	spm := loadT(t, "../../shared/tokenizers/llama2/tokenizer.model")
	the, ok := spm.TokenID("▁the")
	if !ok {
		t.Fatal("no ▁the in the llama2 vocabulary")
	}
	byteA, _ := spm.TokenID("<0x41>")
	for _, c := range []struct {
		id   int32
		want string
	}{{the, " the"}, {byteA, "A"}, {spm.BOS(), ""}, {-1, ""}, {int32(spm.VocabSize()), ""}} {
		if got := spm.TokenPiece(c.id); got != c.want {
			t.Errorf("llama2 TokenPiece(%d) = %q, want %q", c.id, got, c.want)
		}
	}
	// Byte-level BPE: GPT-2's "Ġ" byte rune is a space in output.
	bpe := loadT(t, "../../shared/tokenizers/llamacpp-vocab/ggml-vocab-gpt-2.gguf")
	ids := bpe.Encode("Hello world", false, false)
	var pieces string
	for _, id := range ids {
		pieces += bpe.TokenPiece(id)
	}
	if pieces != "Hello world" || bpe.TokenPiece(ids[len(ids)-1]) != " world" {
		t.Errorf("gpt-2 pieces of %v: %q (last %q)", ids, pieces, bpe.TokenPiece(ids[len(ids)-1]))
	}
}
