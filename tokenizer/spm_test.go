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

// TestSPMRunSplitting checks that merging barrier- and word-separated runs (with the run cache) gives exactly
// the ids of llama.cpp's algorithm run over the whole text at once.
func TestSPMRunSplitting(t *testing.T) {
	text := benchText(t)
	if len(text) > 200_000 {
		text = text[:200_000]
	}
	text += "\n\n  indented  code\twith\ttabs ▁▁ and ▁ markers 你好"
	for _, file := range []string{llama2Dir + "/tokenizer.model", vocabDir + "/ggml-vocab-phi-3.gguf"} {
		fast := loadT(t, file)
		if !fast.spmWordSplit {
			t.Fatalf("%s: word splitting is not enabled, the test would not exercise it", file)
		}
		slow := loadT(t, file)
		slow.spmWordSplit = false
		slow.spmBarrier = [128]bool{}
		want := slow.Encode(text, true, false)
		for range 2 { // the second pass is served from the run cache
			if got := fast.Encode(text, true, false); !slices.Equal(got, want) {
				i := 0
				for i < len(got) && i < len(want) && got[i] == want[i] {
					i++
				}
				t.Fatalf("%s: ids differ at %d of %d/%d", file, i, len(got), len(want))
			}
		}
	}
}
