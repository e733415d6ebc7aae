package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/weights"
)

// Batch is a set of tokens to evaluate in one Forward call, possibly from several sequences. Each token goes
// at the next position of its sequence, in batch order: a prompt of 10 tokens is 10 entries with the same
// SeqID, and one decode step of 5 sequences is 5 entries with different SeqIDs.
type Batch struct {
	// Tokens are the token ids, each in [0, VocabSize).
	Tokens []int32
	// Seqs gives each token's sequence; same length as Tokens.
	Seqs []SeqID
	// Logits[i] asks for token i's next-token logits. Same length as Tokens, or nil to ask only for the last
	// token's.
	Logits []bool
}

// ErrContextLength is wrapped by the error Forward returns when a sequence would grow past the context length.
var ErrContextLength = errors.New("model: context length exceeded")

// runState holds the activations of one Forward call, shaped for up to capN tokens. It is allocated by init
// and grown (never shrunk) when a larger batch arrives; nothing else is allocated per call.
type runState struct {
	capN   int
	fused  bool      // some layer has a fused q/k/v matrix
	x      []float32 // (capN, dim) residual stream
	xb     []float32 // (capN, dim) normalized input of a matrix product
	xo     []float32 // (capN, dim) output of wo and w2, added to x
	q      []float32 // (capN, n_heads*head_dim) queries
	k      []float32 // (capN, kv_dim) keys of the batch, before they go into the cache
	v      []float32 // (capN, kv_dim) values of the batch
	qkv    []float32 // (capN, q_dim+2*kv_dim) output of a fused q/k/v matrix (nil when no layer has one)
	att    []float32 // (capN, n_heads*head_dim) attention output
	hb     []float32 // (capN, hidden_dim) gate, then silu(gate)*up
	hb2    []float32 // (capN, hidden_dim) up
	cos    []float32 // (capN, head_dim/2) rotary cosines at each token's position
	sin    []float32 // (capN, head_dim/2)
	pos    []int     // (capN) position of each token in its sequence
	rows   []int     // (capN) each token's row in the cache's K/V storage
	seqBuf []SeqID   // (capN) sequences of the rows kept for the last layer
	scores []float32 // (threads, n_heads/n_kv_heads, context_len) attention weights of each worker

	// Parameters of the attention step, read by attn on the worker goroutines.
	layer int
	n     int
	cache *KVCache
	seqs  []SeqID
	attn  attnTask
	ffn   ffnTask // SwiGLU over hb and hb2 as a pool task
}

func (s *runState) init(m *Model) {
	s.scores = make([]float32, max(1, m.pool.Threads())*m.cfg.NHeads/m.cfg.NKVHeads*m.cfg.ContextLen)
	for i := range m.layers {
		s.fused = s.fused || m.layers[i].wqkv.Rows > 0
	}
	s.attn.m = m
	s.ffn.s = s
	s.grow(m.cfg, 1)
}

// grow makes room for n tokens.
func (s *runState) grow(cfg Config, n int) {
	if n <= s.capN {
		return
	}
	s.capN = n
	s.x = make([]float32, n*cfg.Dim)
	s.xb = make([]float32, n*cfg.Dim)
	s.xo = make([]float32, n*cfg.Dim)
	s.q = make([]float32, n*cfg.QDim())
	s.k = make([]float32, n*cfg.KVDim())
	s.v = make([]float32, n*cfg.KVDim())
	if s.fused {
		s.qkv = make([]float32, n*(cfg.QDim()+2*cfg.KVDim()))
	}
	s.att = make([]float32, n*cfg.QDim())
	s.hb = make([]float32, n*cfg.HiddenDim)
	s.hb2 = make([]float32, n*cfg.HiddenDim)
	s.cos = make([]float32, n*cfg.HeadDim/2)
	s.sin = make([]float32, n*cfg.HeadDim/2)
	s.pos = make([]int, n)
	s.rows = make([]int, n)
	s.seqBuf = make([]SeqID, n)
}

