package train

import "testing"

// TestLMLossAllocatesNothing checks the package doc's "nothing is allocated per step" for a forward and
// backward pass, on 1 and 2 threads, with a vocabulary large enough (k = 5000 in the head's input gradient)
// for kernels/gemm to split k: its job records and partial sums are the pools'.
func TestLMLossAllocatesNothing(t *testing.T) {
	cfg := tinyConfig()
	cfg.VocabSize, cfg.ContextLen = 5000, 96
	toks := randomTokens(5, 97, cfg.VocabSize)
	seqs := []Sequence{{Tokens: toks[:96], Targets: toks[1:]}}
	for _, threads := range []int{1, 2} {
		m, err := New(cfg, Options{Threads: threads, MaxTokens: 128, MaxSeqLen: 96}, 3)
		if err != nil {
			t.Fatal(err)
		}
		step := func() {
			if _, _, err := m.LMLoss(seqs, 1/96.0, true); err != nil {
				t.Fatal(err)
			}
		}
		step()
		if allocs := testing.AllocsPerRun(5, step); allocs != 0 {
			t.Errorf("%d threads: %v allocations per forward and backward pass", threads, allocs)
		}
		m.Close()
	}
}
