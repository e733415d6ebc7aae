package engine

import (
	"fmt"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
)

// Generator is what the engine needs of a model: its configuration and a batched forward pass over a paged KV
// cache. *model.Model satisfies it.
type Generator interface {
	Config() model.Config
	Forward(c *model.KVCache, b model.Batch, logits []float32) error
}

// Tokenizer is what the engine needs of a tokenizer. *tokenizer.Tokenizer satisfies it.
type Tokenizer interface {
	EncodeSegments(segs []tokenizer.Segment, addBOS bool) []int32
	AddBOSDefault() bool
	IsEOG(id int32) bool
	TokenPiece(id int32) string
	NewDecoder(prompt []int32) *tokenizer.Decoder
}

// New starts an engine on a loaded model: it allocates a KV cache of cfg.KVTokens positions in blocks of
// cfg.KVBlockSize and starts the scheduler goroutine, which owns gen until Close (gen.Forward must not be
// called by anyone else meanwhile). Prompts are encoded with the tokenizer's default BOS; control tokens
// written as text are parsed only in the Special parts of Request.PromptParts. tok may be nil (token-only engine, e.g. for benchmarks
// on synthetic models): requests must then set PromptTokens, candidates run to MaxTokens and carry no text.
// scorer may be nil: reranked requests then come back Degraded. Close the engine before closing the model.
func New(gen Generator, tok Tokenizer, scorer Scorer, cfg Config) (*Engine, error) {
	if gen == nil {
		return nil, fmt.Errorf("engine: nil generator")
	}
	mc := gen.Config()
	c := cfg.withDefaults(mc.ContextLen)
	cache, err := model.NewKVCache(mc, model.CacheOptions{MaxTokens: c.KVTokens, BlockSize: c.KVBlockSize})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	var voc vocab = idVocab{}
	if tok != nil {
		voc = tokVocab{tok}
	}
	return newEngine(&modelBackend{gen: gen, cache: cache, cfg: mc}, voc, scorer, cfg)
}

// modelBackend drives a Generator and its KV cache for the scheduler.
type modelBackend struct {
	gen   Generator
	cache *model.KVCache
	cfg   model.Config
}

func (m *modelBackend) vocabSize() int                { return m.cfg.VocabSize }
func (m *modelBackend) contextLen() int               { return m.cfg.ContextLen }
func (m *modelBackend) newSeq() (seqID, error)        { return m.cache.NewSeq() }
func (m *modelBackend) fork(src seqID) (seqID, error) { return m.cache.Fork(src) }
func (m *modelBackend) free(s seqID)                  { m.cache.Free(s) }
func (m *modelBackend) forward(b *batch, out []float32) error {
	return m.gen.Forward(m.cache, model.Batch{Tokens: b.tokens, Seqs: b.seqs, Logits: b.logits}, out)
}

func (m *modelBackend) blocks() (used, total, bs int) {
	st := m.cache.Stats()
	return st.BlocksUsed, st.BlocksTotal, st.BlockSize
}

// idVocab stands in for a missing tokenizer: prompts must come as token ids, no token ends generation and
// the text is empty.
type idVocab struct{}

func (idVocab) encode([]PromptPart) ([]int32, error) {
	return nil, fmt.Errorf("%w: the engine has no tokenizer: give the prompt as token ids", ErrBadRequest)
}
func (idVocab) isEOG(int32) bool               { return false }
func (idVocab) tokenPiece(int32) string        { return "" }
func (idVocab) newDecoder([]int32) textDecoder { return idDecoder{} }

type idDecoder struct{}

func (idDecoder) Next(int32) string { return "" }
func (idDecoder) Flush() string     { return "" }

// tokVocab adapts a Tokenizer.
type tokVocab struct{ t Tokenizer }

func (v tokVocab) encode(parts []PromptPart) ([]int32, error) {
	segs := make([]tokenizer.Segment, len(parts))
	for i, p := range parts {
		segs[i] = tokenizer.Segment{Text: p.Text, Special: p.Special}
	}
	return v.t.EncodeSegments(segs, v.t.AddBOSDefault()), nil
}
func (v tokVocab) isEOG(id int32) bool                   { return v.t.IsEOG(id) }
func (v tokVocab) tokenPiece(id int32) string            { return v.t.TokenPiece(id) }
func (v tokVocab) newDecoder(prompt []int32) textDecoder { return v.t.NewDecoder(prompt) }
