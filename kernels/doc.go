// Package kernels holds the hot loops of inference: matrix products of quantized or float weight matrices with
// batches of float32 activations, split across a fixed pool of worker goroutines. Each kernel has a pure-Go
// reference; AVX2 assembly is used when the CPU has it.
package kernels
