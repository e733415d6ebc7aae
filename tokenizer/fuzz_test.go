package tokenizer

import (
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func FuzzParseLlama2C(f *testing.F) {
	if data, err := os.ReadFile("../../shared/models/stories260K/tok512.bin"); err == nil {
		f.Add(data)
		f.Add(data[:100])
	}
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := ParseLlama2C(data)
		if err == nil {
			_ = tk.Decode(tk.Encode("hello world", true, true))
		}
	})
}

func FuzzParseSentencePiece(f *testing.F) {
	if data, err := os.ReadFile(llama2Dir + "/tokenizer.model"); err == nil {
		f.Add(data[:4096])
	}
	// pieces "a" (normal), "<0x41>" (byte); trainer_spec model_type BPE.
	f.Add([]byte{0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0, 0, 0x80, 0xbf, 0x0a, 0x0a, 0x0a, 0x06, '<', '0', 'x', '4', '1', '>', 0x18, 0x06, 0x12, 0x02, 0x18, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := ParseSentencePiece(data)
		if err == nil {
			_ = tk.Decode(tk.Encode("hello A", true, true))
		}
	})
}

func FuzzParseHFJSON(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"▁":0,"a":1},"merges":[["▁","a"]],"byte_fallback":true},"normalizer":{"type":"Replace","pattern":{"String":" "},"content":"▁"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := ParseHFJSON(data)
		if err == nil {
			_ = tk.Decode(tk.Encode("hello ab", true, true))
		}
	})
}

var fuzzTokenizers = sync.OnceValues(func() ([]*Tokenizer, error) {
	var out []*Tokenizer
	for _, f := range []string{"llama-spm", "gpt-2", "deepseek-coder"} {
		path := vocabDir + "/ggml-vocab-" + f + ".gguf"
		if _, err := os.Stat(path); err != nil {
			continue
		}
		tk, err := Load(path)
		if err != nil {
			return nil, err
		}
		out = append(out, tk)
	}
	return out, nil
})

// FuzzEncode checks on arbitrary text that encoding never panics, valid UTF-8 round-trips, and a Decoder fed
// the ids one at a time prints exactly what Decode prints.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"Hello world", " 你好 🦙\n\n", "<s>x</s>", "'s 'LL 123456", "\xff\xfe bad utf8 \xe4\xb8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tks, err := fuzzTokenizers()
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tks {
			for _, special := range []bool{false, true} {
				ids := tk.Encode(s, false, special)
				dec := tk.Decode(ids)
				if !special && utf8.ValidString(s) && dec != s {
					t.Fatalf("round trip %q -> %q", s, dec)
				}
				d := tk.NewDecoder(nil)
				var sb strings.Builder
				for _, id := range ids {
					sb.WriteString(d.Next(id))
				}
				sb.WriteString(d.Flush())
				if sb.String() != dec || !utf8.ValidString(dec) {
					t.Fatalf("%q: stream %q, Decode %q", s, sb.String(), dec)
				}
			}
		}
	})
}
