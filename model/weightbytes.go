package model

import "github.com/bestofn/bestofn/kernels"

// WeightBytesPerToken returns the bytes of weights one decode step of one sequence reads: every matrix of
// every layer and the output matrix (in the layout Load left them in), one row of the token embedding, and
// the norm vectors. Memory bandwidth divided by it bounds the decode speed (tokens/s) of a model too large for
// the caches.
func (m *Model) WeightBytesPerToken() int64 {
	n := int64(len(m.output.Data) + m.embdRowLen + 4*len(m.outNorm))
	for i := range m.layers {
		ly := &m.layers[i]
		mats := []kernels.Matrix{ly.wo, ly.wGate, ly.wUp, ly.wDown}
		if ly.wqkv.Rows > 0 {
			mats = append(mats, ly.wqkv)
		} else {
			mats = append(mats, ly.wq, ly.wk, ly.wv)
		}
		for _, mat := range mats {
			n += int64(len(mat.Data))
		}
		n += int64(4 * (len(ly.attnNorm) + len(ly.ffnNorm)))
	}
	return n
}

// ISA returns the kernels the model's matrix products run.
func (m *Model) ISA() kernels.ISA { return m.pool.ISA() }

// Layout returns the layout of the model's interleaved matrices: kernels.LayoutPanels when any matrix is in
// the panels of the AVX-512 ISAs, else kernels.LayoutGroups (also for weights in the file's layout).
func (m *Model) Layout() kernels.Layout {
	panels := m.output.Panels
	for i := range m.layers {
		ly := &m.layers[i]
		for _, mat := range []*kernels.Matrix{&ly.wqkv, &ly.wq, &ly.wo, &ly.wGate, &ly.wUp, &ly.wDown} {
			panels = panels || mat.Panels
		}
	}
	if panels {
		return kernels.LayoutPanels
	}
	return kernels.LayoutGroups
}
