package tokenizer

// orderedBigram is a merge candidate that knows whether it comes before another in the merge order.
type orderedBigram[T any] interface {
	before(other T) bool
}

// bigramQueue is the binary min-heap of merge candidates that SentencePiece and BPE merging share. Its slice is
// reused across encodes, so a warm queue allocates nothing.
type bigramQueue[T orderedBigram[T]] struct {
	items []T
}

func (q *bigramQueue[T]) reset()   { q.items = q.items[:0] }
func (q *bigramQueue[T]) len() int { return len(q.items) }

func (q *bigramQueue[T]) push(b T) {
	h := append(q.items, b)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	q.items = h
}

// pop removes and returns the first candidate; the queue must not be empty.
func (q *bigramQueue[T]) pop() T {
	h := q.items
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.items = h
	return top
}
