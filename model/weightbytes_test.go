package model

import (
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// TestWeightBytesPerToken checks the bytes a decode step reads against the checkpoint's own tensor sizes:
// every tensor once (the token embedding as the tied output matrix, or not at all when there is an output
// matrix), plus one embedding row; interleaving keeps the sizes.
func TestWeightBytesPerToken(t *testing.T) {
	stories, err := weights.Open(storiesGGUF)
	if err != nil {
		t.Fatal(err)
	}
	defer stories.Close()
	for _, ck := range []*weights.Checkpoint{stories, quantCheckpoint(t, weights.TypeQ8_0)} {
		var want int64
		tied := ck.Tensor("output.weight") == nil
		for _, ts := range ck.Tensors {
			if ts.Name == "token_embd.weight" && !tied {
				continue
			}
			want += int64(len(ts.Data))
		}
		m, err := Load(ck, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := m.tokEmbd.Type.RowBytes(m.cfg.Dim)
		want += int64(rb)
		if got := m.WeightBytesPerToken(); got != want {
			t.Errorf("%s: WeightBytesPerToken = %d, want %d", ck.Path, got, want)
		}
		m.Close()
	}
}
