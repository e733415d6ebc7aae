package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/bestofn/bestofn/weights"
)

// synthSpec describes a synthetic LLaMA.
type synthSpec struct {
	dim, layers, heads, kvHeads, ffn, vocab, ctx int
	typ                                          weights.Type
	seed                                         uint64
	threads                                      int
}

// runSynth is `bestofn synth --dim D --layers L --heads H --kv-heads K --ffn F --vocab V --type T [--ctx N]
// [--seed S] OUT.gguf`: it writes a LLaMA GGUF with random N(0, 0.02) weights (norms 1) and a synthetic
// SentencePiece-style vocabulary, for speed runs at real shapes. Defaults are TinyLlama-1.1B's shape in Q8_0.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s synthSpec
	fs.IntVar(&s.dim, "dim", 2048, "embedding length")
	fs.IntVar(&s.layers, "layers", 22, "number of layers")
	fs.IntVar(&s.heads, "heads", 32, "attention heads")
	fs.IntVar(&s.kvHeads, "kv-heads", 4, "key/value heads")
	fs.IntVar(&s.ffn, "ffn", 5632, "feed-forward hidden size")
	fs.IntVar(&s.vocab, "vocab", 32000, "vocabulary size (at least 259)")
	fs.IntVar(&s.ctx, "ctx", 2048, "context length")
	fs.Uint64Var(&s.seed, "seed", 1, "random seed")
	fs.IntVar(&s.threads, "threads", runtime.NumCPU(), "quantization threads")
	typ := fs.String("type", "Q8_0", "weight type: Q8_0, Q4_0, F16, F32, Q4_K or Q6_K (any type convert accepts)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("usage: bestofn synth [--dim D --layers L --heads H --kv-heads K --ffn F --vocab V --type T --ctx N --seed S] OUT.gguf")
	}
	t, err := parseType(*typ)
	if err != nil {
		return err
	}
	s.typ = t
	start := time.Now()
	if err := writeFileAtomic(fs.Arg(0), func(w io.Writer) error { return writeSynth(ctx, w, s) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s, dim %d, %d layers, %d/%d heads, ffn %d, vocab %d) in %v\n", fs.Arg(0), s.typ,
		s.dim, s.layers, s.heads, s.kvHeads, s.ffn, s.vocab, time.Since(start).Round(time.Millisecond))
	return nil
}

// check validates the shape against the type's block size.
func (s synthSpec) check() error {
	if s.dim <= 0 || s.layers <= 0 || s.heads <= 0 || s.kvHeads <= 0 || s.ffn <= 0 || s.ctx <= 0 || s.threads <= 0 {
		return errors.New("dim, layers, heads, kv-heads, ffn, ctx and threads must be positive")
	}
	if s.vocab < 259 {
		return fmt.Errorf("vocab %d: need at least 259 (3 special and 256 byte tokens)", s.vocab)
	}
	if s.dim%s.heads != 0 || s.heads%s.kvHeads != 0 || (s.dim/s.heads)%2 != 0 {
		return fmt.Errorf("dim %d, heads %d, kv-heads %d: heads must divide dim into even head sizes, kv-heads divide heads", s.dim, s.heads, s.kvHeads)
	}
	if bs := s.typ.BlockSize(); s.dim%bs != 0 || s.ffn%bs != 0 {
		return fmt.Errorf("%s needs dim and ffn multiples of %d", s.typ, bs)
	}
	return nil
}