// Forward evaluates a batch: it appends each token's keys and values to its sequence in the cache and writes
// the logits asked for into logits, one VocabSize row per requested token, in batch order. On error the cache
// is left as it was. Forward is not safe for concurrent use; it allocates nothing once the run state has
// grown to the batch size.
func (m *Model) Forward(c *KVCache, b Batch, logits []float32) error {
	cfg := &m.cfg
	n := len(b.Tokens)
	if err := m.checkBatch(c, b, logits); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	s := &m.s
	s.grow(*cfg, n)
	dim, qDim, kvDim, hidden, half := cfg.Dim, cfg.QDim(), cfg.KVDim(), cfg.HiddenDim, cfg.HeadDim/2

	// Reserve a cache slot for every token; checkBatch made sure the blocks exist.
	for i, id := range b.Seqs {
		s.pos[i] = c.seqs[id].n
		s.rows[i] = c.appendSlot(id)
	}

	// Token embeddings: dequantize each token's row into the residual stream.
	for i, tok := range b.Tokens {
		row := m.tokEmbd.Data[int(tok)*m.embdRowLen : (int(tok)+1)*m.embdRowLen]
		if err := weights.Dequantize(m.tokEmbd.Type, row, s.x[i*dim:(i+1)*dim]); err != nil {
			m.undo(c, b)
			return fmt.Errorf("model: embedding of token %d: %w", tok, err)
		}
	}

	// Rotary angles of each token's position, shared by every head and layer.
	for i := 0; i < n; i++ {
		p := float64(s.pos[i])
		for j := 0; j < half; j++ {
			sin, cos := math.Sincos(p * m.invFreq[j])
			s.cos[i*half+j] = float32(cos)
			s.sin[i*half+j] = float32(sin)
		}
	}

	rows := 0 // tokens whose logits are asked for
	for i := 0; i < n; i++ {
		if wantLogits(b, i) {
			rows++
		}
	}
	s.n, s.cache, s.seqs = n, c, b.Seqs
	grain := m.attnGrain(n)
	for l := range m.layers {
		ly := &m.layers[l]

		// Attention RMSNorm.
		for i := 0; i < n; i++ {
			rmsnorm(s.xb[i*dim:(i+1)*dim], s.x[i*dim:(i+1)*dim], ly.attnNorm, cfg.NormEps)
		}

		// q, k, v for the whole batch: each weight matrix is read once (as one matrix when they are stored
		// back to back, then split into rows of q, k and v).
		if w := ly.wqkv.Rows; w > 0 {
			m.pool.MatMul(s.qkv[:n*w], ly.wqkv, s.xb[:n*dim], n)
			for i := 0; i < n; i++ {
				row := s.qkv[i*w : (i+1)*w]
				copy(s.q[i*qDim:(i+1)*qDim], row[:qDim])
				copy(s.k[i*kvDim:(i+1)*kvDim], row[qDim:qDim+kvDim])
				copy(s.v[i*kvDim:(i+1)*kvDim], row[qDim+kvDim:])
			}
		} else {
			m.pool.MatMul(s.q[:n*qDim], ly.wq, s.xb[:n*dim], n)
			m.pool.MatMul(s.k[:n*kvDim], ly.wk, s.xb[:n*dim], n)
			m.pool.MatMul(s.v[:n*kvDim], ly.wv, s.xb[:n*dim], n)
		}

		// RoPE on q and k, then k and v go into the cache at each token's slot.
		for i := 0; i < n; i++ {
			cos, sin := s.cos[i*half:(i+1)*half], s.sin[i*half:(i+1)*half]
			rope(s.q[i*qDim:(i+1)*qDim], cos, sin)
			rope(s.k[i*kvDim:(i+1)*kvDim], cos, sin)
			r := s.rows[i] * kvDim
			copy(c.k[l][r:r+kvDim], s.k[i*kvDim:(i+1)*kvDim])
			copy(c.v[l][r:r+kvDim], s.v[i*kvDim:(i+1)*kvDim])
		}

		// In the last layer only the tokens whose logits are wanted matter past this point (the others'
		// keys and values are cached already): keep just those rows, in batch order.
		if l == len(m.layers)-1 && rows < n {
			n = m.keepLogitRows(b, rows)
			if n == 0 {
				break
			}
		}

		// Attention of every (token, head) over its own sequence's positions up to its own: the pool's
		// threads split the pairs; see attnTask.
		s.layer = l
		m.pool.Run(n*cfg.NKVHeads, grain, &s.attn)

		// Output projection and residual.
		m.pool.MatMul(s.xo[:n*dim], ly.wo, s.att[:n*qDim], n)
		add(s.x[:n*dim], s.xo[:n*dim])

		// FFN RMSNorm.
		for i := 0; i < n; i++ {
			rmsnorm(s.xb[i*dim:(i+1)*dim], s.x[i*dim:(i+1)*dim], ly.ffnNorm, cfg.NormEps)
		}

		// SwiGLU: w2(silu(w1 x) * w3 x).
		m.pool.MatMul(s.hb[:n*hidden], ly.wGate, s.xb[:n*dim], n)
		m.pool.MatMul(s.hb2[:n*hidden], ly.wUp, s.xb[:n*dim], n)
		m.pool.Run(n*hidden, 16<<10, &s.ffn)
		m.pool.MatMul(s.xo[:n*dim], ly.wDown, s.hb[:n*hidden], n)
		add(s.x[:n*dim], s.xo[:n*dim])
	}
	s.cache, s.seqs = nil, nil

	// Final RMSNorm of the rows asked for (the first rows of x now), then the classifier.
	for i := 0; i < rows; i++ {
		rmsnorm(s.xb[i*dim:(i+1)*dim], s.x[i*dim:(i+1)*dim], m.outNorm, cfg.NormEps)
	}
	if rows > 0 {
		m.pool.MatMul(logits[:rows*cfg.VocabSize], m.output, s.xb[:rows*dim], rows)
	}

	m.tokens.Add(int64(len(b.Tokens)))
	m.forwards.Add(1)
	return nil
}

