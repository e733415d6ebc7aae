package tokenizer

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchText is about 1 MB of real English text: the shared instruction data files and HH-RLHF dialogues.
func benchText(b testing.TB) string {
	b.Helper()
	var buf bytes.Buffer
	files, _ := filepath.Glob("../../shared/data/*.jsonl")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(data)
	}
	if f, err := os.Open("../../shared/data/hh_rlhf_harmless_base_test.jsonl.gz"); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			_, _ = io.CopyN(&buf, zr, 1<<20-int64(buf.Len()))
		}
	}
	if buf.Len() == 0 {
		b.Skip("no shared data")
	}
	return buf.String()
}

// BenchmarkEncode reports tokens/s for each tokenizer family on the same ~1 MB text (steady state: the BPE
// pre-token cache is warm after the first iteration; the "cold" runs build a new tokenizer cache each time).
func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	for _, c := range []struct{ name, file string }{
		{"spm-llama", vocabDir + "/ggml-vocab-llama-spm.gguf"},
		{"bpe-gpt2", vocabDir + "/ggml-vocab-gpt-2.gguf"},
		{"bpe-deepseek-llm", vocabDir + "/ggml-vocab-deepseek-llm.gguf"},
		{"wpm-bert", vocabDir + "/ggml-vocab-bert-bge.gguf"},
	} {
		tk := loadT(b, c.file)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				n += len(tk.Encode(text, false, false))
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
	tk := loadT(b, vocabDir+"/ggml-vocab-gpt-2.gguf")
	b.Run("bpe-gpt2-cold", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		n := 0
		for b.Loop() {
			tk.cache.reset()
			n += len(tk.Encode(text, false, false))
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
	})
}
