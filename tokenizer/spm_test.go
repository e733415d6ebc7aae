package tokenizer

import (
	"slices"
	"testing"
)

const llama2Dir = "../../shared/tokenizers/llama2"

// TestSentencePieceFilesMatchGGUF checks that the LLaMA-2 tokenizer.model and llama2.c tokenizer.bin give
// llama.cpp's ids for the llama-spm test strings.
func TestSentencePieceFilesMatchGGUF(t *testing.T) {
	gguf := vocabDir + "/ggml-vocab-llama-spm.gguf"
	cases := readVocabCases(t, gguf)
	for _, file := range []string{llama2Dir + "/tokenizer.model", llama2Dir + "/tokenizer.bin"} {
		t.Run(file[len(llama2Dir)+1:], func(t *testing.T) {
			tk := loadT(t, file)
			if tk.VocabSize() != 32000 || tk.BOS() != 1 || tk.EOS() != 2 || !tk.AddBOSDefault() {
				t.Fatalf("vocab %d bos %d eos %d addBOS %v", tk.VocabSize(), tk.BOS(), tk.EOS(), tk.AddBOSDefault())
			}
			pass := 0
			for _, c := range cases {
				got := tk.Encode(c.text, false, false)
				if slices.Equal(got, c.ids) {
					pass++
				} else {
					t.Errorf("%q:\n got  %v\n want %v", c.text, got, c.ids)
				}
			}
			t.Logf("%d/%d pass", pass, len(cases))
		})
	}
}