// keepLogitRows moves the rows of the tokens whose logits are wanted (queries, residual stream, position,
// sequence) to the front, in batch order, and returns how many there are (rows). Only the last layer uses
// it, after its keys and values are in the cache.
func (m *Model) keepLogitRows(b Batch, rows int) int {
	s, cfg := &m.s, &m.cfg
	dim, qDim := cfg.Dim, cfg.QDim()
	j := 0
	for i := range b.Tokens {
		if !wantLogits(b, i) {
			continue
		}
		if i != j {
			copy(s.q[j*qDim:(j+1)*qDim], s.q[i*qDim:(i+1)*qDim])
			copy(s.x[j*dim:(j+1)*dim], s.x[i*dim:(i+1)*dim])
			s.pos[j] = s.pos[i]
		}
		s.seqBuf[j] = b.Seqs[i]
		j++
	}
	s.n, s.seqs = rows, s.seqBuf[:rows]
	return rows
}

// attnTask is the attention step as a kernels.Task over (token, kv head) pairs, item = token*n_kv_heads +
// kv head. One item computes the group of n_heads/n_kv_heads query heads that share the kv head, so each
// key and value row is read once for the whole group.
type attnTask struct{ m *Model }

// Run computes the attention output of items [lo, hi) using worker's rows of scores. Token i sees positions
// 0..pos[i] of its own sequence (causal inside a batch too, because a token's later batch-mates are at later
// positions).
func (t *attnTask) Run(lo, hi, worker int) {
	m := t.m
	s, cfg := &m.s, &m.cfg
	c := s.cache
	hd, kvDim, qDim := cfg.HeadDim, cfg.KVDim(), cfg.QDim()
	group := cfg.NHeads / cfg.NKVHeads
	ctx := cfg.ContextLen
	qkScale := float32(1 / math.Sqrt(float64(hd)))
	kc, vc := c.k[s.layer], c.v[s.layer]
	bs := c.blockSize
	small := hd < 32                                            // kernels' vector routines pay off from 32 values
	scores := s.scores[worker*group*ctx : (worker+1)*group*ctx] // (group, context_len)
	for item := lo; item < hi; item++ {
		i, kh := item/cfg.NKVHeads, item%cfg.NKVHeads
		qs := s.q[i*qDim+kh*group*hd : i*qDim+(kh+1)*group*hd] // (group, head_dim)
		kvOff := kh * hd
		seq := &c.seqs[s.seqs[i]]
		npos := s.pos[i] + 1

		// Scores q·k/sqrt(head_dim) of each query head over the sequence's positions, block by block: short
		// inlined loops for small heads, kernels' row-run dot products for large ones.
		for p := 0; p < npos; {
			base := int(seq.blocks[p/bs]) * bs
			end := min(npos-p, bs)
			if small {
				for g := 0; g < group; g++ {
					qg := qs[g*hd : (g+1)*hd]
					sc := scores[g*ctx+p : g*ctx+p+end]
					o := base*kvDim + kvOff
					for j := range sc {
						sc[j] = dotSmall(qg, kc[o:o+hd]) * qkScale
						o += kvDim
					}
				}
			} else {
				o := base*kvDim + kvOff
				for g := 0; g < group; g++ {
					sc := scores[g*ctx+p : g*ctx+p+end]
					kernels.DotRowsF32(sc, kc[o:], kvDim, qs[g*hd:(g+1)*hd])
					scale(sc, qkScale)
				}
			}
			p += end
		}

		// Softmax of each head's scores, left unnormalized: the weighted sum is divided by the total after.
		var inv [maxGroup]float32
		for g := 0; g < group; g++ {
			inv[g] = kernels.ExpShifted(scores[g*ctx : g*ctx+npos])
		}

		// Weighted sum of values.
		out := s.att[i*qDim+kh*group*hd : i*qDim+(kh+1)*group*hd] // (group, head_dim)
		clear(out)
		for p := 0; p < npos; {
			base := int(seq.blocks[p/bs]) * bs
			end := min(npos-p, bs)
			if small {
				for g := 0; g < group; g++ {
					og := out[g*hd : (g+1)*hd]
					sc := scores[g*ctx+p : g*ctx+p+end]
					o := base*kvDim + kvOff
					for _, w := range sc {
						axpySmall(w, vc[o:o+hd], og)
						o += kvDim
					}
				}
			} else {
				o := base*kvDim + kvOff
				for g := 0; g < group; g++ {
					kernels.AxpyRowsF32(out[g*hd:(g+1)*hd], vc[o:], kvDim, scores[g*ctx+p:g*ctx+p+end])
				}
			}
			p += end
		}
		for g := 0; g < group; g++ {
			scale(out[g*hd:(g+1)*hd], inv[g])
		}
	}
}

