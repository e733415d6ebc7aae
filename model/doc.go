// Package model is the LLaMA-family forward pass: token ids in, next-token logits out, over a paged KV cache
// that several sequences can share a prefix of. forward.go reads top to bottom like llama2.c's run.c.
package model
