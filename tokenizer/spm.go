package tokenizer

import "strings"

// spaceMarker is SentencePiece's visible space, U+2581.
const spaceMarker = "\u2581"

// symbol is one node of the doubly linked list that BPE merges work on: text[start:start+n].
type symbol struct {
	start, n   int
	prev, next int
}

// spmBigram is a candidate merge of symbols left and right into a token of the given score.
type spmBigram struct {
	left, right int
	score       float32
	size        int
}

// before orders the work queue like llama.cpp's llm_bigram_spm comparator: the highest score first, then the
// leftmost.
func (b spmBigram) before(o spmBigram) bool {
	if b.score != o.score {
		return b.score > o.score
	}
	return b.left < o.left
}

// spmSession holds the buffers of one SentencePiece encoding, reused across fragments.
type spmSession struct {
	text    []byte
	symbols []symbol
	queue   bigramQueue[spmBigram]
}

// encode appends the ids of raw (one text fragment) to out, matching llama.cpp's llm_tokenizer_spm_session: an
// optional leading space, spaces escaped as U+2581, highest-score merges first, byte fallback for symbols that
// are not tokens.
func (s *spmSession) encode(t *Tokenizer, raw string, spacePrefix bool, out []int32) []int32 {
	s.text = s.text[:0]
	if spacePrefix {
		s.text = append(s.text, spaceMarker...)
	}
	for i := 0; i < len(raw); {
		j := strings.IndexByte(raw[i:], ' ')
		if j < 0 {
			s.text = append(s.text, raw[i:]...)
			break
		}
		s.text = append(s.text, raw[i:i+j]...)
		s.text = append(s.text, spaceMarker...)
		i += j + 1
	}
	// Characters that occur in no multi-character token can never be merged, so the text splits into
	// independent runs around them; when no token has U+2581 after another character, each word (a U+2581 run
	// and what follows) is such a run too. Merging each run alone gives the same tokens as merging the whole
	// text, with a small queue, and lets runs be cached.
	text := s.text
	runStart := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c < 0x80 && t.spmBarrier[c]:
			out = s.run(t, text[runStart:i], out)
			out = s.run(t, text[i:i+1], out)
			runStart = i + 1
		case t.spmWordSplit && c == 0xE2 && i > runStart && markerAt(text, i) && !markerAt(text, i-3):
			out = s.run(t, text[runStart:i], out)
			runStart = i
		}
	}
	return s.run(t, text[runStart:], out)
}

// markerAt reports whether U+2581 starts at b[i].
func markerAt(b []byte, i int) bool {
	return i >= 0 && i+3 <= len(b) && b[i] == 0xE2 && b[i+1] == 0x96 && b[i+2] == 0x81
}

// run appends the ids of one independent run, from the cache when possible.
func (s *spmSession) run(t *Tokenizer, text []byte, out []int32) []int32 {
	if len(text) == 0 {
		return out
	}
	if ids, ok := t.cache.get(text); ok {
		return append(out, ids...)
	}
	n := len(out)
	out = s.merge(t, text, out)
	t.cache.put(text, out[n:])
	return out
}

// merge runs the score-ordered merges over text and appends the ids of the resulting symbols.
func (s *spmSession) merge(t *Tokenizer, text []byte, out []int32) []int32 {
	if len(text) == 0 {
		return out
	}
	s.symbols = s.symbols[:0]
	for off := 0; off < len(text); {
		n := min(utf8SeqLen(text[off]), len(text)-off)
		idx := len(s.symbols)
		next := idx + 1
		if off+n == len(text) {
			next = -1
		}
		s.symbols = append(s.symbols, symbol{start: off, n: n, prev: idx - 1, next: next})
		off += n
	}
	s.queue.reset()
	for i := 1; i < len(s.symbols); i++ {
		s.tryAdd(t, text, i-1, i)
	}
	for s.queue.len() > 0 {
		b := s.queue.pop()
		left, right := &s.symbols[b.left], &s.symbols[b.right]
		if left.n == 0 || right.n == 0 || left.n+right.n != b.size {
			continue
		}
		left.n += right.n
		right.n = 0
		left.next = right.next
		if right.next >= 0 {
			s.symbols[right.next].prev = b.left
		}
		s.tryAdd(t, text, left.prev, b.left)
		s.tryAdd(t, text, b.left, left.next)
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		sym := s.symbols[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := t.ids[string(piece)]; ok {
			out = append(out, id)
			continue
		}
		// Every merge produced a token, so a symbol that is not one is a single character missing from the
		// vocabulary: emit its bytes.
		for _, c := range piece {
			if id, ok := t.byteToken(c); ok {
				out = append(out, id)
			} else if t.unk != noToken {
				out = append(out, t.unk)
			}
		}
	}
	return out
}

func (s *spmSession) tryAdd(t *Tokenizer, text []byte, left, right int) {
	if left == -1 || right == -1 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	text = text[l.start : l.start+l.n+r.n]
	id, ok := t.ids[string(text)]
	if !ok {
		return
	}
	s.queue.push(spmBigram{left: left, right: right, score: t.scores[id], size: len(text)})
}
