package export

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const (
	sharedData  = "../../shared/data/"
	llamaSPM32K = "../../shared/tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf"
)

// sharedTexts returns the texts of ../shared: every HH-RLHF dialogue (chosen and rejected), the Vicuna, MT-Bench,
// self-instruct and user-oriented instructions, and llama.cpp's tokenizer test strings for the LLaMA vocabulary.
func sharedTexts(t *testing.T) []string {
	t.Helper()
	var texts []string
	f, err := os.Open(sharedData + "hh_rlhf_harmless_base_test.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var row struct{ Chosen, Rejected string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, row.Chosen, row.Rejected)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vicuna_question_80.jsonl", "mt_bench_question_80.jsonl", "self_instruct_seed_tasks_175.jsonl", "user_oriented_instructions_252.jsonl"} {
		data, err := os.ReadFile(sharedData + name)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			var row map[string]any
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			texts = appendStrings(texts, row)
		}
	}
	inp, err := os.ReadFile(llamaSPM32K + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, strings.Split(string(inp), "\n__ggml_vocab_test__\n")...)
	if len(texts) < 5000 {
		t.Fatalf("only %d texts in ../shared", len(texts))
	}
	return texts
}

// appendStrings appends every string held in v (a decoded JSON value).
func appendStrings(out []string, v any) []string {
	switch x := v.(type) {
	case string:
		return append(out, x)
	case []any:
		for _, e := range x {
			out = appendStrings(out, e)
		}
	case map[string]any:
		for _, e := range x {
			out = appendStrings(out, e)
		}
	}
	return out
}

// exportedTokenizer returns the GGUF's tokenizer as package tokenizer reads it, and the tokenizer.json TokenizerJSON
// writes for it as package reward reads it (tokenizer.ParseHFJSON).
func exportedTokenizer(t *testing.T, path string) (spm, hf *tokenizer.Tokenizer) {
	t.Helper()
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if spm, err = tokenizer.FromMetadata(ck.Metadata); err != nil {
		t.Fatal(err)
	}
	vocab, err := VocabFromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	js, err := vocab.TokenizerJSON()
	if err != nil {
		t.Fatal(err)
	}
	if hf, err = tokenizer.ParseHFJSON(js); err != nil {
		t.Fatal(err)
	}
	return spm, hf
}

// TestTokenizerJSONMatchesSentencePiece writes tokenizer.json for the stories260K 512-token vocabulary and the
// LLaMA-2 32K one (llama.cpp's conversion of Meta's tokenizer.model) and checks that it tokenizes every text of
// ../shared as package tokenizer does from the GGUF vocabulary, which llama.cpp's own test files check: the HF
// file is read the way package reward reads it (tokenizer.ParseHFJSON, BOS from the post-processor).
func TestTokenizerJSONMatchesSentencePiece(t *testing.T) {
	texts := sharedTexts(t)
	for _, path := range []string{stories260K, llamaSPM32K} {
		t.Run(path[strings.LastIndexByte(path, '/')+1:], func(t *testing.T) {
			spm, hf := exportedTokenizer(t, path)
			if hf.BOS() != spm.BOS() || !hf.AddBOSDefault() || hf.VocabSize() != spm.VocabSize() {
				t.Fatalf("tokenizer.json: BOS %d (added %v), %d tokens; the GGUF vocabulary: BOS %d, %d tokens",
					hf.BOS(), hf.AddBOSDefault(), hf.VocabSize(), spm.BOS(), spm.VocabSize())
			}
			bad := 0
			tokens := 0
			for _, text := range texts {
				want := spm.Encode(text, true, false)
				got := hf.Encode(text, true, false)
				tokens += len(want)
				if !slices.Equal(got, want) {
					if bad++; bad <= 3 {
						t.Errorf("%q:\n tokenizer.json %v\n sentencepiece  %v", text, got, want)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d texts tokenize differently", bad, len(texts))
			}
			t.Logf("%d texts, %d tokens: identical", len(texts), tokens)
		})
	}
}

// TestTokenizerJSONMatchesLlamaCpp checks the exported LLaMA-2 tokenizer.json against the ids llama.cpp produces
// for its own tokenizer test strings (no BOS, as test-tokenizer-0 runs them).
func TestTokenizerJSONMatchesLlamaCpp(t *testing.T) {
	_, hf := exportedTokenizer(t, llamaSPM32K)
	inp, err := os.ReadFile(llamaSPM32K + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(llamaSPM32K + ".out")
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(strings.TrimSuffix(string(inp), "\n__ggml_vocab_test__\n"), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(texts) != len(lines) || len(texts) < 20 {
		t.Fatalf("%d inputs, %d outputs", len(texts), len(lines))
	}
	for i, text := range texts {
		var want []int32
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, int32(id))
		}
		if got := hf.Encode(text, false, false); !slices.Equal(got, want) {
			t.Errorf("%q:\n tokenizer.json %v\n llama.cpp      %v", text, got, want)
		}
	}
}

// TestVocabFromFile reads Meta's tokenizer.model and llama2.c's tok512.bin and checks them against llama.cpp's
// GGUF conversions of the same vocabularies, and the SetMetadata round trip.
func TestVocabFromFile(t *testing.T) {
	for _, c := range []struct {
		path, ref string
		size      int
	}{
		{"../../shared/tokenizers/llama2/tokenizer.model", llamaSPM32K, 0},
		{"../../shared/models/stories260K/tok512.bin", stories260K, 512},
		{stories260K, stories260K, 512},
	} {
		got, err := VocabFromFile(c.path, c.size)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := weights.Open(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		want, err := VocabFromMetadata(ck.Metadata)
		ck.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: vocabulary differs from %s's", c.path, c.ref)
		}
		md := weights.NewMetadata()
		got.SetMetadata(md)
		back, err := VocabFromMetadata(md)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%s: SetMetadata round trip: %v", c.path, err)
		}
	}
	if _, err := VocabFromFile("../../shared/models/stories260K/tok512.bin", 0); err == nil {
		t.Error("tokenizer.bin without a vocabulary size: no error")
	}
	if _, err := VocabFromFile(llamaSPM32K, 512); err == nil {
		t.Error("wrong vocabulary size: no error")
	}
}
