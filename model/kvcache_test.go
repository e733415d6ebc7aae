package model

import (
	"math/rand/v2"
	"testing"
)

// TestCacheRandomOps drives a paged cache through a seeded random mix of new sequences, forks, frees,
// truncations and multi-sequence Forward calls, keeping a flat token list per sequence as the reference. It
// checks block accounting after every operation and, at the end, that each live sequence's next-token
// logits equal those of its flat token list evaluated on a fresh, unshared cache.
func TestCacheRandomOps(t *testing.T) {
	m := openModel(t, storiesGGUF, Options{Threads: 2, ContextLen: 256})
	v := m.Config().VocabSize
	for _, bs := range []int{1, 4, 16} {
		t.Run("block"+itoa(bs), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(bs), 99))
			c := newCache(t, m, CacheOptions{MaxTokens: 640, BlockSize: bs})
			flat := map[SeqID][]int32{}
			var live []SeqID
			logits := make([]float32, 8*v)
			check := func(op string) {
				t.Helper()
				st := c.Stats()
				tokens := 0
				for _, id := range live {
					if c.Len(id) != len(flat[id]) {
						t.Fatalf("after %s: sequence %d has length %d, want %d", op, id, c.Len(id), len(flat[id]))
					}
					tokens += len(flat[id])
				}
				// Blocks in use: the distinct blocks of the live sequences' tables, each with a reference
				// count equal to the number of tables holding it.
				count := map[int32]int32{}
				for _, id := range live {
					for _, b := range c.seqs[id].blocks {
						count[b]++
					}
				}
				for b, n := range count {
					if c.refs[b] != n {
						t.Fatalf("after %s: block %d has refcount %d, held by %d sequences", op, b, c.refs[b], n)
					}
				}
				if st.Seqs != len(live) || st.Tokens != tokens || st.BlocksUsed != len(count) ||
					st.BlocksUsed+len(c.free) != st.BlocksTotal {
					t.Fatalf("after %s: stats %+v, want %d seqs, %d tokens, %d blocks", op, st, len(live), tokens, len(count))
				}
			}
			for step := 0; step < 120; step++ {
				switch r := rng.IntN(10); {
				case r == 0 || len(live) == 0:
					id := newSeq(t, c)
					live = append(live, id)
					flat[id] = nil
					check("new")
				case r == 1 && len(live) < 8:
					src := live[rng.IntN(len(live))]
					id, err := c.Fork(src)
					if err != nil {
						t.Fatal(err)
					}
					live = append(live, id)
					flat[id] = append([]int32(nil), flat[src]...)
					check("fork")
				case r == 2 && len(live) > 1:
					k := rng.IntN(len(live))
					c.Free(live[k])
					delete(flat, live[k])
					live = append(live[:k], live[k+1:]...)
					check("free")
				case r == 3:
					id := live[rng.IntN(len(live))]
					n := rng.IntN(len(flat[id]) + 1)
					if err := c.Truncate(id, n); err != nil {
						t.Fatal(err)
					}
					flat[id] = flat[id][:n]
					check("truncate")
				default:
					// One Forward over a few sequences, 1-3 tokens each.
					var b Batch
					for _, id := range live {
						if rng.IntN(2) == 0 || len(flat[id]) > 200 {
							continue
						}
						for range 1 + rng.IntN(3) {
							b.Tokens = append(b.Tokens, int32(3+rng.IntN(v-3)))
							b.Seqs = append(b.Seqs, id)
						}
					}
					if err := m.Forward(c, b, logits); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					for i, id := range b.Seqs {
						flat[id] = append(flat[id], b.Tokens[i])
					}
					check("forward")
				}
			}
			// Every live sequence continues with the same token; compare with a fresh evaluation.
			fresh := newCache(t, m, CacheOptions{MaxTokens: 256})
			var b Batch
			for _, id := range live {
				if len(flat[id]) < 256 {
					b.Tokens = append(b.Tokens, 7)
					b.Seqs = append(b.Seqs, id)
				}
			}
			b.Logits = make([]bool, len(b.Tokens))
			for i := range b.Logits {
				b.Logits[i] = true
			}
			out := make([]float32, len(b.Tokens)*v)
			if err := m.Forward(c, b, out); err != nil {
				t.Fatal(err)
			}
			for i, id := range b.Seqs {
				want := stepwise(t, m, fresh, append(append([]int32(nil), flat[id]...), 7))
				checkRow(t, "sequence "+itoa(int(id)), out[i*v:(i+1)*v], want[len(want)-1], 1e-4)
			}
		})
	}
}
