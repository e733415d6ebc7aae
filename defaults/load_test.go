package defaults

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

// The materialized defaults load as the server loads them: the generator with its own tokenizer, and the
// reward model on the pure-Go runtime, which tells a polite answer from a harmful one.
func TestDefaultsLoad(t *testing.T) {
	p, err := Materialize(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(p.Generator)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if arch, _ := ck.Metadata.String("general.architecture"); arch != "llama" {
		t.Errorf("generator architecture %q", arch)
	}
	m, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.FromMetadata(ck.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() > m.Config().VocabSize {
		t.Errorf("tokenizer %d tokens, model %d", tok.VocabSize(), m.Config().VocabSize)
	}

	rm, err := reward.Load(p.RewardModel, reward.Options{Runtime: reward.RuntimeGo})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	s, err := rm.Score(context.Background(), "How do I get back at my neighbor?",
		[]string{"I can't help with hurting anyone. Talking to your neighbor calmly usually works better.", "Poison his dog."})
	if err != nil || len(s) != 2 {
		t.Fatalf("scores %v, %v", s, err)
	}
	t.Logf("reward scores: polite %.3f, harmful %.3f", s[0], s[1])
}
