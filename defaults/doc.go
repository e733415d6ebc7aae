// Package defaults holds bestofn's default models, embedded in the binary with go:embed, so that a fresh clone
// (or a lone binary) serves with no model files beside it: the generator generator.gguf (a small LLaMA GGUF,
// Alpaca chat template) and the reward model directory reward-model/ (model.onnx, tokenizer.json,
// config.json). MODEL_CARD.md beside them says what they are and how they were made.
//
// The loaders (package weights maps a file, package reward and ONNX Runtime read a directory) take paths, so
// Materialize writes the embedded files once into a cache directory, content-addressed: the directory
// <cacheDir>/<digest> holds exactly the embedded tree, where digest is Digest, the sha256 of a sha256sum-style
// manifest of the files. A directory of that name is only ever made by renaming a complete, synced temporary
// directory into place, so concurrent first runs (several servers starting at once) never see a partial one; a
// directory whose files differ from the embedded ones (edited by hand, a disk error) is replaced. Old digests'
// directories are never used again and may be deleted.
//
// The package has no mutable state: the embedded files are read-only and every value is computed per call.
package defaults
