package tokenizer

import "sync"

// maxCacheEntries bounds the word -> ids cache.
const maxCacheEntries = 1 << 16

// maxCachedWord is the longest word (in bytes) that is cached.
const maxCachedWord = 64

// idCache maps a word (a pre-token, or a SentencePiece run) to its ids. Lookups by []byte do not allocate.
// Once full it stops growing: the words seen first are the common ones.
type idCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

func (c *idCache) get(word []byte) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[string(word)]
	c.mu.RUnlock()
	return ids, ok
}

func (c *idCache) put(word []byte, ids []int32) {
	if len(word) > maxCachedWord {
		return
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string][]int32)
	}
	if len(c.m) < maxCacheEntries {
		c.m[string(word)] = append([]int32(nil), ids...)
	}
	c.mu.Unlock()
}

// reset empties the cache (for benchmarks of the cold path).
func (c *idCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
