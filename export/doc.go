// Package export writes models trained by bestofn in the formats its serving side and other tools read: a
// reward model as an ONNX directory (model.onnx, config.json, tokenizer.json) that package reward loads with
// either runtime (hugot's Go backend, ONNX Runtime), and a generator as a GGUF file that package model serves and
// llama.cpp reads.
//
// Models come in as Weights: a model.Config and float32 tensors by GGUF name (package train's view of its
// parameters, or FromCheckpoint's of any checkpoint package weights opens).
//
// The ONNX graph is encoded directly with protowire (see onnx.go): no generated ONNX message types are linked,
// because hugot registers its own copy of them and two registrations of one protobuf name conflict.
package export
