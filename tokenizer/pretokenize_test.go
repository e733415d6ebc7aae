package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// splitterTexts are the llama.cpp test strings of every vocabulary plus a slice of real text.
func splitterTexts(t *testing.T) []string {
	var texts []string
	inps, _ := filepath.Glob(filepath.Join(vocabDir, "*.inp"))
	for _, inp := range inps {
		data, err := os.ReadFile(inp)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, strings.Split(string(data), "\n__ggml_vocab_test__\n")...)
	}
	big := benchText(t)
	for i := 0; i+2000 <= len(big) && i < 100_000; i += 2000 {
		texts = append(texts, strings.ToValidUTF8(big[i:i+2000], "?"))
	}
	return append(texts, "I'M HERE 'LL 'Ve  \r\n\t \u00a0\u2003x ١٢٣٤ 12345 ...!!\n\n\n  ")
}

// TestCustomSplittersMatchRegex checks llama.cpp's hand-written GPT-2 and LLaMA-3 splitters against the
// regexes they implement, run by regexp2 with real Unicode classes.
func TestCustomSplittersMatchRegex(t *testing.T) {
	for _, c := range []struct {
		name   string
		custom splitter
		regex  string
	}{
		{"gpt2", gpt2Splitter{}, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`},
		{"llama3", llama3Splitter{}, reLlama3HF},
	} {
		re, err := newRegexSplitter(c.regex, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range splitterTexts(t) {
			cpts := []rune(text)
			got := c.custom.split(cpts, []int{len(cpts)})
			want := re.split(cpts, []int{len(cpts)})
			if !slices.Equal(got, want) {
				t.Errorf("%s: %q:\n custom %v\n regex  %v", c.name, text, got, want)
			}
		}
	}
}
