package engine

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fakeBackend is a deterministic stand-in for a model and its paged KV cache. A sequence's logits depend only
// on its whole token history (a hash seeds them), so any batching of the same histories gives the same logits;
// block accounting follows the real cache's rules (blocks of bs tokens, Fork shares them, a write into a shared
// block copies it).
type fakeBackend struct {
	v, ctx, bs int

	seqs  map[seqID]*fakeSeq
	next  seqID
	refs  []int // (n_blocks) holders of each block
	nfree int

	eogBias float32 // added to the EOG logit: lower means longer candidates

	evalToks atomic.Int64
	forwards atomic.Int64
	maxBatch atomic.Int64 // most decode rows (logits rows) in one Forward

	mu      sync.Mutex
	gate    chan struct{} // when not nil, each forward waits for a value
	entered chan struct{} // when not nil, each forward sends on it first
	delay   time.Duration
	fail    error // when set, forward returns it
}

type fakeSeq struct {
	hist   []int32
	blocks []int
}

func newFakeBackend(vocab, ctx, bs, blocks int) *fakeBackend {
	return &fakeBackend{v: vocab, ctx: ctx, bs: bs, seqs: map[seqID]*fakeSeq{}, refs: make([]int, blocks),
		nfree: blocks, eogBias: -2}
}

func (f *fakeBackend) vocabSize() int  { return f.v }
func (f *fakeBackend) contextLen() int { return f.ctx }

func (f *fakeBackend) newSeq() (seqID, error) {
	id := f.next
	f.next++
	f.seqs[id] = &fakeSeq{}
	return id, nil
}

func (f *fakeBackend) fork(src seqID) (seqID, error) {
	s, ok := f.seqs[src]
	if !ok {
		return 0, fmt.Errorf("fake: fork of unknown sequence %d", src)
	}
	id := f.next
	f.next++
	n := &fakeSeq{hist: append([]int32(nil), s.hist...), blocks: append([]int(nil), s.blocks...)}
	for _, b := range n.blocks {
		f.refs[b]++
	}
	f.seqs[id] = n
	return id, nil
}

func (f *fakeBackend) free(id seqID) {
	s, ok := f.seqs[id]
	if !ok {
		panic(fmt.Sprintf("fake: double free of sequence %d", id))
	}
	for _, b := range s.blocks {
		f.unref(b)
	}
	delete(f.seqs, id)
}

func (f *fakeBackend) unref(b int) {
	f.refs[b]--
	if f.refs[b] == 0 {
		f.nfree++
	}
}

func (f *fakeBackend) alloc() (int, error) {
	for b, r := range f.refs {
		if r == 0 {
			f.refs[b] = 1
			f.nfree--
			return b, nil
		}
	}
	return 0, errors.New("fake: cache full")
}

func (f *fakeBackend) blocks() (used, total, bs int) { return len(f.refs) - f.nfree, len(f.refs), f.bs }

func (f *fakeBackend) forward(b *batch, logits []float32) error {
	f.mu.Lock()
	gate, entered, delay, fail := f.gate, f.entered, f.delay, f.fail
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if fail != nil {
		return fail
	}
	row := 0
	rows := 0
	for i, tok := range b.tokens {
		s, ok := f.seqs[b.seqs[i]]
		if !ok {
			return fmt.Errorf("fake: unknown sequence %d", b.seqs[i])
		}
		if len(s.hist) >= f.ctx {
			return fmt.Errorf("fake: sequence %d past the context", b.seqs[i])
		}
		pos := len(s.hist)
		if pos%f.bs == 0 {
			nb, err := f.alloc()
			if err != nil {
				return err
			}
			s.blocks = append(s.blocks, nb)
		} else if last := s.blocks[len(s.blocks)-1]; f.refs[last] > 1 { // copy on write
			nb, err := f.alloc()
			if err != nil {
				return err
			}
			f.unref(last)
			s.blocks[len(s.blocks)-1] = nb
		}
		s.hist = append(s.hist, tok)
		f.evalToks.Add(1)
		if b.logits[i] {
			f.fill(s.hist, logits[row*f.v:(row+1)*f.v])
			row++
			rows++
		}
	}
	if int64(rows) > f.maxBatch.Load() {
		f.maxBatch.Store(int64(rows))
	}
	f.forwards.Add(1)
	return nil
}

// fill writes pseudo-random logits determined by hist.
func (f *fakeBackend) fill(hist []int32, out []float32) {
	h := fnv.New64a()
	var buf [4]byte
	for _, t := range hist {
		buf[0], buf[1], buf[2], buf[3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
		h.Write(buf[:])
	}
	x := h.Sum64()
	for i := range out {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		out[i] = float32(z>>40)/float32(1<<24)*4 - 2
	}
	out[fakeEOS] += f.eogBias
	out[fakeBOS] = float32(math.Inf(-1))
}

// fakeVocab: 0 unknown, 1 BOS, 2 EOS, 3..28 'a'..'z', 29 ' ', 30 '.', 31 "é" split over two tokens (31 = the
// first byte, 32 = the second) so the decoder must hold back a partial UTF-8 sequence.
type fakeVocab struct{}

const (
	fakeBOS       = 1
	fakeEOS       = 2
	fakeVocabSize = 33
)

func (fakeVocab) encode(parts []PromptPart) ([]int32, error) {
	var text strings.Builder
	for _, p := range parts {
		text.WriteString(p.Text)
	}
	ids := []int32{fakeBOS}
	for _, r := range text.String() {
		switch {
		case r >= 'a' && r <= 'z':
			ids = append(ids, int32(r-'a')+3)
		case r == ' ':
			ids = append(ids, 29)
		case r == '.':
			ids = append(ids, 30)
		case r == 'é':
			ids = append(ids, 31, 32)
		default:
			ids = append(ids, 0)
		}
	}
	return ids, nil
}

func (fakeVocab) isEOG(id int32) bool { return id == fakeEOS }

func (fakeVocab) tokenPiece(id int32) string { return string(fakeBytes(id)) }

func fakeBytes(id int32) []byte {
	switch {
	case id >= 3 && id <= 28:
		return []byte{byte('a' + id - 3)}
	case id == 29:
		return []byte{' '}
	case id == 30:
		return []byte{'.'}
	case id == 31:
		return []byte("é")[:1]
	case id == 32:
		return []byte("é")[1:]
	}
	return nil
}

func (fakeVocab) newDecoder([]int32) textDecoder { return &fakeDecoder{} }

// fakeDecoder emits valid UTF-8 only: it holds back a trailing lead byte and replaces invalid bytes by U+FFFD.
type fakeDecoder struct{ held []byte }

func (d *fakeDecoder) Next(id int32) string {
	d.held = append(d.held, fakeBytes(id)...)
	n := len(d.held)
	if n > 0 && d.held[n-1] >= 0xc0 { // a lead byte waiting for its continuation
		n--
	}
	out := strings.ToValidUTF8(string(d.held[:n]), "\uFFFD")
	d.held = append(d.held[:0], d.held[n:]...)
	return out
}

func (d *fakeDecoder) Flush() string {
	out := strings.ToValidUTF8(string(d.held), "\uFFFD")
	d.held = d.held[:0]
	return out
}
