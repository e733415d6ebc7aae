package trainjobs

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const (
	stories260K = "../../shared/models/stories260K/stories260K.gguf"
	hhTest      = "../../shared/data/hh_rlhf_harmless_base_test.jsonl.gz"
)

// hhLines returns the lines of the HH-RLHF test file.
func hhLines(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open(hhTest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestHHPairs parses every HH-RLHF row as an implicit-prompt pair under the default template: the rendered
// prompt and response must give back the original dialogues. Five rows of the file are not such dialogues (the
// chosen text runs on into another turn, or the two sides' prompts differ): they are skipped as template
// mismatches.
func TestHHPairs(t *testing.T) {
	tmpl, err := parseRMTemplate(DefaultRewardTemplate)
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[string]int{}
	n := 0
	for i, line := range hhLines(t) {
		p, rerr := ParsePreference(line)
		if rerr != nil {
			t.Fatalf("line %d: %v", i+1, rerr)
		}
		pairs, rerr := p.pairs(tmpl, false)
		if rerr != nil {
			skipped[rerr.Reason]++
			continue
		}
		for _, tp := range pairs {
			n++
			if got := tmpl.prefix(tp.prompt) + tp.chosen + tmpl.after; got != p.Chosen {
				t.Fatalf("line %d: chosen renders as %q, the row has %q", i+1, got, p.Chosen)
			}
			if got := tmpl.prefix(tp.prompt) + tp.rejected + tmpl.after; got != p.Rejected {
				t.Fatalf("line %d: rejected renders as %q, the row has %q", i+1, got, p.Rejected)
			}
		}
	}
	t.Logf("%d pairs, skipped %v", n, skipped)
	if n != 2307 || skipped[ReasonTemplateMismatch] != 5 {
		t.Errorf("%d pairs, skipped %v", n, skipped)
	}
}

// TestEncodeMatchesReward checks that the trainer's inputs (package train's reward encoder over the template's
// rendering, with or without a final EOS) are what package reward feeds the exported model at serving time, on
// HH-RLHF pairs with a maximum length short enough to truncate most of them: the trainer tokenizes with package
// tokenizer's SentencePiece from the GGUF, reward with the exported tokenizer.json.
func TestEncodeMatchesReward(t *testing.T) {
	ck, err := weights.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	w, err := export.FromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := parseRMTemplate(DefaultRewardTemplate)
	lines := hhLines(t)[:300]
	for _, eos := range []bool{false, true} {
		vocab, err := export.VocabFromMetadata(ck.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		vocab.AddEOS = eos
		dir := filepath.Join(t.TempDir(), "rm")
		if err := export.WriteRewardModel(dir, export.RewardModel{Weights: w, Head: export.Head{Weight: make([]float32, w.Config.Dim)},
			Vocab: vocab, MaxPositions: 512, Template: DefaultRewardTemplate}); err != nil {
			t.Fatal(err)
		}
		for _, maxLen := range []int{48, 512} {
			rm, err := reward.Load(dir, reward.Options{Runtime: reward.RuntimeGo, MaxLength: maxLen})
			if err != nil {
				t.Fatal(err)
			}
			encode := rewardEncoder(tok, tmpl, maxLen, eos)
			n, truncated := 0, 0
			for i, line := range lines {
				p, _ := ParsePreference(line)
				pairs, rerr := p.pairs(tmpl, false)
				if rerr != nil {
					continue
				}
				for _, resp := range []string{pairs[0].chosen, pairs[0].rejected} {
					got, gotTrunc := encode(pairs[0].prompt, resp)
					want, wantTrunc := rm.Encode(pairs[0].prompt, resp)
					if !slices.Equal(got, want) || gotTrunc != wantTrunc {
						t.Fatalf("eos %v, max length %d, line %d: trainer %v (truncated %v), reward %v (truncated %v)",
							eos, maxLen, i+1, got, gotTrunc, want, wantTrunc)
					}
					if eos && got[len(got)-1] != tok.EOS() {
						t.Fatalf("line %d: no EOS at the end of %v", i+1, got)
					}
					n++
					if gotTrunc {
						truncated++
					}
				}
			}
			rm.Close()
			t.Logf("eos %v, max length %d: %d inputs equal, %d truncated", eos, maxLen, n, truncated)
			if maxLen == 48 && truncated < n/2 {
				t.Errorf("only %d inputs truncated at max length 48", truncated)
			}
		}
	}
}

func TestSplitDialogue(t *testing.T) {
	hh, _ := parseRMTemplate(DefaultRewardTemplate)
	for _, c := range []struct {
		tmpl             rmTemplate
		text             string
		prompt, response string
		ok               bool
	}{
		{hh, "\n\nHuman: hi\n\nAssistant: hello", "hi", "hello", true},
		{hh, "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d", "a\n\nAssistant: b\n\nHuman: c", "d", true},
		{hh, "Human: hi\n\nAssistant: hello", "", "", false},
		{hh, "\n\nHuman: hi", "", "", false},
		{rmTemplate{before: "Q: ", after: " END"}, "Q: x END", "", "x", true},
		{rmTemplate{before: "Q: ", after: " END"}, "Q: x", "", "", false},
	} {
		p, r, ok := c.tmpl.splitDialogue(c.text)
		if p != c.prompt || r != c.response || ok != c.ok {
			t.Errorf("%q: (%q, %q, %v), want (%q, %q, %v)", c.text, p, r, ok, c.prompt, c.response, c.ok)
		}
	}
	if _, err := parseRMTemplate("{response} {prompt}"); err == nil || !strings.Contains(err.Error(), "after") {
		t.Errorf("prompt after response: %v", err)
	}
}
