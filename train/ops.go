package train

import (
	"math"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/kernels/gemm"
)

// The operations of the forward pass and their backward passes. A backward function adds (+=) the
// gradients of its inputs and parameters given the gradient of its output, as llm.c's do, so callers clear
// a gradient buffer once before the first contribution. Shapes are in the comments; matrices are row-major,
// a weight matrix w of y = w x is (out, in).

// matmulForward sets out (n, outDim) = x (n, in) · wᵀ, w (outDim, in); with accumulate it adds instead.
func matmulForward(mm gemmFunc, out, x, w []float32, n, in, outDim int, accumulate bool) {
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	mm(false, true, n, outDim, in, 1, x, in, w, in, beta, out, outDim)
}

// matmulBackward adds dx (n, in) += dout · w and dw (outDim, in) += doutᵀ · x.
func matmulBackward(mm gemmFunc, dx, dw, dout, x, w []float32, n, in, outDim int) {
	mm(false, false, n, in, outDim, 1, dout, outDim, w, in, 1, dx, in)
	mm(true, false, outDim, in, n, 1, dout, outDim, x, in, 1, dw, in)
}

// embeddingForward sets row i of out (n, dim) to row tokens[i] of table (vocab, dim).
func embeddingForward(out, table []float32, tokens []int32, dim int) {
	for i, t := range tokens {
		copy(out[i*dim:(i+1)*dim], table[int(t)*dim:(int(t)+1)*dim])
	}
}

// embeddingBackward adds row i of dout to row tokens[i] of dtable.
func embeddingBackward(dtable, dout []float32, tokens []int32, dim int) {
	for i, t := range tokens {
		add(dtable[int(t)*dim:(int(t)+1)*dim], dout[i*dim:(i+1)*dim])
	}
}

// rmsnormForward sets each row of out (n, dim) to x·r·w with r = 1/sqrt(mean(x²) + eps), and rstd[i] = r
// (the same float32 steps as package model's rmsnorm).
func rmsnormForward(out, rstd, x, w []float32, n, dim int, eps float32) {
	for i := 0; i < n; i++ {
		xi, oi := x[i*dim:(i+1)*dim], out[i*dim:(i+1)*dim]
		var ss float32
		for _, v := range xi {
			ss += v * v
		}
		r := 1 / float32(math.Sqrt(float64(ss/float32(dim)+eps)))
		rstd[i] = r
		for j, v := range xi {
			oi[j] = v * r * w[j]
		}
	}
}

// rmsnormBackward adds dx += r·(w⊙dy) − (r³/dim)·x·Σ(w⊙dy⊙x) and dw += Σ_rows dy⊙x·r.
func rmsnormBackward(dx, dw, dy, x, w, rstd []float32, n, dim int) {
	for i := 0; i < n; i++ {
		xi, dyi, dxi := x[i*dim:(i+1)*dim], dy[i*dim:(i+1)*dim], dx[i*dim:(i+1)*dim]
		r := rstd[i]
		var dot float32 // Σ w dy x
		for j, v := range xi {
			dot += w[j] * dyi[j] * v
		}
		c := r * r * r / float32(dim) * dot
		for j, v := range xi {
			dxi[j] += r*w[j]*dyi[j] - c*v
			dw[j] += dyi[j] * v * r
		}
	}
}

// ropeForward rotates each pair (x[2j], x[2j+1]) of every head of a row by the angle of the row's position
// (cos, sin: (half) values at that position): GGUF's interleaved-pair order, as package model.
func ropeForward(x, cos, sin []float32) {
	hd := 2 * len(cos)
	for h := 0; h+hd <= len(x); h += hd {
		v := x[h : h+hd]
		for j := range cos {
			a, b := v[2*j], v[2*j+1]
			v[2*j] = a*cos[j] - b*sin[j]
			v[2*j+1] = a*sin[j] + b*cos[j]
		}
	}
}

// ropeBackward turns the gradient of a rotated row into the gradient of the row before rotation, in
// place: the rotation's transpose, i.e. the rotation by minus the angle.
func ropeBackward(dx, cos, sin []float32) {
	hd := 2 * len(cos)
	for h := 0; h+hd <= len(dx); h += hd {
		v := dx[h : h+hd]
		for j := range cos {
			da, db := v[2*j], v[2*j+1]
			v[2*j] = da*cos[j] + db*sin[j]
			v[2*j+1] = -da*sin[j] + db*cos[j]
		}
	}
}

// attnBlock is how many query rows attention takes at once: each block's scores are computed only against
// the keys up to its last row, so causal attention costs about half of the full square.
const attnBlock = 64

// attnProbs sets probs (r1-r0, r1), row stride r1, to rows r0..r1-1 of causal attention weights over keys
// 0..r1-1: softmax(scale · q kᵀ) with row r seeing keys 0..r, the entries right of the diagonal zero.
//
// Each row is masked with -Inf right of the diagonal and the softmax runs over all r1 columns: whole vector
// lengths instead of ragged ones, and e^-Inf is exactly 0.
func attnProbs(p *kernels.Pool, probs, q, k []float32, r0, r1, hd, ldq, ldk int, scale float32) {
	gemm.Sgemm(p, false, true, r1-r0, r1, hd, scale, q[r0*ldq:], ldq, k, ldk, 0, probs, r1)
	inf := float32(math.Inf(-1))
	for r := r0; r < r1; r++ {
		row := probs[(r-r0)*r1 : (r-r0+1)*r1]
		for c := r + 1; c < r1; c++ {
			row[c] = inf
		}
		softmax(row)
	}
}

