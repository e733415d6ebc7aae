// Package engine runs best-of-N generation: it prefills a prompt once, forks its KV cache N ways, decodes the N
// candidates together in one batch per step (continuous batching across requests), then asks a Scorer to rank
// them. It declares the interfaces it consumes (Generator, Tokenizer, Scorer).
package engine
