package export

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/bestofn/bestofn/model"
)

// Head is a reward model's scalar head: score = Weight . rmsnorm_final(h_last) + Bias, where h_last is the
// residual stream at the last non-padding token; with Mean, score = Weight . mean(rmsnorm_final(h)) + Bias, the
// mean over every non-padding token (package train's PoolMean).
type Head struct {
	Weight []float32 // (dim)
	Bias   float32
	Mean   bool
}

// maskValue is what a masked attention score becomes: exp(maskValue - max) is exactly 0 in float32, and a row
// with every position masked (a padding query under left padding) stays finite instead of NaN.
const maskValue = -1e9

// WriteRewardONNX writes the reward model (backbone w, head) as an ONNX graph: inputs input_ids and
// attention_mask (int64, [batch, sequence]), output logits (float32, [batch, 1]). maxPositions bounds the
// sequence length (it sizes the rotary tables); 0 means w.Config.ContextLen.
//
// The graph is the forward pass of package model, written with ops that both ONNX Runtime and hugot's Go
// runtime (onnx-gomlx) run: Gather, MatMul, Add, Sub, Mul, Div, Neg, Sqrt, ReduceMean, ReduceMax, CumSum, Slice,
// Concat, Reshape, Transpose, Unsqueeze, Expand, Softmax, Sigmoid, Equal, LessOrEqual, And, Cast, Where.
//
//   - Positions come from the mask, pos = cumsum(mask) - mask: 0..n-1 on the tokens whether the batch is padded
//     on the right or on the left.
//   - q and k rows are permuted per head from GGUF's interleaved rotary pairs to halves (HF's rotate_half
//     layout); q.k is the same sum in another order. cos and sin are tables of maxPositions rows computed in
//     float64, as package model computes them, and gathered by position.
//   - Attention is causal over positions and masked where attention_mask is 0 (an additive -1e9); grouped kv
//     heads are repeated to the query heads (Expand), as HF's repeat_kv does.
//   - The head reads the last position whose mask is 1 (a one-hot row times the residual stream), then the final
//     RMSNorm and the dot product with the head's weight; with Head.Mean it reads the mean of the final-normed
//     states of the positions whose mask is 1 (a row of 1/n times them).
func WriteRewardONNX(out io.Writer, w *Weights, head Head, maxPositions int) error {
	g, err := rewardGraph(w, head, maxPositions)
	if err != nil {
		return err
	}
	b, err := g.model("bestofn-reward", "bestofn")
	if err != nil {
		return err
	}
	if _, err := out.Write(b); err != nil {
		return fmt.Errorf("export: write onnx: %w", err)
	}
	return nil
}

