package engine

import (
	"context"

	"github.com/bestofn/bestofn/model"
)

// Scorer scores candidate answers to one prompt; higher is better. It is called once per reranked request with
// all candidates, outside the scheduler goroutine. *reward.Model satisfies it.
type Scorer interface {
	Score(ctx context.Context, prompt string, candidates []string) ([]float32, error)
}

// seqID names one sequence of the KV cache.
type seqID = model.SeqID

// batch is one Forward call: token i goes at the next position of sequence seqs[i]; logits[i] asks for its
// logits row. The slices are reused across steps.
type batch struct {
	tokens []int32
	seqs   []seqID
	logits []bool
}

func (b *batch) reset() {
	b.tokens = b.tokens[:0]
	b.seqs = b.seqs[:0]
	b.logits = b.logits[:0]
}

func (b *batch) add(tok int32, seq seqID, logits bool) {
	b.tokens = append(b.tokens, tok)
	b.seqs = append(b.seqs, seq)
	b.logits = append(b.logits, logits)
}

// backend is what the scheduler needs of a model and its KV cache. It is used only from the scheduler
// goroutine. The real one wraps *model.Model and *model.KVCache (see model.go); tests use fakes.
type backend interface {
	vocabSize() int
	contextLen() int
	newSeq() (seqID, error)
	// fork makes a sequence sharing src's tokens (no recompute, copy-on-write blocks).
	fork(src seqID) (seqID, error)
	free(s seqID)
	// forward evaluates b and writes one vocabSize row per b.logits[i] == true, in batch order.
	forward(b *batch, logits []float32) error
	// blocks reports the KV cache's blocks in use, its total and its block size in tokens.
	blocks() (used, total, blockSize int)
}

// textDecoder turns generated token ids into text, holding back incomplete UTF-8 sequences.
type textDecoder interface {
	Next(id int32) string
	Flush() string
}

// vocab is what the engine needs of a tokenizer.
type vocab interface {
	encode(parts []PromptPart) ([]int32, error)
	isEOG(id int32) bool
	tokenPiece(id int32) string
	// newDecoder decodes the tokens that continue prompt (see tokenizer.Tokenizer.NewDecoder).
	newDecoder(prompt []int32) textDecoder
}
