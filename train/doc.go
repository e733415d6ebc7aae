// Package train trains LLaMA-family models on the CPU: the forward and backward passes of the architecture
// package model serves (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied or untied output), AdamW with a
// warmup + cosine schedule, gradient clipping and accumulation, and the two training loops the project needs:
// a reward model (a scalar head on the last token, pairwise loss) and supervised fine-tuning (next-token loss
// on response tokens).
//
// It follows llm.c's train_gpt2.c. The parameters are one []float32 carved into tensors stacked over layers
// (params.go), with their gradients in a second allocation of the same layout; the activations the backward
// pass needs are kept per layer in a third (activations); nothing is allocated per step. forward.go reads top
// to bottom like model's forward pass, and backward.go is the same pass read upwards, one function per
// operation (ops.go), each accumulating its parameter gradients with +=. Matrix products go through
// kernels/gemm.Sgemm (row-major, C = alpha op(A) op(B) + beta C, the same bits on any number of threads),
// softmax rows through gemm's kernels.
//
// Layout and conventions are package model's: GGUF tensor names, the interleaved-pair rotary order of GGUF
// q/k rows, [rows, cols] matrices whose rows are outputs. Tensors exposes the parameters under their GGUF
// names (plus rm_head.weight and rm_head.bias for a reward model), so they can be written as GGUF or ONNX.
//
// A batch is a list of sequences of different lengths. They are packed back to back: no padding token is
// ever computed, attention is causal inside each sequence and never crosses into another, and positions
// restart at 0 for each sequence. A sequence's loss and gradients therefore do not depend on the other
// sequences of its batch (the padding-invariance test checks it).
//
// Every result is deterministic for a seed: initialization and data order come from seeded PCG sources, and
// every parallel loop gives each output element to one worker with a fixed summation order, so the same seed
// gives bit-identical weights whatever the thread count, and a resumed run equals an uninterrupted one.
//
// The numerics are checked against float64 finite differences per operation and against an independent
// torch implementation (scripts/reference_train.py, dumps in testdata) for whole models.
package train
