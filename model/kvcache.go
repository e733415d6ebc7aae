package model

import (
	"errors"
	"fmt"
)

// SeqID names one sequence of a KVCache.
type SeqID int32

// CacheOptions sizes a KVCache.
type CacheOptions struct {
	// MaxTokens is the total number of positions the cache holds over all sequences (rounded up to whole
	// blocks); 0 means the model's context length.
	MaxTokens int
	// BlockSize is the number of positions per block; 0 means 16.
	BlockSize int
}

// ErrCacheFull is wrapped by the error Forward returns when the cache has no free block for a new position.
var ErrCacheFull = errors.New("model: kv cache full")

// CacheFullError reports that a batch needed more cache blocks than were free. It wraps ErrCacheFull.
type CacheFullError struct {
	// Needed is the number of blocks the batch needed; Free the number available.
	Needed, Free int
}

func (e *CacheFullError) Error() string {
	return fmt.Sprintf("model: kv cache full: batch needs %d blocks, %d free", e.Needed, e.Free)
}

// Unwrap returns ErrCacheFull.
func (e *CacheFullError) Unwrap() error { return ErrCacheFull }

// CacheStats describes a KVCache's occupancy.
type CacheStats struct {
	// BlocksUsed counts blocks held by at least one sequence; BlocksTotal all blocks.
	BlocksUsed, BlocksTotal int
	// BlockSize is the number of positions per block.
	BlockSize int
	// Tokens is the sum of the sequences' lengths (a shared prefix counts once per sequence).
	Tokens int
	// Seqs is the number of live sequences.
	Seqs int
}

// KVCache stores the keys and values of every layer for a set of sequences, in fixed-size blocks. Each
// sequence has a block table; Fork shares the parent's blocks (reference counted) and a block is copied only
// when a sequence writes into one it shares. A KVCache belongs to one Model configuration and is not safe for
// concurrent use (Forward mutates it).
type KVCache struct {
	nLayers, kvDim, blockSize, maxSeqLen int

	k, v    [][]float32 // (layer) -> (n_blocks, block_size, kv_dim)
	refs    []int32     // (n_blocks) sequences holding each block; 0 = free
	free    []int32     // stack of free block indices
	seqs    []seqState  // indexed by SeqID
	freeIDs []SeqID     // reusable SeqIDs
	nSeqs   int
}

// seqState is one sequence's block table.
type seqState struct {
	live    bool
	n       int     // positions filled
	pending int     // positions a batch being checked adds (zero outside checkBatch)
	blocks  []int32 // (ceil(n/block_size)) physical block of each logical block
}

// maxSeqs bounds the number of live sequences.
const maxSeqs = 1 << 16

// NewKVCache allocates a cache for models with configuration cfg.
func NewKVCache(cfg Config, opts CacheOptions) (*KVCache, error) {
	if cfg.NLayers <= 0 || cfg.NKVHeads <= 0 || cfg.HeadDim <= 0 || cfg.ContextLen <= 0 {
		return nil, fmt.Errorf("model: kv cache: invalid config (%d layers, %d kv heads, head dim %d, context %d)",
			cfg.NLayers, cfg.NKVHeads, cfg.HeadDim, cfg.ContextLen)
	}
	if opts.MaxTokens < 0 || opts.BlockSize < 0 {
		return nil, fmt.Errorf("model: kv cache: negative size (max tokens %d, block size %d)", opts.MaxTokens,
			opts.BlockSize)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = 16
	}
	maxTokens := opts.MaxTokens
	if maxTokens == 0 {
		maxTokens = cfg.ContextLen
	}
	nBlocks := (maxTokens + bs - 1) / bs
	kvDim := cfg.KVDim()
	perLayer := nBlocks * bs * kvDim
	if bs > maxDim || nBlocks > maxDim || perLayer/kvDim/bs != nBlocks || perLayer > 1<<34 {
		return nil, fmt.Errorf("model: kv cache: %d tokens of %d values per layer is too large", maxTokens, kvDim)
	}
	c := &KVCache{
		nLayers: cfg.NLayers, kvDim: kvDim, blockSize: bs, maxSeqLen: cfg.ContextLen,
		k: make([][]float32, cfg.NLayers), v: make([][]float32, cfg.NLayers),
		refs: make([]int32, nBlocks), free: make([]int32, nBlocks),
	}
	for l := range c.k {
		c.k[l] = make([]float32, perLayer)
		c.v[l] = make([]float32, perLayer)
	}
	for i := range c.free {
		c.free[i] = int32(nBlocks - 1 - i) // pop gives block 0 first
	}
	return c, nil
}

// NewSeq starts an empty sequence.
func (c *KVCache) NewSeq() (SeqID, error) {
	var id SeqID
	if n := len(c.freeIDs); n > 0 {
		id = c.freeIDs[n-1]
		c.freeIDs = c.freeIDs[:n-1]
	} else {
		if len(c.seqs) >= maxSeqs {
			return 0, fmt.Errorf("model: kv cache: more than %d sequences", maxSeqs)
		}
		id = SeqID(len(c.seqs))
		c.seqs = append(c.seqs, seqState{})
	}
	s := &c.seqs[id]
	s.live = true
	s.n = 0
	if s.blocks == nil {
		// Room for the longest sequence, so Forward never grows the table.
		s.blocks = make([]int32, 0, (c.maxSeqLen+c.blockSize-1)/c.blockSize)
	}
	s.blocks = s.blocks[:0]
	c.nSeqs++
	return id, nil
}

