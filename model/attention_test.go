package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/kernels"
)

// TestAttentionAgainstFloat64 runs the attention step on random queries and cache contents, for small
// (inlined loops) and large (kernels' row-run) heads, with and without grouped kv heads and with sequences
// ending inside a block, and compares each head's output with a float64 softmax(q·K/sqrt(d))·V.
func TestAttentionAgainstFloat64(t *testing.T) {
	for _, tc := range []struct{ heads, kvHeads, headDim, blockSize int }{
		{4, 4, 8, 16}, {8, 2, 8, 5}, {4, 4, 64, 16}, {8, 2, 64, 7}, {4, 1, 32, 16}, {2, 2, 48, 3},
	} {
		cfg := Config{Dim: tc.heads * tc.headDim, HiddenDim: 8, NLayers: 1, NHeads: tc.heads, NKVHeads: tc.kvHeads,
			HeadDim: tc.headDim, VocabSize: 4, ContextLen: 300}
		m := &Model{cfg: cfg, pool: kernels.NewPool(2)}
		m.s.init(m)
		c, err := NewKVCache(cfg, CacheOptions{MaxTokens: 1024, BlockSize: tc.blockSize})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(tc.headDim), uint64(tc.heads)))
		// Two sequences of different lengths, filled with random keys and values.
		lens := []int{1 + rng.IntN(40), 150 + rng.IntN(100)}
		seqs := make([]SeqID, len(lens))
		for k, n := range lens {
			seqs[k], _ = c.NewSeq()
			for range n {
				row := c.appendSlot(seqs[k]) * cfg.KVDim()
				for j := range cfg.KVDim() {
					c.k[0][row+j] = float32(rng.NormFloat64())
					c.v[0][row+j] = float32(rng.NormFloat64())
				}
			}
		}
		// One query token per sequence at its last position.
		n := len(seqs)
		m.s.grow(cfg, n)
		for i := range m.s.q[:n*cfg.QDim()] {
			m.s.q[i] = float32(rng.NormFloat64())
		}
		q := append([]float32(nil), m.s.q[:n*cfg.QDim()]...)
		for i := range seqs {
			m.s.pos[i] = lens[i] - 1
		}
		m.s.n, m.s.cache, m.s.seqs, m.s.layer = n, c, seqs, 0
		m.pool.Run(n*cfg.NKVHeads, 1, &m.s.attn)

		hd, group := cfg.HeadDim, cfg.NHeads/cfg.NKVHeads
		for i, id := range seqs {
			st := &c.seqs[id]
			for h := 0; h < cfg.NHeads; h++ {
				qh := q[i*cfg.QDim()+h*hd : i*cfg.QDim()+(h+1)*hd]
				kvOff := (h / group) * hd
				w := make([]float64, lens[i])
				mx := math.Inf(-1)
				for p := range w {
					r := c.row(st, p) * cfg.KVDim()
					for d := range hd {
						w[p] += float64(qh[d]) * float64(c.k[0][r+kvOff+d])
					}
					w[p] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, w[p])
				}
				var sum float64
				for p := range w {
					w[p] = math.Exp(w[p] - mx)
					sum += w[p]
				}
				got := m.s.att[i*cfg.QDim()+h*hd : i*cfg.QDim()+(h+1)*hd]
				for d := range hd {
					var want float64
					for p := range w {
						want += w[p] / sum * float64(c.v[0][c.row(st, p)*cfg.KVDim()+kvOff+d])
					}
					if math.Abs(float64(got[d])-want) > 1e-5 {
						t.Fatalf("%+v: seq %d head %d dim %d: %g, want %g", tc, i, h, d, got[d], want)
					}
				}
			}
		}
		m.Close()
	}
}
