package train

import "math"

// backward is forward read upwards. The head has left the gradient of the final norm's output in s.dxb;
// every parameter gradient is added (+=) to m.g.
func (m *Model) backward() {
	cfg, a, p, g, s, b := &m.cfg, &m.a, &m.p, &m.g, &m.s, &m.b
	n := b.n
	D, Q, KV, W, H, L := cfg.Dim, cfg.QDim(), cfg.KVDim(), m.layout.qkvRows, cfg.HiddenDim, cfg.NLayers
	half := cfg.HeadDim / 2
	dresid := s.dresid[:n*D]

	// Final RMSNorm.
	clear(dresid)
	rmsnormBackward(dresid, g.outNorm, s.dxb, a.out, p.outNorm, a.outRstd, n, D)

	for l := L - 1; l >= 0; l-- {
		x := a.layer(a.resid, l, D)
		attnIn, attnRstd := a.layer(a.attnIn, l, D), a.layer(a.attnRstd, l, 1)
		resid2 := a.layer(a.resid2, l, D)
		ffnIn, ffnRstd := a.layer(a.ffnIn, l, D), a.layer(a.ffnRstd, l, 1)
		act := a.layer(a.act, l, H)
		// dresid is the gradient of the residual stream leaving layer l.

		// SwiGLU's down projection (next = resid2 + act·downᵀ): the residual path passes dresid through.
		clear(s.dact[:n*H])
		matmulBackward(m.mm, s.dact, g.wDown[l*D*H:(l+1)*D*H], dresid, act, p.wDown[l*D*H:(l+1)*D*H], n, H, D)
		clear(s.dgateUp[:n*2*H])
		m.tasks.layer = l
		m.pool.Run(n, max(1, 8192/H), m.tasks.swigluBackward)
		clear(s.dxb[:n*D])
		matmulBackward(m.mm, s.dxb, g.wGateUp[l*2*H*D:(l+1)*2*H*D], s.dgateUp, ffnIn, p.wGateUp[l*2*H*D:(l+1)*2*H*D],
			n, D, 2*H)

		// FFN RMSNorm: dresid becomes the gradient of resid2.
		rmsnormBackward(dresid, g.ffnNorm[l*D:(l+1)*D], s.dxb, resid2, p.ffnNorm[l*D:(l+1)*D], ffnRstd, n, D)

		// Output projection (resid2 = x + att·woᵀ).
		clear(s.datt[:n*Q])
		matmulBackward(m.mm, s.datt, g.wo[l*D*Q:(l+1)*D*Q], dresid, a.layer(a.att, l, Q), p.wo[l*D*Q:(l+1)*D*Q], n, Q, D)

		// Attention, into the gradients of q, k and v.
		clear(s.dqkv[:n*W])
		m.pool.Run(b.nseq*cfg.NKVHeads, 1, m.tasks.attnBackward)

		// RoPE: rotate the gradients of q and k back.
		for i := 0; i < n; i++ {
			pos := int(b.pos[i])
			ropeBackward(s.dqkv[i*W:i*W+Q+KV], m.cos[pos*half:(pos+1)*half], m.sin[pos*half:(pos+1)*half])
		}

		// q, k, v projections.
		clear(s.dxb[:n*D])
		matmulBackward(m.mm, s.dxb, g.wqkv[l*W*D:(l+1)*W*D], s.dqkv, attnIn, p.wqkv[l*W*D:(l+1)*W*D], n, D, W)

		// Attention RMSNorm: dresid becomes the gradient of the residual stream entering layer l.
		rmsnormBackward(dresid, g.attnNorm[l*D:(l+1)*D], s.dxb, x, p.attnNorm[l*D:(l+1)*D], attnRstd, n, D)
	}

	// Token embeddings.
	embeddingBackward(g.tokEmbd, dresid, b.tokens[:n], D)
}

// attnBackwardItems is attention's backward pass for items [lo, hi) of layer tasks.layer (items as in
// attnForwardItems). The query heads of a group run one after another on the same worker, so their
// gradients of the shared k and v rows add up without a race.
func (m *Model) attnBackwardItems(lo, hi, worker int) {
	cfg, a, b, s := &m.cfg, &m.a, &m.b, &m.s
	l := m.tasks.layer
	hd, Q, KV, W := cfg.HeadDim, cfg.QDim(), cfg.KVDim(), m.layout.qkvRows
	group := cfg.NHeads / cfg.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	qkv := a.layer(a.qkv, l, W)
	probs, dp, tr := s.workerScratch(s.probs, worker), s.workerScratch(s.dp, worker), s.workerScratch(s.tr, worker)
	for item := lo; item < hi; item++ {
		sq, kh := item/cfg.NKVHeads, item%cfg.NKVHeads
		start, t := b.starts[sq], b.seqLen(sq)
		rows, drows := qkv[start*W:], s.dqkv[start*W:]
		k, v := rows[Q+kh*hd:], rows[Q+KV+kh*hd:]
		dk, dv := drows[Q+kh*hd:], drows[Q+KV+kh*hd:]
		for gi := 0; gi < group; gi++ {
			h := kh*group + gi
			attentionBackward(m.workers[worker], drows[h*hd:], dk, dv, s.datt[start*Q+h*hd:], rows[h*hd:], k, v, probs, dp,
				tr, t, hd, W, W, W, Q, scale)
		}
	}
}

// swigluBackwardRows runs SwiGLU's backward pass over token rows [lo, hi) of layer tasks.layer.
func (m *Model) swigluBackwardRows(lo, hi, worker int) {
	a, s, H := &m.a, &m.s, m.cfg.HiddenDim
	gateUp := a.layer(a.gateUp, m.tasks.layer, 2*H)
	sil := s.workerScratch(s.sil, worker)
	for i := lo; i < hi; i++ {
		swigluBackward(s.dgateUp[i*2*H:(i+1)*2*H], s.dact[i*H:(i+1)*H], gateUp[i*2*H:(i+1)*2*H], sil, s.ones)
	}
}
