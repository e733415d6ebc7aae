package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bestofn/bestofn/tokenizer"
)

// The test model and torch's outputs for it come from scripts/train_reward.py.
const tinyRM = "testdata/tiny-rm"

// tolerance is how far Go's scores may be from torch's and from each other.
const tolerance = 1e-4

type refCase struct {
	Prompt    string  `json:"prompt"`
	Candidate string  `json:"candidate"`
	IDs       []int32 `json:"ids"`
	Truncated bool    `json:"truncated"`
	Score     float64 `json:"score"`
}

type refSet struct {
	MaxLength int       `json:"max_length"`
	Cases     []refCase `json:"cases"`
}

type reference struct {
	Template  string `json:"template"`
	Default   refSet `json:"default"`
	Short     refSet `json:"short"`
	Tokenizer []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	} `json:"tokenizer"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	data, err := os.ReadFile("testdata/reference_scores.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Default.Cases) == 0 || len(ref.Short.Cases) == 0 || len(ref.Tokenizer) == 0 {
		t.Fatal("reference_scores.json has no cases")
	}
	return ref
}

// ortLibrary returns the ONNX Runtime library, skipping the test when none is installed.
func ortLibrary(t testing.TB) string {
	t.Helper()
	lib, found, err := findORTLibrary("")
	if err != nil {
		t.Fatal(err) // BESTOFN_ORT_LIB names a missing file: CI must not silently skip
	}
	if !found {
		t.Skip("onnx runtime library not found: set BESTOFN_ORT_LIB or run `npm install --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0` in the repo root")
	}
	return lib
}

// runtimes lists the runtimes to test, each a subtest.
func forEachRuntime(t *testing.T, f func(t *testing.T, opts Options)) {
	t.Run(RuntimeGo, func(t *testing.T) { f(t, Options{Runtime: RuntimeGo}) })
	t.Run(RuntimeORT, func(t *testing.T) { f(t, Options{Runtime: RuntimeORT, ORTLibrary: ortLibrary(t)}) })
}

func mustLoad(t testing.TB, opts Options) *Model {
	t.Helper()
	m, err := Load(tinyRM, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// TestUnigramMatchesSentencePiece checks tokenizer.json tokenization against ids from the sentencepiece library
// (C++), which trained the tokenizer.
func TestUnigramMatchesSentencePiece(t *testing.T) {
	ref := loadReference(t)
	data, err := os.ReadFile(filepath.Join(tinyRM, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := tokenizer.ParseUnigramJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Tokenizer {
		if got := u.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}

// TestEncodeMatchesReference checks template joining, special tokens and truncation against the script's ids.
func TestEncodeMatchesReference(t *testing.T) {
	ref := loadReference(t)
	for _, set := range []refSet{ref.Default, ref.Short} {
		m, err := newModel(tinyRM, Options{MaxLength: set.MaxLength})
		if err != nil {
			t.Fatal(err)
		}
		nTrunc := 0
		for i, c := range set.Cases {
			ids, truncated := m.Encode(c.Prompt, c.Candidate)
			if !slices.Equal(ids, c.IDs) || truncated != c.Truncated {
				t.Errorf("max %d case %d: Encode\n got %v %v\nwant %v %v", set.MaxLength, i, ids, truncated, c.IDs, c.Truncated)
			}
			if len(ids) > set.MaxLength {
				t.Errorf("max %d case %d: %d tokens", set.MaxLength, i, len(ids))
			}
			if truncated {
				nTrunc++
			}
		}
		if nTrunc == 0 {
			t.Errorf("max %d: no reference case is truncated; the truncation path is untested", set.MaxLength)
		}
	}
}

func TestTruncationKeepsResponseStart(t *testing.T) {
	m, err := newModel(tinyRM, Options{MaxLength: 24})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := m.Encode("short prompt", "yes")
	long := strings.Repeat("a long prompt that goes on ", 20)
	ids, truncated := m.Encode(long, "yes")
	if !truncated || len(ids) != 24 {
		t.Fatalf("long prompt: %d tokens, truncated %v; want 24, true", len(ids), truncated)
	}
	// The end of the input (response and [SEP]) is kept whole when the prompt is cut.
	tail := full[len(full)-3:]
	if !slices.Equal(ids[len(ids)-3:], tail) {
		t.Errorf("tail %v, want %v", ids[len(ids)-3:], tail)
	}
	// A response longer than the budget drops the whole prompt, then its own end; its start is kept.
	ids, truncated = m.Encode("hi", strings.Repeat("response words ", 30))
	start := m.tok.enc.Encode(" response words")
	if !truncated || len(ids) != 24 || !slices.Equal(ids[1:1+len(start)], start) {
		t.Errorf("long response: %v (truncated %v); want [CLS] %v ...", ids, truncated, start)
	}
	if ids[0] != m.tok.prefix[0] || ids[len(ids)-1] != m.tok.suffix[0] {
		t.Errorf("long response: %v does not keep [CLS] %v and [SEP] %v", ids, m.tok.prefix, m.tok.suffix)
	}
}

func TestScoresMatchTorch(t *testing.T) {
	ref := loadReference(t)
	forEachRuntime(t, func(t *testing.T, opts Options) {
		for _, set := range []refSet{ref.Default, ref.Short} {
			o := opts
			o.MaxLength = set.MaxLength
			o.BatchSize = 4 // several batches, each padded to its longest input
			m := mustLoad(t, o)
			prompts := map[string][]int{}
			for i, c := range set.Cases {
				prompts[c.Prompt] = append(prompts[c.Prompt], i)
			}
			for prompt, idx := range prompts {
				cands := make([]string, len(idx))
				for j, i := range idx {
					cands[j] = set.Cases[i].Candidate
				}
				det, err := m.ScoreDetails(context.Background(), prompt, cands)
				if err != nil {
					t.Fatal(err)
				}
				for j, i := range idx {
					c := set.Cases[i]
					if d := math.Abs(float64(det[j].Score) - c.Score); d > tolerance || math.IsNaN(d) {
						t.Errorf("max %d case %d: score %.6f, torch %.6f", set.MaxLength, i, det[j].Score, c.Score)
					}
					if det[j].Truncated != c.Truncated || det[j].Tokens != len(c.IDs) {
						t.Errorf("max %d case %d: tokens %d truncated %v, want %d %v", set.MaxLength, i, det[j].Tokens, det[j].Truncated, len(c.IDs), c.Truncated)
					}
				}
			}
			// One call with all candidates under one prompt: padding across very different lengths.
			all := make([]string, len(set.Cases))
			for i, c := range set.Cases {
				all[i] = c.Candidate
			}
			p := set.Cases[0].Prompt
			batched, err := m.Score(context.Background(), p, all)
			if err != nil {
				t.Fatal(err)
			}
			for i := range all {
				alone, err := m.Score(context.Background(), p, all[i:i+1])
				if err != nil {
					t.Fatal(err)
				}
				if d := math.Abs(float64(batched[i] - alone[0])); d > tolerance {
					t.Errorf("max %d: candidate %d batched %.6f, alone %.6f", set.MaxLength, i, batched[i], alone[0])
				}
			}
		}
	})
}

func TestRuntimesAgree(t *testing.T) {
	lib := ortLibrary(t)
	ref := loadReference(t)
	goM := mustLoad(t, Options{Runtime: RuntimeGo, BatchSize: 5})
	ortM := mustLoad(t, Options{Runtime: RuntimeORT, ORTLibrary: lib, BatchSize: 5})
	if goM.Runtime() != RuntimeGo || ortM.Runtime() != RuntimeORT {
		t.Fatalf("runtimes %s, %s", goM.Runtime(), ortM.Runtime())
	}
	var cands []string
	for _, c := range ref.Default.Cases {
		cands = append(cands, c.Candidate, c.Prompt)
	}
	for _, prompt := range []string{"What should I cook tonight?", ref.Default.Cases[2].Prompt} {
		a, err := goM.Score(context.Background(), prompt, cands)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ortM.Score(context.Background(), prompt, cands)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if d := math.Abs(float64(a[i] - b[i])); d > tolerance || math.IsNaN(d) {
				t.Errorf("prompt %q candidate %d: go %.6f, ort %.6f", prompt, i, a[i], b[i])
			}
		}
	}
}

func TestAutoRuntime(t *testing.T) {
	_, found, err := findORTLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	m := mustLoad(t, Options{})
	want := RuntimeGo
	if found {
		want = RuntimeORT
	}
	if m.Runtime() != want {
		t.Errorf("auto picked %s, want %s (library found: %v)", m.Runtime(), want, found)
	}
}

// copyModel copies the test model into a temp dir, replacing the files in repl (name -> content; nil deletes).
func copyModel(t *testing.T, repl map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "model.onnx"} {
		data, err := os.ReadFile(filepath.Join(tinyRM, name))
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := repl[name]; ok {
			if r == nil {
				continue
			}
			data = r
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// editJSON returns the test model's JSON file with f applied.
func editJSON(t *testing.T, name string, f func(map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyRM, name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	f(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	badOutput, err := os.ReadFile("testdata/bad_output.onnx")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		opts Options
		want []string // substrings of the error
	}{
		{"no dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, Options{}, []string{"config.json", "no such file"}},
		{"no config", func(t *testing.T) string { return copyModel(t, map[string][]byte{"config.json": nil}) }, Options{}, []string{"config.json"}},
		{"bad config json", func(t *testing.T) string { return copyModel(t, map[string][]byte{"config.json": []byte("{")}) }, Options{}, []string{"config.json"}},
		{"two labels", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"config.json": editJSON(t, "config.json", func(v map[string]any) { v["num_labels"] = 2 })})
		}, Options{}, []string{"config.json", "num_labels is 2"}},
		{"no tokenizer", func(t *testing.T) string { return copyModel(t, map[string][]byte{"tokenizer.json": nil}) }, Options{}, []string{"tokenizer.json"}},
		{"empty bpe tokenizer", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"tokenizer.json": editJSON(t, "tokenizer.json", func(v map[string]any) {
				v["model"] = map[string]any{"type": "BPE", "vocab": map[string]any{}, "merges": []any{}}
			})})
		}, Options{}, []string{"tokenizer.json", "BPE"}},
		{"wordpiece tokenizer", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"tokenizer.json": editJSON(t, "tokenizer.json", func(v map[string]any) {
				v["model"] = map[string]any{"type": "WordPiece", "vocab": map[string]any{"a": 0}}
			})})
		}, Options{}, []string{"tokenizer.json", "WordPiece", "not supported"}},
		{"broken precompiled charsmap", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"tokenizer.json": editJSON(t, "tokenizer.json", func(v map[string]any) {
				v["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "AAAA"}
			})})
		}, Options{}, []string{"tokenizer.json", "Precompiled", "charsmap"}},
		{"lookaround regex normalizer", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"tokenizer.json": editJSON(t, "tokenizer.json", func(v map[string]any) {
				v["normalizer"] = map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": "\\s+(?!\\S)"}, "content": " "}
			})})
		}, Options{}, []string{"tokenizer.json", "regex", "not supported"}},
		{"split pre-tokenizer", func(t *testing.T) string {
			return copyModel(t, map[string][]byte{"tokenizer.json": editJSON(t, "tokenizer.json", func(v map[string]any) {
				v["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "\\s+"}, "behavior": "Isolated"}
			})})
		}, Options{}, []string{"tokenizer.json", "Split", "not supported"}},
		{"no onnx", func(t *testing.T) string { return copyModel(t, map[string][]byte{"model.onnx": nil}) }, Options{}, []string{"model.onnx"}},
		{"garbage onnx go", func(t *testing.T) string { return copyModel(t, map[string][]byte{"model.onnx": []byte("not a model")}) }, Options{Runtime: RuntimeGo}, []string{"model.onnx"}},
		{"output [batch,2] go", func(t *testing.T) string { return copyModel(t, map[string][]byte{"model.onnx": badOutput}) }, Options{Runtime: RuntimeGo}, []string{"model.onnx", "[batch, 1]"}},
		{"output [batch,2] ort", func(t *testing.T) string { return copyModel(t, map[string][]byte{"model.onnx": badOutput}) }, Options{Runtime: RuntimeORT}, []string{"model.onnx", "[batch, 1]"}},
		{"garbage onnx ort", func(t *testing.T) string { return copyModel(t, map[string][]byte{"model.onnx": []byte("not a model")}) }, Options{Runtime: RuntimeORT}, []string{"model.onnx"}},
		{"unknown runtime", func(t *testing.T) string { return tinyRM }, Options{Runtime: "tpu"}, []string{"unknown runtime"}},
		{"missing library", func(t *testing.T) string { return tinyRM }, Options{Runtime: RuntimeORT, ORTLibrary: "/nonexistent/libonnxruntime.so"}, []string{"/nonexistent/libonnxruntime.so", "not found"}},
		{"bad template", func(t *testing.T) string { return tinyRM }, Options{Template: "{prompt} only"}, []string{"template"}},
		{"max length too long", func(t *testing.T) string { return tinyRM }, Options{MaxLength: 100000}, []string{"max length"}},
		{"negative batch", func(t *testing.T) string { return tinyRM }, Options{BatchSize: -1}, []string{"batch size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Runtime == RuntimeORT && tc.opts.ORTLibrary == "" {
				tc.opts.ORTLibrary = ortLibrary(t)
			}
			m, err := Load(tc.dir(t), tc.opts)
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "reward: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestConcurrentScore(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, opts Options) {
		opts.BatchSize = 2
		opts.MaxLength = 64
		m := mustLoad(t, opts)
		cands := []string{"Sure, here is how.", "No.", "I can't help with that, but here is a safer idea.", "Maybe later?"}
		prompts := []string{"How do I fix a bike?", "Tell me something mean.", "What is 2+2?"}
		want := make([][]float32, len(prompts))
		for i, p := range prompts {
			s, err := m.Score(context.Background(), p, cands)
			if err != nil {
				t.Fatal(err)
			}
			want[i] = s
		}
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				i := g % len(prompts)
				got, err := m.Score(context.Background(), prompts[i], cands)
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if math.Abs(float64(got[j]-want[i][j])) > tolerance {
						errs <- fmt.Errorf("goroutine %d candidate %d: %v, want %v", g, j, got[j], want[i][j])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestCancelAndClose(t *testing.T) {
	m := mustLoad(t, Options{Runtime: RuntimeGo, BatchSize: 1, MaxLength: 32})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Score(ctx, "p", []string{"a", "b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Score: %v, want context.Canceled", err)
	}
	s, err := m.Score(context.Background(), "p", nil)
	if err != nil || len(s) != 0 {
		t.Errorf("no candidates: %v, %v", s, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Score(context.Background(), "p", []string{"a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Score after Close: %v, want ErrClosed", err)
	}
}

func TestBucket(t *testing.T) {
	for _, c := range []struct{ n, limit, want int }{
		{1, 512, 16}, {16, 512, 16}, {17, 512, 32}, {100, 512, 128}, {129, 512, 256}, {300, 512, 384}, {500, 512, 512}, {40, 48, 48}, {48, 48, 48},
	} {
		if got := bucket(c.n, c.limit); got != c.want {
			t.Errorf("bucket(%d, %d) = %d, want %d", c.n, c.limit, got, c.want)
		}
	}
}

// BenchmarkScore measures candidates/s at batch 5 x 256 tokens for each runtime.
func BenchmarkScore(b *testing.B) {
	run := func(b *testing.B, opts Options) {
		opts.BatchSize, opts.MaxLength = 5, 256
		m := mustLoad(b, opts)
		prompt := strings.Repeat("Please tell me a long story about a dragon and a knight. ", 20)
		cands := make([]string, 5)
		for i := range cands {
			cands[i] = fmt.Sprintf("Answer %d: ", i) + strings.Repeat("Once upon a time there was a brave knight. ", 40)
		}
		det, err := m.ScoreDetails(context.Background(), prompt, cands)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range det {
			if d.Tokens != 256 {
				b.Fatalf("input has %d tokens, want 256", d.Tokens)
			}
		}
		b.ResetTimer()
		for range b.N {
			if _, err := m.Score(context.Background(), prompt, cands); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cands)*b.N)/b.Elapsed().Seconds(), "candidates/s")
	}
	b.Run(RuntimeGo, func(b *testing.B) { run(b, Options{Runtime: RuntimeGo}) })
	b.Run(RuntimeORT, func(b *testing.B) { run(b, Options{Runtime: RuntimeORT, ORTLibrary: ortLibrary(b)}) })
}

// gpt2Bytes is GPT-2's printable stand-in for each byte in byte-level BPE vocabularies.
func gpt2Bytes() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// TestBPETokenizer loads a GPT-2 byte-level BPE tokenizer.json with OPT's post-processor ("</s> $A") through the
// tokenizer package and checks the ids the model sees.
func TestBPETokenizer(t *testing.T) {
	bytes := gpt2Bytes()
	vocab := map[string]any{}
	for b := range 256 {
		vocab[string(bytes[b])] = b
	}
	sp := string(bytes[' '])
	merges := []string{sp + " h", sp + "h i", "o k"}
	for i, tok := range []string{sp + "h", sp + "hi", "ok"} {
		vocab[tok] = 256 + i
	}
	vocab["</s>"] = 259
	tj := map[string]any{
		"added_tokens":   []any{map[string]any{"id": 259, "content": "</s>", "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}}, "special_tokens": map[string]any{"</s>": map[string]any{"id": "</s>", "ids": []int{259}, "tokens": []string{"</s>"}}}},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	data, err := json.Marshal(tj)
	if err != nil {
		t.Fatal(err)
	}
	dir := copyModel(t, map[string][]byte{"tokenizer.json": data})
	m, err := newModel(dir, Options{Template: "Q:{prompt} A: {response}"})
	if err != nil {
		t.Fatal(err)
	}
	ids, truncated := m.Encode("hi", "ok hi")
	// "</s>" + "Q" ":" "hi"... : the prompt "hi" follows ":" without a space, so it is "h" "i" as bytes; " A" ":"
	// then " ok" is not a token (no "Ġo" merge): "Ġ" "ok"; then "Ġhi".
	// Byte b's token has id b in this vocabulary.
	want := []int32{259, 'Q', ':', 'h', 'i', ' ', 'A', ':', ' ', 258, 257}
	if truncated || !slices.Equal(ids, want) {
		t.Errorf("Encode = %v %v, want %v", ids, truncated, want)
	}
}

// TestUnigramPrecompiledMatchesSentencePiece checks a DeBERTa-v3-style tokenizer.json (Strip, SentencePiece's
// nmt_nfkc precompiled charsmap, whitespace collapsing) against the sentencepiece library's ids
// (scripts/reward_spm_reference.py): full-width forms, ligatures, composed accents, odd spaces, unknown runs.
func TestUnigramPrecompiledMatchesSentencePiece(t *testing.T) {
	data, err := os.ReadFile("testdata/spm-nfkc/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	u, err := tokenizer.ParseUnigramJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/spm_nfkc_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref) == 0 {
		t.Fatalf("reference: %v (%d cases)", err, len(ref))
	}
	for _, c := range ref {
		if got := u.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}

// FuzzUnigramEncode checks that any text, including invalid UTF-8 and special-token look-alikes, tokenizes without
// panicking into ids inside the vocabulary, for both test tokenizers.
func FuzzUnigramEncode(f *testing.F) {
	var us []*tokenizer.Unigram
	for _, p := range []string{filepath.Join(tinyRM, "tokenizer.json"), "testdata/spm-nfkc/tokenizer.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		u, err := tokenizer.ParseUnigramJSON(data)
		if err != nil {
			f.Fatal(err)
		}
		us = append(us, u)
	}
	for _, s := range []string{"", " ", "\xff\xfe", "a\x80b", "[CLS] x [SEP]", "e\u0301\u200d🙂🇫🇷", "\r\n\t  x  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, u := range us {
			for _, id := range u.Encode(s) {
				if id < 0 || int(id) >= u.VocabSize() {
					t.Fatalf("Encode(%q): id %d outside vocabulary of %d", s, id, u.VocabSize())
				}
			}
		}
	})
}