// synthVocab returns a LLaMA-style vocabulary: <unk>, <s>, </s>, the 256 byte tokens <0xNN>, then "tokN".
func synthVocab(n int) ([]string, []float32, []int32) {
	tokens := make([]string, n)
	scores := make([]float32, n)
	types := make([]int32, n)
	tokens[0], tokens[1], tokens[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = tokUnknown, tokControl, tokControl
	for b := 0; b < 256; b++ {
		tokens[3+b] = fmt.Sprintf("<0x%02X>", b)
		types[3+b] = tokByte
	}
	for i := 259; i < n; i++ {
		tokens[i] = fmt.Sprintf("tok%d", i)
		scores[i] = -float32(i - 259)
		types[i] = tokNormal
	}
	return tokens, scores, types
}

// writeSynth streams the synthetic model to w: tensors are generated and quantized in row chunks by parallel
// workers and written in order, so memory stays bounded whatever the model size. Each chunk draws from its own
// PCG stream seeded by (seed, tensor, chunk), so the file does not depend on the thread count.
func writeSynth(ctx context.Context, w io.Writer, s synthSpec) error {
	if err := s.check(); err != nil {
		return err
	}
	headDim := s.dim / s.heads
	md := weights.LlamaParams{Name: "synthetic", VocabSize: s.vocab, ContextLen: s.ctx, Dim: s.dim, Layers: s.layers,
		FFNDim: s.ffn, Heads: s.heads, KVHeads: s.kvHeads, NormEps: 1e-5, RopeTheta: 10000}.Metadata()
	tokens, scores, types := synthVocab(s.vocab)
	md.Set("tokenizer.ggml.model", "llama")
	md.Set("tokenizer.ggml.tokens", tokens)
	md.Set("tokenizer.ggml.scores", scores)
	md.Set("tokenizer.ggml.token_type", types)
	md.Set("tokenizer.ggml.unknown_token_id", uint32(0))
	md.Set("tokenizer.ggml.bos_token_id", uint32(1))
	md.Set("tokenizer.ggml.eos_token_id", uint32(2))

	kvDim := s.kvHeads * headDim
	mat := func(name string, in, out int) *weights.Tensor {
		return &weights.Tensor{Name: name, Type: s.typ, Shape: []int{in, out}}
	}
	norm := func(name string) *weights.Tensor {
		return &weights.Tensor{Name: name, Type: weights.TypeF32, Shape: []int{s.dim}}
	}
	tensors := []*weights.Tensor{mat("token_embd.weight", s.dim, s.vocab), norm("output_norm.weight"), mat("output.weight", s.dim, s.vocab)}
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		tensors = append(tensors,
			norm(p+"attn_norm.weight"),
			mat(p+"attn_q.weight", s.dim, s.dim),
			mat(p+"attn_k.weight", s.dim, kvDim),
			mat(p+"attn_v.weight", s.dim, kvDim),
			mat(p+"attn_output.weight", s.dim, s.dim),
			norm(p+"ffn_norm.weight"),
			mat(p+"ffn_gate.weight", s.dim, s.ffn),
			mat(p+"ffn_down.weight", s.ffn, s.dim),
			mat(p+"ffn_up.weight", s.dim, s.ffn))
	}
	g := newSynthGen(s.threads, s.seed)
	return weights.WriteGGUFFunc(w, md, tensors, func(i int, w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return g.tensor(w, i, tensors[i])
	})
}

// synthGen generates tensors chunk by chunk with a fixed set of per-worker buffers.
type synthGen struct {
	threads int
	seed    uint64
	normal  []float32   // (65536) inverse normal CDF at (u+0.5)/65536, times 0.02
	f32     [][]float32 // (threads, chunk values)
	out     [][]byte    // (threads, chunk bytes)
}

// synthChunkValues is the number of values a worker generates at once (a whole number of rows is used).
const synthChunkValues = 1 << 18

func newSynthGen(threads int, seed uint64) *synthGen {
	// Sampling N(0, 0.02) by inverting its CDF at a 16-bit uniform gives four values per 64-bit draw, several
	// times faster than NormFloat64; the distribution is the normal discretized to 65536 equiprobable levels
	// (tails cut at 4.3 sigma), which is all random benchmark weights need.
	normal := make([]float32, 1<<16)
	for u := range normal {
		p := (float64(u) + 0.5) / (1 << 16)
		normal[u] = float32(0.02 * math.Sqrt2 * math.Erfinv(2*p-1))
	}
	return &synthGen{threads: threads, seed: seed, normal: normal, f32: make([][]float32, threads), out: make([][]byte, threads)}
}

// tensor writes tensor idx: norms are all 1, matrices N(0, 0.02).
func (g *synthGen) tensor(w io.Writer, idx int, t *weights.Tensor) error {
	rowLen := t.Shape[0]
	rows := t.NumElements() / rowLen
	rowBytes, err := t.Type.RowBytes(rowLen)
	if err != nil {
		return err
	}
	chunkRows := max(1, synthChunkValues/rowLen)
	nChunks := (rows + chunkRows - 1) / chunkRows
	for first := 0; first < nChunks; first += g.threads {
		batch := min(g.threads, nChunks-first)
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for k := 0; k < batch; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				c := first + k
				n := min(chunkRows, rows-c*chunkRows)
				if cap(g.f32[k]) < n*rowLen {
					g.f32[k] = make([]float32, n*rowLen)
				}
				if cap(g.out[k]) < n*rowBytes {
					g.out[k] = make([]byte, n*rowBytes)
				}
				f, out := g.f32[k][:n*rowLen], g.out[k][:n*rowBytes]
				if len(t.Shape) == 1 {
					for i := range f {
						f[i] = 1
					}
				} else {
					rng := rand.NewPCG(g.seed, uint64(idx)<<32|uint64(c))
					for i := 0; i < len(f); i += 4 {
						r := rng.Uint64()
						for j := i; j < min(i+4, len(f)); j++ {
							f[j] = g.normal[uint16(r)]
							r >>= 16
						}
					}
				}
				errs[k] = weights.Quantize(t.Type, f, out)
			}(k)
		}
		wg.Wait()
		for k := 0; k < batch; k++ {
			if errs[k] != nil {
				return errs[k]
			}
			n := min(chunkRows, rows-(first+k)*chunkRows)
			if _, err := w.Write(g.out[k][:n*rowBytes]); err != nil {
				return err
			}
		}
	}
	return nil
}
