// Package weights reads and writes model checkpoints: GGUF (v2, v3), safetensors with an HF config.json, and
// llama2.c .bin files. Whatever the file format, a checkpoint comes out normalized to GGUF conventions (metadata
// keys such as "llama.embedding_length", tensor names such as "blk.0.attn_q.weight", q/k rows in GGUF's rotary
// order), so that package model never knows which format it was loaded from.
//
// It also holds the reference dequantization routines for every GGML block type it reads, and the quantizers
// the GGUF writer needs.
package weights
