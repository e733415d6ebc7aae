// Package weights reads and writes model checkpoints: GGUF (v2, v3), safetensors with an HF config.json, and
// llama2.c .bin files. Whatever the file format, a checkpoint comes out normalized to GGUF conventions (metadata
// keys such as "llama.embedding_length", tensor names such as "blk.0.attn_q.weight", q/k rows in GGUF's rotary
// order), so that package model never knows which format it was loaded from.
//
// Reading: Open detects the format from the content; OpenGGUF, OpenSafetensors and OpenLlama2C read one format.
// Each returns a *Checkpoint (Metadata, Tensors, Tensor(name), Close). Tensor data is memory-mapped and read-only
// (except HF q/k projections, which are permuted into a copy); it is valid until Close. ParseGGUF,
// ParseSafetensors and ParseLlama2C parse bytes already in memory. Every count, length and offset in a file is
// bounded by the file size before anything is allocated; malformed files give a *FormatError naming the file,
// the byte offset where known, and the problem.
//
// Writing: WriteGGUF writes metadata and tensors as GGUF v3; WriteGGUFFunc streams tensor data from a callback.
//
// Numbers: Dequantize and Quantize convert between float32 and F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q4_K, Q5_K, Q6_K and Q8_K blocks. Dequantize is bit-identical to ggml's reference routines; Quantize is
// byte-identical to ggml's reference quantizers except for Q4_K, Q5_K and Q6_K, which use a simpler
// round-to-nearest scheme (see Quantize). Float16To32, Float32To16, BFloat16To32 and Float32ToBF16 convert
// scalars. The golden data in testdata/golden (see testdata/README.md) comes from llama.cpp's ggml.
package weights
