package tokenizer

import "strings"

// bpeBigram is a candidate merge of symbols left and right with the merge's rank (lower merges first).
type bpeBigram struct {
	left, right int
	rank        int32
	size        int
}

// before orders the work queue like llama.cpp's llm_bigram_bpe comparator: the lowest rank first, then the
// leftmost.
func (b bpeBigram) before(o bpeBigram) bool {
	if b.rank != o.rank {
		return b.rank < o.rank
	}
	return b.left < o.left
}

// bpeSession holds the buffers of one BPE encoding.
type bpeSession struct {
	word    string
	symbols []symbol
	queue   bigramQueue[bpeBigram]
	ids     []int32
}

// encode appends the ids of raw (one text fragment) to out, matching llama.cpp's llm_tokenizer_bpe_session.
// spacePrefix asks for the vocabulary's space prefix (set for the first fragment and after special tokens):
// U+2581 for SentencePiece-style BPE, ' ' for byte-level BPE with add_prefix_space unless raw starts with one.
func (s *bpeSession) encode(t *Tokenizer, raw string, spacePrefix bool, out []int32) []int32 {
	if t.escapeSpaces {
		raw = strings.ReplaceAll(raw, " ", spaceMarker)
		if spacePrefix {
			raw = spaceMarker + raw
		}
	} else if spacePrefix && !strings.HasPrefix(raw, " ") {
		raw = " " + raw
	}
	cpts := []rune(raw)
	offsets := t.pre.split(cpts)
	start := 0
	var buf []byte
	for _, n := range offsets {
		buf = buf[:0]
		for _, r := range cpts[start : start+n] {
			if t.byteLevel != nil {
				var tmp [4]byte
				k := encodeRune(tmp[:], r)
				for _, c := range tmp[:k] {
					buf = append(buf, t.byteLevel.enc[c]...)
				}
			} else {
				var tmp [4]byte
				k := encodeRune(tmp[:], r)
				buf = append(buf, tmp[:k]...)
			}
		}
		start += n
		if len(buf) > 0 {
			out = s.encodeWord(t, buf, out)
		}
	}
	return out
}

// encodeRune writes r as UTF-8 into p (len >= 4) and returns the byte count. Unlike utf8.EncodeRune it keeps
// surrogates as they are, as llama.cpp's unicode_cpt_to_utf8 does.
func encodeRune(p []byte, r rune) int {
	switch {
	case r < 0x80:
		p[0] = byte(r)
		return 1
	case r < 0x800:
		p[0] = 0xC0 | byte(r>>6)
		p[1] = 0x80 | byte(r)&0x3F
		return 2
	case r < 0x10000:
		p[0] = 0xE0 | byte(r>>12)
		p[1] = 0x80 | byte(r>>6)&0x3F
		p[2] = 0x80 | byte(r)&0x3F
		return 3
	default:
		p[0] = 0xF0 | byte(r>>18)&0x07
		p[1] = 0x80 | byte(r>>12)&0x3F
		p[2] = 0x80 | byte(r>>6)&0x3F
		p[3] = 0x80 | byte(r)&0x3F
		return 4
	}
}

// encodeWord appends the ids of one pre-token, using and filling the tokenizer's cache.
func (s *bpeSession) encodeWord(t *Tokenizer, word []byte, out []int32) []int32 {
	if ids, ok := t.cache.get(word); ok {
		return append(out, ids...)
	}
	s.ids = s.mergeWord(t, string(word), s.ids[:0])
	t.cache.put(word, s.ids)
	return append(out, s.ids...)
}

// mergeWord runs the BPE merges over one word and appends the resulting ids.
func (s *bpeSession) mergeWord(t *Tokenizer, word string, out []int32) []int32 {
	s.word = word
	s.symbols = s.symbols[:0]
	if id, ok := t.ids[word]; ok && t.ignoreMerges {
		return append(out, id)
	}
	for off := 0; off < len(word); {
		n := min(utf8SeqLen(word[off]), len(word)-off)
		idx := len(s.symbols)
		next := idx + 1
		if off+n == len(word) {
			next = -1
		}
		s.symbols = append(s.symbols, symbol{start: off, n: n, prev: idx - 1, next: next})
		off += n
	}
	s.queue.reset()
	for i := 1; i < len(s.symbols); i++ {
		s.tryAdd(t, i-1, i)
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
		s.tryAdd(t, left.prev, b.left)
		s.tryAdd(t, b.left, left.next)
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		sym := s.symbols[i]
		if sym.n == 0 {
			continue
		}
		piece := word[sym.start : sym.start+sym.n]
		if id, ok := t.ids[piece]; ok {
			out = append(out, id)
			continue
		}
		for _, c := range []byte(piece) {
			if t.byteLevel != nil {
				if id, ok := t.ids[string([]byte{c})]; ok {
					out = append(out, id)
				}
			} else if id, ok := t.byteToken(c); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func (s *bpeSession) tryAdd(t *Tokenizer, left, right int) {
	if left == -1 || right == -1 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	p := mergePair{s.word[l.start : l.start+l.n], s.word[r.start : r.start+r.n]}
	rank, ok := t.merges[p]
	if !ok {
		return
	}
	s.queue.push(bpeBigram{left: left, right: right, rank: rank, size: l.n + r.n})
}
