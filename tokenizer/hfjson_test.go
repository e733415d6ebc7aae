package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bestofn/bestofn/weights"
)

func openMeta(t *testing.T, path string) *weights.Metadata {
	t.Helper()
	ck, err := weights.OpenGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck.Metadata
}

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHFJSONByteLevel writes the GPT-2 vocabulary as tokenizer.json files in two shapes: a plain ByteLevel
// pre-tokenizer with "a b" merges, and a Split with HF's original GPT-2 regex (run by regexp2 with Unicode
// classes, not by the hand-written splitter) plus ByteLevel, with ["a","b"] merges. Both must give llama.cpp's
// ids for the gpt-2 test strings.
func TestHFJSONByteLevel(t *testing.T) {
	gguf := vocabDir + "/ggml-vocab-gpt-2.gguf"
	md := openMeta(t, gguf)
	tokens, _ := md.Strings("tokenizer.ggml.tokens")
	merges, _ := md.Strings("tokenizer.ggml.merges")
	vocab := make(map[string]int, len(tokens))
	for i, tok := range tokens {
		vocab[tok] = i
	}
	pairs := make([][2]string, len(merges))
	for i, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		pairs[i] = [2]string{a, b}
	}
	added := []map[string]any{{"id": 50256, "content": "<|endoftext|>", "special": true}}
	hfGPT2 := `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	shapes := map[string]map[string]any{
		"bytelevel": {
			"added_tokens":  added,
			"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
			"decoder":       map[string]any{"type": "ByteLevel"},
			"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
		},
		"split": {
			"added_tokens": added,
			"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": hfGPT2}, "behavior": "Isolated"},
				map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
			}},
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": pairs},
		},
	}
	cases := readVocabCases(t, gguf)
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			tk := loadT(t, writeJSON(t, t.TempDir(), "tokenizer.json", shape))
			if tk.EOS() != 50256 || !tk.IsEOG(50256) {
				t.Errorf("eos %d", tk.EOS())
			}
			pass := 0
			for _, c := range cases {
				got := tk.Encode(c.text, false, false)
				if slices.Equal(got, c.ids) {
					pass++
				} else {
					t.Errorf("%q:\n got  %v\n want %v", c.text, got, c.ids)
				}
				if d := tk.Decode(got); d != c.text {
					t.Errorf("round trip %q -> %q", c.text, d)
				}
			}
			t.Logf("%d/%d pass", pass, len(cases))
		})
	}
}

// TestHFJSONSentencePieceBPE converts the LLaMA SentencePiece vocabulary to an HF-style BPE tokenizer.json
// (merges generated from piece scores the way HF's SpmConverter does, byte_fallback, U+2581 normalizer) plus a
// tokenizer_config.json, and checks the llama-spm test strings.
func TestHFJSONSentencePieceBPE(t *testing.T) {
	gguf := vocabDir + "/ggml-vocab-llama-spm.gguf"
	md := openMeta(t, gguf)
	tokens, _ := md.Strings("tokenizer.ggml.tokens")
	scores, _ := md.Float32s("tokenizer.ggml.scores")
	types, _ := md.Int32s("tokenizer.ggml.token_type")
	vocab := make(map[string]int, len(tokens))
	for i, tok := range tokens {
		vocab[tok] = i
	}
	type merge struct {
		l, r  string
		score float32
	}
	var ms []merge
	for i, tok := range tokens {
		if tokenType(types[i]) != typeNormal || utf8.RuneCountInString(tok) < 2 {
			continue
		}
		var local []merge
		for k := range tok {
			if k == 0 {
				continue
			}
			l, r := tok[:k], tok[k:]
			_, okl := vocab[l]
			_, okr := vocab[r]
			if okl && okr {
				local = append(local, merge{l, r, scores[i]})
			}
		}
		sort.Slice(local, func(a, b int) bool {
			if vocab[local[a].l] != vocab[local[b].l] {
				return vocab[local[a].l] < vocab[local[b].l]
			}
			return vocab[local[a].r] < vocab[local[b].r]
		})
		ms = append(ms, local...)
	}
	sort.SliceStable(ms, func(a, b int) bool { return ms[a].score > ms[b].score })
	merges := make([]string, len(ms))
	for i, m := range ms {
		merges[i] = m.l + " " + m.r
	}
	var added []map[string]any
	for i, tp := range types {
		if tokenType(tp) == typeControl || tokenType(tp) == typeUnknown {
			added = append(added, map[string]any{"id": i, "content": tokens[i], "special": true})
		}
	}
	dir := t.TempDir()
	writeJSON(t, dir, "tokenizer_config.json", map[string]any{
		"bos_token": map[string]any{"content": "<s>"}, "eos_token": "</s>", "add_bos_token": true,
		"chat_template": "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
	})
	path := writeJSON(t, dir, "tokenizer.json", map[string]any{
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": true,
			"unk_token": "<unk>"},
	})
	tk := loadT(t, path)
	if tk.BOS() != 1 || tk.EOS() != 2 || !tk.AddBOSDefault() || !strings.Contains(tk.ChatTemplate(), "bos_token") {
		t.Fatalf("bos %d eos %d addBOS %v template %q", tk.BOS(), tk.EOS(), tk.AddBOSDefault(), tk.ChatTemplate())
	}
	pass := 0
	cases := readVocabCases(t, gguf)
	for _, c := range cases {
		got := tk.Encode(c.text, false, false)
		if slices.Equal(got, c.ids) {
			pass++
		} else {
			t.Errorf("%q:\n got  %v\n want %v", c.text, got, c.ids)
		}
		if d := tk.Decode(got); d != c.text {
			t.Errorf("round trip %q -> %q", c.text, d)
		}
	}
	t.Logf("%d/%d pass", pass, len(cases))
}

func TestHFJSONUnsupportedComponents(t *testing.T) {
	model := `"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}`
	for _, extra := range []string{
		`"pre_tokenizer":{"type":"Whitespace"}`,
		`"pre_tokenizer":{"type":"Split","pattern":{"Regex":"a"},"behavior":"Removed"}`,
		`"pre_tokenizer":{"type":"ByteLevel"},"normalizer":{"type":"Lowercase"}`,
		`"normalizer":{"type":"Replace","pattern":{"String":"a"},"content":"b"}`,
	} {
		if _, err := ParseHFJSON([]byte("{" + model + "," + extra + "}")); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", extra, err)
		}
	}
	tk, err := ParseHFJSON([]byte("{" + model + `,"pre_tokenizer":{"type":"Sequence","pretokenizers":[` +
		`{"type":"Digits","individual_digits":true},{"type":"ByteLevel","use_regex":false}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("ab", false, false); !slices.Equal(got, []int32{2}) {
		t.Errorf("ab -> %v", got)
	}
}
