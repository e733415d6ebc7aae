package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRoundTrip checks Decode(Encode(s)) == s over the llama.cpp test strings for every vocabulary that can
// represent any text (all but WordPiece, which lowercases and drops spaces), with and without BOS.
func TestRoundTrip(t *testing.T) {
	ggufs, _ := filepath.Glob(filepath.Join(vocabDir, "*.gguf"))
	files := append(ggufs, llama2Dir+"/tokenizer.model", llama2Dir+"/tokenizer.bin")
	extra := []string{"你好，世界！今天天气很好。", "emoji 🦙🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", " leading space", "tab\tand\nnewline  "}
	for _, f := range files {
		if strings.Contains(f, "bert") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			tk := loadT(t, f)
			var texts []string
			if _, err := os.Stat(f + ".inp"); err == nil {
				for _, c := range readVocabCases(t, f) {
					texts = append(texts, c.text)
				}
			}
			texts = append(texts, extra...)
			for _, s := range texts {
				for _, bos := range []bool{false, true} {
					ids := tk.Encode(s, bos, false)
					if got := tk.Decode(ids); got != s {
						t.Errorf("bos=%v: Decode(Encode(%q)) = %q", bos, s, got)
					}
				}
			}
		})
	}
}

// TestDecoderStreamsUTF8 feeds ids one at a time through a Decoder: every piece it returns must be valid UTF-8,
// characters split over byte-fallback tokens must be held back, and the concatenation must equal the input.
func TestDecoderStreamsUTF8(t *testing.T) {
	for _, f := range []string{vocabDir + "/ggml-vocab-llama-spm.gguf", vocabDir + "/ggml-vocab-gpt-2.gguf",
		vocabDir + "/ggml-vocab-deepseek-llm.gguf"} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tk := loadT(t, f)
			text := "当然可以！以下是一个简单的例子：😀🦙 ẞtraße ԱԲԳ 𝔘𝔫𝔦"
			ids := tk.Encode(text, true, false)
			d := tk.NewDecoder(nil)
			var sb strings.Builder
			held := 0
			for _, id := range ids {
				s := d.Next(id)
				if !utf8.ValidString(s) {
					t.Fatalf("Next(%d) = %q: invalid UTF-8", id, s)
				}
				if s == "" && id != tk.BOS() {
					held++
				}
				sb.WriteString(s)
			}
			sb.WriteString(d.Flush())
			if sb.String() != text {
				t.Fatalf("streamed %q, want %q", sb.String(), text)
			}
			if held == 0 {
				t.Fatalf("no token was held back: the text does not exercise split characters")
			}
			if got := tk.Decode(ids); got != text {
				t.Fatalf("Decode = %q", got)
			}
		})
	}
}

// TestDecoderInvalidBytes checks that bytes that can never form a character come out as U+FFFD, one per byte,
// and that an incomplete tail is only released by Flush.
func TestDecoderInvalidBytes(t *testing.T) {
	tk := loadT(t, vocabDir+"/ggml-vocab-llama-spm.gguf")
	byteID := func(b byte) int32 {
		id, ok := tk.byteToken(b)
		if !ok {
			t.Fatalf("no byte token for %#x", b)
		}
		return id
	}
	d := tk.NewDecoder(nil)
	// 0xE4 0xB8 starts a 3-byte character; 'A' (0x41) breaks it.
	if s := d.Next(byteID(0xE4)); s != "" {
		t.Fatalf("lead byte emitted %q", s)
	}
	if s := d.Next(byteID(0xB8)); s != "" {
		t.Fatalf("second byte emitted %q", s)
	}
	if s := d.Next(byteID(0x41)); s != "\uFFFD\uFFFDA" {
		t.Fatalf("broken sequence gave %q", s)
	}
	if s := d.Next(byteID(0xF0)); s != "" {
		t.Fatalf("lead byte emitted %q", s)
	}
	if s := d.Flush(); s != "\uFFFD" {
		t.Fatalf("Flush = %q", s)
	}
	if s := tk.Decode([]int32{byteID(0xE4), byteID(0xB8)}); s != "\uFFFD\uFFFD" {
		t.Fatalf("Decode of a truncated character = %q", s)
	}
}

// TestDecoderNoAllocs checks that streaming plain tokens allocates nothing per token.
func TestDecoderNoAllocs(t *testing.T) {
	tk := loadT(t, vocabDir+"/ggml-vocab-llama-spm.gguf")
	ids := tk.Encode("Once upon a time, there was a little girl", false, false)
	d := tk.NewDecoder(nil)
	allocs := testing.AllocsPerRun(100, func() {
		for _, id := range ids {
			_ = d.Next(id)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

// TestDecoderContinuesPrompt checks that a Decoder given the prompt streams exactly what Decode(prompt + ids)
// adds after Decode(prompt): the continuation of a prompt that prints text keeps its leading space, and only a
// continuation of BOS alone (or of nothing) loses it.
func TestDecoderContinuesPrompt(t *testing.T) {
	for _, f := range []string{llama2Dir + "/tokenizer.model", vocabDir + "/ggml-vocab-llama-spm.gguf",
		vocabDir + "/ggml-vocab-phi-3.gguf", vocabDir + "/ggml-vocab-gpt-2.gguf"} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tk := loadT(t, f)
			for _, c := range []struct{ prompt, cont string }{
				{"Once upon a", " time, there was"},
				{"Once upon a ti", "me, there"},
				{"", "Once upon a time"},
				{"你好", " 世界 🦙"},
			} {
				for _, bos := range []bool{false, true} {
					prompt := tk.Encode(c.prompt, bos, false)
					ids := tk.Encode(c.cont, false, false)
					d := tk.NewDecoder(prompt)
					var sb strings.Builder
					for _, id := range ids {
						sb.WriteString(d.Next(id))
					}
					sb.WriteString(d.Flush())
					whole, head := tk.Decode(append(prompt, ids...)), tk.Decode(prompt)
					if !strings.HasPrefix(whole, head) || sb.String() != whole[len(head):] {
						t.Errorf("%q + %q (bos %v): streamed %q, Decode(prompt+ids) %q after Decode(prompt) %q", c.prompt, c.cont,
							bos, sb.String(), whole, head)
					}
				}
			}
		})
	}
}
