package train

import (
	"errors"
	"fmt"
)

// Sequence is one sequence of a language-model batch.
type Sequence struct {
	// Tokens are the input token ids, at positions 0, 1, ...
	Tokens []int32
	// Targets[i] is the token the model must predict after Tokens[:i+1] (Tokens[i+1] for plain next-token
	// training), or -1 for no loss at position i (a prompt token, the last token). Same length as Tokens.
	Targets []int32
}

// ErrHead is wrapped by errors of calls that need the other head (LMLoss on a reward model, ...).
var ErrHead = errors.New("train: wrong head for this call")

// LMLoss runs a language model over seqs (one micro-batch, at most Options.MaxTokens tokens in all) and
// returns the sum over every target of -log p(target) and the number of targets. With grad it also runs
// the backward pass, adding scale times the gradient of that sum to the gradients: pass scale = 1/(targets
// in the whole optimizer step) to train on the mean over tokens.
//
// The logits are never held whole: the head runs in chunks of rows (only rows with a target), each chunk's
// backward right after its forward.
func (m *Model) LMLoss(seqs []Sequence, scale float32, grad bool) (sum float64, count int, err error) {
	if m.opts.Head != HeadLM {
		return 0, 0, fmt.Errorf("%w: LMLoss needs a language model", ErrHead)
	}
	m.ready = false
	b, s := &m.b, &m.s
	b.reset()
	for i, sq := range seqs {
		if err := b.add(m, sq.Tokens); err != nil {
			return 0, 0, err
		}
		if len(sq.Targets) != len(sq.Tokens) {
			return 0, 0, fmt.Errorf("train: sequence %d has %d tokens but %d targets", i, len(sq.Tokens), len(sq.Targets))
		}
		for j, t := range sq.Targets {
			if t < -1 || int(t) >= m.cfg.VocabSize {
				return 0, 0, fmt.Errorf("train: sequence %d: target %d at %d is outside the vocabulary", i, t, j)
			}
			if t >= 0 {
				s.rows[count], s.targets[count] = b.starts[i]+j, t
				count++
			}
		}
	}
	if b.n == 0 {
		return 0, 0, nil
	}
	m.forward()
	if grad {
		clear(s.dxb[:b.n*m.cfg.Dim])
	} else {
		scale = 0
	}
	sum = m.lmHead(s.rows[:count], s.targets[:count], scale)
	if grad && count > 0 {
		m.backward()
	}
	m.ready = false
	return sum, count, nil
}

// lmHead computes the cross-entropy of the final-normed rows against their targets, chunk by chunk, and
// with scale != 0 adds scale times its gradient to the output matrix's gradient and to s.dxb.
func (m *Model) lmHead(rows []int, targets []int32, scale float32) float64 {
	D, V := m.cfg.Dim, m.cfg.VocabSize
	s, a := &m.s, &m.a
	w, dw := m.p.output, m.g.output
	if w == nil {
		w, dw = m.p.tokEmbd, m.g.tokEmbd
	}
	var sum float64
	for c0 := 0; c0 < len(rows); c0 += s.headRows {
		r := min(s.headRows, len(rows)-c0)
		for i := 0; i < r; i++ {
			copy(s.headX[i*D:(i+1)*D], a.outNorm[rows[c0+i]*D:])
			s.headTarget[i] = targets[c0+i]
		}
		// Logits of the chunk, then each row's loss and (in place) the gradient of its logits.
		m.sgemm(false, true, r, V, D, 1, s.headX, D, w, D, 0, s.logits, V)
		m.tasks.headScale = scale
		m.pool.Run(r, max(1, 8192/V), m.tasks.crossEntropy)
		for i := 0; i < r; i++ {
			sum += s.headLoss[i]
		}
		if scale == 0 {
			continue
		}
		// Backward through the logits = x·wᵀ of the chunk.
		m.sgemm(false, false, r, D, V, 1, s.logits, V, w, D, 0, s.headDX, D)
		m.sgemm(true, false, V, D, r, 1, s.logits, V, s.headX, D, 1, dw, D)
		for i := 0; i < r; i++ {
			add(s.dxb[rows[c0+i]*D:(rows[c0+i]+1)*D], s.headDX[i*D:(i+1)*D])
		}
	}
	return sum
}