// maxGroup bounds n_heads/n_kv_heads (checked by Load) so attention keeps per-group values on the stack.
const maxGroup = 64

// attnGrain picks how many attention items one pool chunk takes: enough that a chunk is worth a thread's
// wake-up (about 64K multiply-adds), so tiny models attend on the calling goroutine.
func (m *Model) attnGrain(n int) int {
	positions := 0
	for i := 0; i < n; i++ {
		positions += m.s.pos[i] + 1
	}
	perItem := max(1, 2*positions/n*m.cfg.HeadDim*(m.cfg.NHeads/m.cfg.NKVHeads))
	return max(1, (64<<10)/perItem)
}

// checkBatch validates a batch against the cache and the logits buffer, and checks that the cache has the
// blocks the batch needs, so that Forward either fails before touching anything or succeeds.
func (m *Model) checkBatch(c *KVCache, b Batch, logits []float32) error {
	cfg := &m.cfg
	n := len(b.Tokens)
	if m.pool == nil {
		return errors.New("model: forward on a closed model")
	}
	if c == nil {
		return errors.New("model: forward with a nil cache")
	}
	if c.nLayers != cfg.NLayers || c.kvDim != cfg.KVDim() || c.maxSeqLen > cfg.ContextLen {
		return errors.New("model: kv cache was made for another model configuration")
	}
	if len(b.Seqs) != n {
		return fmt.Errorf("model: batch has %d tokens but %d sequence ids", n, len(b.Seqs))
	}
	if b.Logits != nil && len(b.Logits) != n {
		return fmt.Errorf("model: batch has %d tokens but %d logits flags", n, len(b.Logits))
	}
	rowsOut := 0
	for i, tok := range b.Tokens {
		if tok < 0 || int(tok) >= cfg.VocabSize {
			return fmt.Errorf("model: token %d at batch index %d is outside the vocabulary of %d", tok, i, cfg.VocabSize)
		}
		if !c.valid(b.Seqs[i]) {
			return fmt.Errorf("model: batch index %d names unknown sequence %d", i, b.Seqs[i])
		}
		if wantLogits(b, i) {
			rowsOut++
		}
	}
	if len(logits) < rowsOut*cfg.VocabSize {
		return fmt.Errorf("model: logits buffer holds %d values, batch asks for %d rows of %d", len(logits), rowsOut,
			cfg.VocabSize)
	}
	// Count positions per sequence (in seqState.pending), then blocks per sequence.
	for _, id := range b.Seqs {
		c.seqs[id].pending++
	}
	need := 0
	var err error
	for _, id := range b.Seqs {
		st := &c.seqs[id]
		if st.pending == 0 {
			continue
		}
		if st.n+st.pending > c.maxSeqLen && err == nil {
			err = fmt.Errorf("%w: sequence %d would hold %d positions, the limit is %d", ErrContextLength, id,
				st.n+st.pending, c.maxSeqLen)
		}
		need += c.blocksNeeded(st, st.pending)
		st.pending = 0
	}
	if err != nil {
		return err
	}
	if need > len(c.free) {
		return &CacheFullError{Needed: need, Free: len(c.free)}
	}
	return nil
}

