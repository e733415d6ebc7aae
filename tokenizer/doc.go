// Package tokenizer turns text into token ids and back: SentencePiece BPE as LLaMA-1/2 use it and byte-level BPE
// (GPT-2 style) with the pre-tokenizer regexes that GGUF files name in tokenizer.ggml.pre. Vocabularies load from
// GGUF metadata, SentencePiece tokenizer.model files, HF tokenizer.json files and llama2.c tokenizer.bin files.
package tokenizer