// crossEntropyRows computes the loss and logit gradients of head rows [lo, hi).
func (m *Model) crossEntropyRows(lo, hi, _ int) {
	s, V := &m.s, m.cfg.VocabSize
	for i := lo; i < hi; i++ {
		s.headLoss[i] = crossEntropy(s.logits[i*V:(i+1)*V], s.headTarget[i], m.tasks.headScale)
	}
}

// Logits writes the next-token logits of every position of one sequence into out (len(tokens) rows of
// VocabSize values).
func (m *Model) Logits(tokens []int32, out []float32) error {
	if m.opts.Head != HeadLM {
		return fmt.Errorf("%w: Logits needs a language model", ErrHead)
	}
	n, D, V := len(tokens), m.cfg.Dim, m.cfg.VocabSize
	if len(out) < n*V {
		return fmt.Errorf("train: logits buffer holds %d values, want %d", len(out), n*V)
	}
	m.ready = false
	m.b.reset()
	if err := m.b.add(m, tokens); err != nil {
		return err
	}
	m.forward()
	m.ready = false
	w := m.p.output
	if w == nil {
		w = m.p.tokEmbd
	}
	m.sgemm(false, true, n, V, D, 1, m.a.outNorm, D, w, D, 0, out, V)
	return nil
}

// Scores runs a reward model over seqs (one micro-batch) and writes each sequence's score into out: the
// head's weight dotted with the final-normed hidden state of its last token, plus the bias. The
// activations stay for BackwardScores.
func (m *Model) Scores(seqs [][]int32, out []float32) error {
	if m.opts.Head != HeadReward {
		return fmt.Errorf("%w: Scores needs a reward model", ErrHead)
	}
	if len(out) < len(seqs) {
		return fmt.Errorf("train: scores buffer holds %d values for %d sequences", len(out), len(seqs))
	}
	m.ready = false
	b := &m.b
	b.reset()
	for _, sq := range seqs {
		if err := b.add(m, sq); err != nil {
			return err
		}
	}
	if b.n == 0 {
		return nil
	}
	m.forward()
	for i := 0; i < b.nseq; i++ {
		h := m.pooled(i)
		var sc float32
		for j, w := range m.p.rmW {
			sc += w * h[j]
		}
		out[i] = sc + m.p.rmB[0]
	}
	return nil
}

// pooled returns what the head reads of sequence i of the last forward pass: its last token's final-normed
// hidden state, or with PoolMean their mean (in m.s.pool, valid until the next call).
func (m *Model) pooled(i int) []float32 {
	D, b := m.cfg.Dim, &m.b
	lo, hi := b.starts[i], b.starts[i+1]
	if m.opts.Pooling != PoolMean {
		return m.a.outNorm[(hi-1)*D : hi*D]
	}
	h := m.s.pool
	clear(h)
	for t := lo; t < hi; t++ {
		for j, v := range m.a.outNorm[t*D : (t+1)*D] {
			h[j] += v
		}
	}
	inv := 1 / float32(hi-lo)
	for j := range h {
		h[j] *= inv
	}
	return h
}

// BackwardScores runs the backward pass of the last Scores call, adding to the gradients given dscores,
// the gradient of the loss with respect to each sequence's score.
func (m *Model) BackwardScores(dscores []float32) error {
	if m.opts.Head != HeadReward {
		return fmt.Errorf("%w: BackwardScores needs a reward model", ErrHead)
	}
	b := &m.b
	if !m.ready {
		return errors.New("train: BackwardScores without a Scores call before it")
	}
	if len(dscores) != b.nseq {
		return fmt.Errorf("train: %d score gradients for %d sequences", len(dscores), b.nseq)
	}
	D := m.cfg.Dim
	dxb := m.s.dxb[:b.n*D]
	clear(dxb)
	for i, d := range dscores {
		h := m.pooled(i)
		for j := range m.p.rmW {
			m.g.rmW[j] += d * h[j]
		}
		m.g.rmB[0] += d
		lo, hi := b.starts[i+1]-1, b.starts[i+1]
		scale := d
		if m.opts.Pooling == PoolMean {
			lo = b.starts[i]
			scale = d / float32(hi-lo)
		}
		for t := lo; t < hi; t++ {
			dh := dxb[t*D : (t+1)*D]
			for j, w := range m.p.rmW {
				dh[j] = scale * w
			}
		}
	}
	m.backward()
	m.ready = false
	return nil
}