// undo returns each sequence of the batch to its length before Forward reserved slots.
func (m *Model) undo(c *KVCache, b Batch) {
	for i := len(b.Seqs) - 1; i >= 0; i-- {
		id := b.Seqs[i]
		if m.s.pos[i] < c.seqs[id].n {
			_ = c.Truncate(id, m.s.pos[i])
		}
	}
}

func wantLogits(b Batch, i int) bool {
	if b.Logits == nil {
		return i == len(b.Tokens)-1
	}
	return b.Logits[i]
}

// rmsnorm sets out = x / sqrt(mean(x²) + eps) * w.
func rmsnorm(out, x, w []float32, eps float32) {
	ss := kernels.DotF32(x, x)
	ss = 1 / float32(math.Sqrt(float64(ss/float32(len(x))+eps)))
	for i, v := range x {
		out[i] = v * ss * w[i]
	}
}

// rope rotates each consecutive pair (x[2j], x[2j+1]) of every head in x by the angle whose cosine and sine
// are cos[j], sin[j] (GGUF's interleaved-pair order; heads are len(cos)*2 wide).
func rope(x, cos, sin []float32) {
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

// ffnTask applies swiglu to hb, hb2 in chunks on the pool: silu's exponential is the costliest element-wise
// step of a long prefill.
type ffnTask struct{ s *runState }

// Run applies SwiGLU, gate = silu(gate) * up with silu(g) = g / (1 + e^-g), to values [lo, hi).
func (t *ffnTask) Run(lo, hi, _ int) { kernels.SwiGLU(t.s.hb[lo:hi], t.s.hb2[lo:hi]) }

// softmax replaces x by exp(x - max x) / sum.
func softmax(x []float32) {
	scale(x, kernels.ExpShifted(x))
}

// scale sets x *= a.
func scale(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

// dotSmall is the inner product of a and b, short enough for the compiler to inline: attention over small
// heads (head_dim < 32) is dominated by call overhead otherwise.
func dotSmall(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// axpySmall sets y += alpha*x, inlinable like dotSmall.
func axpySmall(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// add sets x += y.
func add(x, y []float32) { kernels.AxpyF32(1, y[:len(x)], x) }