// attentionForward is causal softmax attention of one query head over one sequence of t positions:
// out (t, hd) = softmax(scale · q kᵀ, row r seeing keys 0..r) · v, one block of attnBlock query rows at a
// time. q, k, v and out are rows ldq, ldk, ldv, ldo apart; probs is scratch of attnBlock·t values. The
// weights are not kept: attentionBackward recomputes them block by block, as FlashAttention does, so memory
// does not grow with t². p runs the matrix products (a one-thread pool inside a parallel task).
func attentionForward(p *kernels.Pool, out, q, k, v, probs []float32, t, hd, ldq, ldk, ldv, ldo int, scale float32) {
	for r0 := 0; r0 < t; r0 += attnBlock {
		r1 := min(r0+attnBlock, t)
		attnProbs(p, probs, q, k, r0, r1, hd, ldq, ldk, scale)
		gemm.Sgemm(p, false, false, r1-r0, hd, r1, 1, probs, r1, v, ldv, 0, out[r0*ldo:], ldo)
	}
}

// attentionBackward adds the gradients of q, k and v (rows ldq, ldk, ldv apart, like the inputs) given
// the gradient dout of attentionForward's output. probs and dp are scratch of attnBlock·t values, tr of
// hd·t. Per block of query rows, with P the block's weights (recomputed):
//
//	dP = dout vᵀ,  dv += Pᵀ dout,  dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale,  dq += dS k,  dk += dSᵀ q
//
// dv and dk are computed transposed, (doutᵀ P)ᵀ and (qᵀ dS)ᵀ through tr: a product of hd rows by t
// columns runs 2-5x faster than one of t rows by hd columns (measured for head dimensions 8 and 48).
func attentionBackward(p *kernels.Pool, dq, dk, dv, dout, q, k, v, probs, dp, tr []float32,
	t, hd, ldq, ldk, ldv, ldo int, scale float32) {
	for r0 := 0; r0 < t; r0 += attnBlock {
		r1 := min(r0+attnBlock, t)
		rb := r1 - r0
		attnProbs(p, probs, q, k, r0, r1, hd, ldq, ldk, scale)
		gemm.Sgemm(p, false, true, rb, r1, hd, 1, dout[r0*ldo:], ldo, v, ldv, 0, dp, r1)
		gemm.Sgemm(p, true, false, hd, r1, rb, 1, dout[r0*ldo:], ldo, probs, r1, 0, tr, r1)
		addTransposed(dv, ldv, tr, hd, r1)
		for r := r0; r < r1; r++ {
			pr, dr := probs[(r-r0)*r1:(r-r0)*r1+r+1], dp[(r-r0)*r1:(r-r0+1)*r1]
			var sum float32
			for c, pc := range pr {
				sum += pc * dr[c]
			}
			for c, pc := range pr {
				dr[c] = pc * (dr[c] - sum) * scale
			}
			clear(dr[r+1:])
		}
		gemm.Sgemm(p, false, false, rb, hd, r1, 1, dp, r1, k, ldk, 1, dq[r0*ldq:], ldq)
		gemm.Sgemm(p, true, false, hd, r1, rb, 1, q[r0*ldq:], ldq, dp, r1, 0, tr, r1)
		addTransposed(dk, ldk, tr, hd, r1)
	}
}

// addTransposed adds the transpose of src (rows, cols) to dst (cols, rows; row stride ld).
func addTransposed(dst []float32, ld int, src []float32, rows, cols int) {
	for c := 0; c < cols; c++ {
		d := dst[c*ld : c*ld+rows]
		for r := range d {
			d[r] += src[r*cols+c]
		}
	}
}

// swigluForward sets act[j] = silu(gate[j]) · up[j] for one row, gate and up the two halves of gateUp
// (2·hidden) and act (hidden); silu(g) = g / (1 + e^-g), through kernels.SwiGLU as package model.
func swigluForward(act, gateUp []float32) {
	h := len(act)
	copy(act, gateUp[:h])
	kernels.SwiGLU(act, gateUp[h:2*h])
}

// swigluBackward adds the gradient of gateUp's row given dact, with s the logistic sigmoid:
//
//	d_up += dact · silu(g),  d_gate += dact · up · s(g) · (1 + g·(1 − s(g))) = dact · up · (s + silu(g)·(1 − s))
//
// silu(g) comes from kernels.SwiGLU (vectorized) into sil, with ones a row of 1s; s = silu(g)/g, or its
// Taylor expansion 1/2 + g/4 where g is too small to divide by.
func swigluBackward(dgateUp, dact, gateUp, sil, ones []float32) {
	h := len(dact)
	g, u := gateUp[:h], gateUp[h:2*h]
	dg, du := dgateUp[:h], dgateUp[h:2*h]
	sil = sil[:h]
	copy(sil, g)
	kernels.SwiGLU(sil, ones[:h])
	for j, d := range dact {
		gj, sl := g[j], sil[j]
		s := float32(0.5) + gj/4
		if gj > 1e-3 || gj < -1e-3 {
			s = sl / gj
		}
		du[j] += d * sl
		dg[j] += d * u[j] * (s + sl*(1-s))
	}
}

// crossEntropy returns -log softmax(logits)[target] for one row and replaces logits by the gradient of
// scale times that loss: scale · (softmax(logits) − onehot(target)).
func crossEntropy(logits []float32, target int32, scale float32) float64 {
	return gemm.SoftmaxCrossEntropy(logits, int(target), scale)
}

// softmax replaces x by exp(x − max x) / Σ.
func softmax(x []float32) { gemm.Softmax(x) }

// add sets x += y.
func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}