func rewardGraph(w *Weights, head Head, maxPositions int) (*onnxGraph, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	cfg := w.Config
	if maxPositions <= 0 {
		maxPositions = cfg.ContextLen
	}
	if maxPositions <= 0 {
		return nil, fmt.Errorf("export: no maximum sequence length (config context length %d)", cfg.ContextLen)
	}
	dim, hd, nh, nkv := cfg.Dim, cfg.HeadDim, cfg.NHeads, cfg.NKVHeads
	if len(head.Weight) != dim {
		return nil, fmt.Errorf("export: head weight has %d values, want dim %d", len(head.Weight), dim)
	}
	freqs, err := ropeFrequencies(w)
	if err != nil {
		return nil, err
	}

	g := newONNXGraph()
	batchSeq := []string{"batch", "sequence"}
	g.input("input_ids", onnxInt64, []int64{-1, -1}, batchSeq)
	g.input("attention_mask", onnxInt64, []int64{-1, -1}, batchSeq)

	// Positions: 0..n-1 on each row's tokens, n on right padding, 0 on left padding; always < maxPositions.
	pos := g.op("Sub", []string{g.op("CumSum", []string{"attention_mask", g.constInt(1)}), "attention_mask"})

	// Rotary tables (maxPositions, head_dim) in halves layout, gathered to (batch, sequence, 1, head_dim).
	cosT, sinT := make([]float32, maxPositions*hd), make([]float32, maxPositions*hd)
	for p := range maxPositions {
		for j, f := range freqs {
			s, c := math.Sincos(float64(p) * f)
			cosT[p*hd+j], cosT[p*hd+j+hd/2] = float32(c), float32(c)
			sinT[p*hd+j], sinT[p*hd+j+hd/2] = float32(s), float32(s)
		}
	}
	cos := g.op("Unsqueeze", []string{g.op("Gather", []string{g.floats("rope_cos", []int{maxPositions, hd}, cosT), pos}), g.constInts(2)})
	sin := g.op("Unsqueeze", []string{g.op("Gather", []string{g.floats("rope_sin", []int{maxPositions, hd}, sinT), pos}), g.constInts(2)})

	// Additive attention bias (batch, 1, query, key): 0 where the key's position is at or before the query's
	// and the key is not padding, maskValue elsewhere.
	causal := g.op("LessOrEqual", []string{
		g.op("Unsqueeze", []string{pos, g.constInts(1)}), // (batch, 1, key)
		g.op("Unsqueeze", []string{pos, g.constInts(2)}), // (batch, query, 1)
	})
	real := g.op("Cast", []string{"attention_mask"}, intAttr("to", onnxBool))
	allowed := g.op("And", []string{causal, g.op("Unsqueeze", []string{real, g.constInts(1)})})
	bias := g.op("Unsqueeze", []string{
		g.op("Where", []string{allowed, g.constFloat(0), g.constFloat(maskValue)}), g.constInts(1)})

	// Every tensor is looked up (and its shape checked) before the graph uses it.
	l := &loader{w: w}
	emb := l.get("token_embd.weight", cfg.VocabSize, dim)
	type layerWeights struct{ attnNorm, wq, wk, wv, wo, ffnNorm, gate, up, down []float32 }
	layers := make([]layerWeights, cfg.NLayers)
	for i := range layers {
		p := "blk." + strconv.Itoa(i) + "."
		layers[i] = layerWeights{
			attnNorm: l.get(p+"attn_norm.weight", dim),
			wq:       l.get(p+"attn_q.weight", nh*hd, dim),
			wk:       l.get(p+"attn_k.weight", nkv*hd, dim),
			wv:       l.get(p+"attn_v.weight", nkv*hd, dim),
			wo:       l.get(p+"attn_output.weight", dim, nh*hd),
			ffnNorm:  l.get(p+"ffn_norm.weight", dim),
			gate:     l.get(p+"ffn_gate.weight", cfg.HiddenDim, dim),
			up:       l.get(p+"ffn_up.weight", cfg.HiddenDim, dim),
			down:     l.get(p+"ffn_down.weight", dim, cfg.HiddenDim),
		}
	}
	outNorm := l.get("output_norm.weight", dim)
	if l.err != nil {
		return nil, l.err
	}

	norm := func(x string, weight []float32) string { // RMSNorm over the last axis
		ms := g.op("ReduceMean", []string{g.op("Mul", []string{x, x})}, intsAttr("axes", -1), intAttr("keepdims", 1))
		r := g.op("Sqrt", []string{g.op("Add", []string{ms, g.constFloat(cfg.NormEps)})})
		return g.op("Mul", []string{g.op("Div", []string{x, r}), g.vector(weight)})
	}
	// linear multiplies x by the transpose of the (out, in) matrix m, whose rows are first permuted per head from
	// interleaved rotary pairs to halves when halves is set.
	linear := func(x string, m []float32, out, in int, halves bool) string {
		t := make([]float32, in*out) // (in, out)
		for o := range out {
			src := o
			if halves {
				src = interleavedRow(o, hd)
			}
			for i, v := range m[src*in : (src+1)*in] {
				t[i*out+o] = v
			}
		}
		return g.op("MatMul", []string{x, g.matrix(in, out, t)})
	}
	rope := func(x string) string { // x: (batch, sequence, heads, head_dim) in halves layout
		x1 := g.op("Slice", []string{x, g.constInts(0), g.constInts(int64(hd / 2)), g.constInts(3)})
		x2 := g.op("Slice", []string{x, g.constInts(int64(hd / 2)), g.constInts(int64(hd)), g.constInts(3)})
		rot := g.op("Concat", []string{g.op("Neg", []string{x2}), x1}, intAttr("axis", 3))
		return g.op("Add", []string{g.op("Mul", []string{x, cos}), g.op("Mul", []string{rot, sin})})
	}
	heads := func(x string, n int) string { // (batch, sequence, n*head_dim) -> (batch, sequence, n, head_dim)
		return g.op("Reshape", []string{x, g.constInts(0, 0, int64(n), int64(hd))})
	}

	// Token embeddings.
	x := g.op("Gather", []string{g.floats("token_embd.weight", []int{cfg.VocabSize, dim}, emb), "input_ids"})
	scale := g.constFloat(float32(1 / math.Sqrt(float64(hd))))
	for _, ly := range layers {
		// Attention RMSNorm; q, k, v; RoPE on q and k.
		h := norm(x, ly.attnNorm)
		q := rope(heads(linear(h, ly.wq, nh*hd, dim, true), nh))
		k := rope(heads(linear(h, ly.wk, nkv*hd, dim, true), nkv))
		v := heads(linear(h, ly.wv, nkv*hd, dim, false), nkv)
		if nh != nkv { // repeat each kv head for its group of query heads
			group := int64(nh / nkv)
			repeat := func(t string) string {
				t = g.op("Unsqueeze", []string{t, g.constInts(3)}) // (batch, sequence, kv_heads, 1, head_dim)
				t = g.op("Expand", []string{t, g.constInts(1, 1, 1, group, 1)})
				return heads(t, nh)
			}
			k, v = repeat(k), repeat(v)
		}

		// Scaled dot-product attention with the bias, per head.
		qh := g.op("Transpose", []string{q}, intsAttr("perm", 0, 2, 1, 3)) // (batch, heads, sequence, head_dim)
		kt := g.op("Transpose", []string{k}, intsAttr("perm", 0, 2, 3, 1)) // (batch, heads, head_dim, sequence)
		vh := g.op("Transpose", []string{v}, intsAttr("perm", 0, 2, 1, 3)) // (batch, heads, sequence, head_dim)
		scores := g.op("Add", []string{g.op("Mul", []string{g.op("MatMul", []string{qh, kt}), scale}), bias})
		att := g.op("MatMul", []string{g.op("Softmax", []string{scores}, intAttr("axis", -1)), vh})
		att = g.op("Transpose", []string{att}, intsAttr("perm", 0, 2, 1, 3)) // (batch, sequence, heads, head_dim)
		att = g.op("Reshape", []string{att, g.constInts(0, 0, int64(nh*hd))})

		// Output projection and residual.
		x = g.op("Add", []string{x, linear(att, ly.wo, dim, nh*hd, false)})

		// FFN RMSNorm, SwiGLU w2(silu(w1 x) * w3 x), residual.
		h = norm(x, ly.ffnNorm)
		gate := linear(h, ly.gate, cfg.HiddenDim, dim, false)
		up := linear(h, ly.up, cfg.HiddenDim, dim, false)
		act := g.op("Mul", []string{g.op("Mul", []string{gate, g.op("Sigmoid", []string{gate})}), up})
		x = g.op("Add", []string{x, linear(act, ly.down, dim, cfg.HiddenDim, false)})
	}

	// The last non-padding position of each row: the largest position among the tokens.
	last := g.op("ReduceMax", []string{g.op("Mul", []string{pos, "attention_mask"})}, intsAttr("axes", 1), intAttr("keepdims", 1))
	var hLast string
	if head.Mean {
		// Every token's weight 1/n (n = last + 1 tokens), padding's 0, times the final-normed states.
		n := g.op("Cast", []string{g.op("Add", []string{last, g.constInt(1)})}, intAttr("to", onnxFloat))
		wts := g.op("Div", []string{g.op("Cast", []string{"attention_mask"}, intAttr("to", onnxFloat)), n})
		hLast = g.op("MatMul", []string{g.op("Unsqueeze", []string{wts, g.constInts(1)}), norm(x, outNorm)}) // (batch, 1, dim)
	} else {
		pick := g.op("Cast", []string{g.op("And", []string{g.op("Equal", []string{pos, last}), real})}, intAttr("to", onnxFloat))
		hLast = g.op("MatMul", []string{g.op("Unsqueeze", []string{pick, g.constInts(1)}), x}) // (batch, 1, dim)
		hLast = norm(hLast, outNorm)
	}
	score := g.op("Add", []string{
		g.op("MatMul", []string{hLast, g.floats("score.weight", []int{dim, 1}, head.Weight)}),
		g.floats("score.bias", []int{1}, []float32{head.Bias})})
	g.opTo("logits", "Reshape", []string{score, g.constInts(-1, 1)})
	g.output("logits", onnxFloat, []int64{-1, 1}, []string{"batch", ""})
	return g, nil
}

