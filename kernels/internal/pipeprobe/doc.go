// Package pipeprobe measures how many of the vector instructions the AVX2 integer kernels use this CPU retires
// per cycle, alone and in the kernels' sequences, with registers only: the floor under the batch-5 cost of
// package kernels' AVX2 tiles (README "Why AVX2 misses best of 5"). Run it with
//
//	go test ./kernels/internal/pipeprobe -run XXX -bench . -v
//
// BenchmarkPipes reports each instruction's throughput per cycle (the clock from a chain of dependent ADDs),
// that of VPMADDUBSW and VFMADD231PS alternating (whether they share pipes), and the cycles per (32-value
// block, activation row) pair of three 5-row sequences: the Q8_0 sign trick (VPSIGNB, VPMADDUBSW, VPMADDWD,
// VPADDD), Q8_0 with int16 activations (2 VPMADDWD and 2 VPADDD), and the Q4_0 tiles' int16 sums
// (VPMADDUBSW and VPADDW per nibble half).
package pipeprobe
