// Package model is the LLaMA-family forward pass: token ids in, next-token logits out, over a paged KV cache
// that several sequences can share a prefix of. forward.go reads top to bottom like llama2.c's run.c.
//
// Lifetimes are split as in run.c: Config holds the hyperparameters (read from GGUF llama.* keys by
// ConfigFromMetadata); Model holds read-only weights, left in their file type and pointing into the
// checkpoint's memory, plus one run state (activation buffers sized by the largest batch seen, so Forward
// allocates nothing per token); KVCache holds keys and values of every layer in fixed-size blocks that
// sequences reference through block tables.
//
// A Batch mixes tokens of several sequences: a prompt is evaluated as one batch (each weight matrix read once
// for all its tokens), and a decode step of N candidates is one batch of N tokens. Fork shares a prefix
// between sequences without copying it; a shared block is copied only when a sequence writes into it.
//
// Load checks every tensor's presence, type and shape, so a bad checkpoint fails there with an error naming
// the tensor, not in the middle of a request. Forward checks the batch and the cache's capacity before it
// changes anything: a full cache (ErrCacheFull) or a sequence at the context length (ErrContextLength) leaves
// the cache as it was.
//
// Numerics are checked against scripts/reference_llama.py, an independent torch implementation whose output
// lives in testdata.
package model