// Fork starts a sequence holding the same positions as src, sharing src's blocks: the prefix is neither
// copied nor recomputed. A block is copied later only when one of the sequences writes into a shared block.
func (c *KVCache) Fork(src SeqID) (SeqID, error) {
	if !c.valid(src) {
		return 0, fmt.Errorf("model: kv cache: fork of unknown sequence %d", src)
	}
	id, err := c.NewSeq()
	if err != nil {
		return 0, err
	}
	s, p := &c.seqs[id], &c.seqs[src]
	s.blocks = append(s.blocks, p.blocks...)
	s.n = p.n
	for _, b := range s.blocks {
		c.refs[b]++
	}
	return id, nil
}

// Free ends a sequence and releases its blocks (those it shares stay with the other holders). Freeing an
// unknown or already freed sequence does nothing.
func (c *KVCache) Free(id SeqID) {
	if !c.valid(id) {
		return
	}
	s := &c.seqs[id]
	c.release(s.blocks)
	s.blocks = s.blocks[:0]
	s.n = 0
	s.live = false
	c.freeIDs = append(c.freeIDs, id)
	c.nSeqs--
}

// Truncate shortens a sequence to its first n positions, releasing blocks it no longer needs.
func (c *KVCache) Truncate(id SeqID, n int) error {
	if !c.valid(id) {
		return fmt.Errorf("model: kv cache: truncate of unknown sequence %d", id)
	}
	s := &c.seqs[id]
	if n < 0 || n > s.n {
		return fmt.Errorf("model: kv cache: truncate sequence %d of length %d to %d", id, s.n, n)
	}
	keep := (n + c.blockSize - 1) / c.blockSize
	c.release(s.blocks[keep:])
	s.blocks = s.blocks[:keep]
	s.n = n
	return nil
}

// Len returns the number of positions a sequence holds (0 for an unknown sequence).
func (c *KVCache) Len(id SeqID) int {
	if !c.valid(id) {
		return 0
	}
	return c.seqs[id].n
}

// Stats reports the cache's occupancy.
func (c *KVCache) Stats() CacheStats {
	st := CacheStats{BlocksTotal: len(c.refs), BlocksUsed: len(c.refs) - len(c.free), BlockSize: c.blockSize,
		Seqs: c.nSeqs}
	for i := range c.seqs {
		if c.seqs[i].live {
			st.Tokens += c.seqs[i].n
		}
	}
	return st
}

// MaxSeqLen is the number of positions one sequence may hold (the model's context length).
func (c *KVCache) MaxSeqLen() int { return c.maxSeqLen }

func (c *KVCache) valid(id SeqID) bool {
	return id >= 0 && int(id) < len(c.seqs) && c.seqs[id].live
}

func (c *KVCache) release(blocks []int32) {
	for _, b := range blocks {
		c.refs[b]--
		if c.refs[b] == 0 {
			c.free = append(c.free, b)
		}
	}
}

// alloc takes a free block; the caller has checked one is free.
func (c *KVCache) alloc() int32 {
	b := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.refs[b] = 1
	return b
}

// blocksNeeded counts the blocks appending n positions to a sequence of the given state needs: new blocks past
// the end of its table, plus one copy when the first write lands in a block it shares. shared[b] lets the
// count see copies already counted for this batch.
func (c *KVCache) blocksNeeded(s *seqState, n int) int {
	if n == 0 {
		return 0
	}
	need := (s.n+n+c.blockSize-1)/c.blockSize - len(s.blocks)
	if s.n%c.blockSize != 0 && c.refs[s.blocks[len(s.blocks)-1]] > 1 {
		need++
	}
	return need
}

// appendSlot reserves the next position of a sequence and returns its row in the per-layer K/V storage
// (row*kvDim is its offset). It copies a shared block before the first write into it. The caller has
// checked capacity with blocksNeeded.
func (c *KVCache) appendSlot(id SeqID) int {
	s := &c.seqs[id]
	off := s.n % c.blockSize
	if off == 0 {
		s.blocks = append(s.blocks, c.alloc())
	} else if last := s.blocks[len(s.blocks)-1]; c.refs[last] > 1 {
		// Copy-on-write: this sequence gets a private copy of the filled part of the shared block.
		nb := c.alloc()
		c.refs[last]--
		n := off * c.kvDim
		src, dst := int(last)*c.blockSize*c.kvDim, int(nb)*c.blockSize*c.kvDim
		for l := 0; l < c.nLayers; l++ {
			copy(c.k[l][dst:dst+n], c.k[l][src:src+n])
			copy(c.v[l][dst:dst+n], c.v[l][src:src+n])
		}
		s.blocks[len(s.blocks)-1] = nb
	}
	row := int(s.blocks[len(s.blocks)-1])*c.blockSize + off
	s.n++
	return row
}

// row returns the storage row of position pos of a sequence.
func (c *KVCache) row(s *seqState, pos int) int {
	return int(s.blocks[pos/c.blockSize])*c.blockSize + pos%c.blockSize
}