// interleavedRow maps row o of a q or k matrix in halves layout (per head: the first elements of all rotary pairs,
// then the second ones) to its row in GGUF's interleaved layout (pairs side by side).
func interleavedRow(o, headDim int) int {
	h, j := o/headDim, o%headDim
	if j < headDim/2 {
		return h*headDim + 2*j
	}
	return h*headDim + 2*(j-headDim/2) + 1
}

// ropeFrequencies returns each rotary pair's angle per position, as package model computes it:
// theta^(-2i/head_dim), divided by the linear scale factor, or by rope_freqs.weight's factors (llama3 scaling).
func ropeFrequencies(w *Weights) ([]float64, error) {
	cfg := w.Config
	n := cfg.HeadDim / 2
	var factors []float32
	if w.has("rope_freqs.weight") {
		var err error
		if factors, err = w.tensor("rope_freqs.weight", n); err != nil {
			return nil, err
		}
	} else if cfg.RopeScaling == model.RopeScalingLlama3 {
		return nil, fmt.Errorf("export: llama3 rope scaling needs tensor rope_freqs.weight")
	}
	f := make([]float64, n)
	for i := range f {
		f[i] = math.Pow(float64(cfg.RopeTheta), -2*float64(i)/float64(cfg.HeadDim))
		if cfg.RopeScaling == model.RopeScalingLinear {
			f[i] /= float64(cfg.RopeScaleFactor)
		}
		if factors != nil {
			f[i] /= float64(factors[i])
		}
	}
	return f, nil
}
