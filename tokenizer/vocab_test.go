package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const vocabDir = "../../shared/tokenizers/llamacpp-vocab"

// vocabCase is one llama.cpp test-tokenizer-0 case: an input and the ids llama.cpp produced for it.
type vocabCase struct {
	text string
	ids  []int32
}

// readVocabCases reads NAME.gguf.inp/.out the way llama.cpp's tests/test-tokenizer-0.cpp does: inputs are
// separated by "\n__ggml_vocab_test__\n" (nothing trimmed), outputs are one stripped line of space-separated ids
// per input.
func readVocabCases(t *testing.T, gguf string) []vocabCase {
	t.Helper()
	inp, err := os.ReadFile(gguf + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(gguf + ".out")
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var texts []string
	raw := string(inp)
	for pos := 0; pos < len(raw); {
		next := strings.Index(raw[pos:], sep)
		if next < 0 {
			texts = append(texts, raw[pos:])
			break
		}
		texts = append(texts, raw[pos:pos+next])
		pos += next + len(sep)
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d inputs, %d outputs", gguf, len(texts), len(lines))
	}
	cases := make([]vocabCase, len(texts))
	for i, text := range texts {
		cases[i].text = text
		for _, f := range strings.Fields(lines[i]) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", gguf, i+1, err)
			}
			cases[i].ids = append(cases[i].ids, int32(v))
		}
	}
	return cases
}

func loadT(t testing.TB, path string) *Tokenizer {
	t.Helper()
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestLlamaCppVocabs runs every llama.cpp vocab test whose .gguf is present: our ids must equal llama.cpp's for
// every test string (no BOS, no special-token parsing, as test-tokenizer-0 runs them).
func TestLlamaCppVocabs(t *testing.T) {
	ggufs, _ := filepath.Glob(filepath.Join(vocabDir, "*.gguf"))
	if len(ggufs) == 0 {
		t.Skip("no vocab files in " + vocabDir)
	}
	for _, g := range ggufs {
		if _, err := os.Stat(g + ".inp"); err != nil {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(g), "ggml-vocab-"), ".gguf")
		t.Run(name, func(t *testing.T) {
			tk := loadT(t, g)
			cases := readVocabCases(t, g)
			pass := 0
			for _, c := range cases {
				got := tk.Encode(c.text, false, false)
				if slices.Equal(got, c.ids) {
					pass++
					continue
				}
				t.Errorf("%q:\n got  %v\n want %v", c.text, got, c.ids)
			}
			t.Logf("%s: %d/%d pass", name, pass, len(cases))
		})
	}
}
