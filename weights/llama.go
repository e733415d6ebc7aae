package weights

// LlamaParams are the hyperparameters of a LLaMA checkpoint, as the llama.* GGUF metadata keys hold them.
// Readers of other formats fill one and call Metadata to describe the checkpoint the way a GGUF file would.
type LlamaParams struct {
	Name       string // general.name
	VocabSize  int
	ContextLen int
	Dim        int // embedding length
	Layers     int
	FFNDim     int // feed-forward (hidden) length
	Heads      int
	KVHeads    int
	HeadDim    int // rotary dimension per head; 0 means Dim/Heads
	NormEps    float32
	RopeTheta  float32
}

// Metadata returns GGUF metadata with general.architecture "llama" and the llama.* keys of p.
func (p LlamaParams) Metadata() *Metadata {
	md := NewMetadata()
	md.Set("general.architecture", "llama")
	md.Set("general.name", p.Name)
	md.Set("llama.vocab_size", uint32(p.VocabSize))
	md.Set("llama.context_length", uint32(p.ContextLen))
	md.Set("llama.embedding_length", uint32(p.Dim))
	md.Set("llama.block_count", uint32(p.Layers))
	md.Set("llama.feed_forward_length", uint32(p.FFNDim))
	headDim := p.HeadDim
	if headDim == 0 && p.Heads > 0 {
		headDim = p.Dim / p.Heads
	}
	md.Set("llama.rope.dimension_count", uint32(headDim))
	md.Set("llama.attention.head_count", uint32(p.Heads))
	md.Set("llama.attention.head_count_kv", uint32(p.KVHeads))
	md.Set("llama.attention.layer_norm_rms_epsilon", p.NormEps)
	md.Set("llama.rope.freq_base", p.RopeTheta)
	return md
}
