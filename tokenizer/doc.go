// Package tokenizer turns text into token ids and back for LLaMA-family models, matching llama.cpp id for id.
//
// Three algorithms are implemented, each a port of llama.cpp's (src/llama-vocab.cpp, src/unicode.cpp):
//
//   - SentencePiece BPE as LLaMA-1/2 use it: spaces become U+2581 with a leading one (add_space_prefix), the
//     highest-scoring adjacent pair that forms a token merges first, and characters that form no token fall
//     back to <0xNN> byte tokens.
//   - BPE by merge ranks: byte-level (GPT-2's byte-to-rune map) after the pre-tokenizer regexes that GGUF names
//     in tokenizer.ggml.pre (default, gpt-2, llama-bpe/llama3, deepseek-llm, deepseek-coder, falcon, mpt,
//     starcoder, refact, gpt-neox, qwen2, ...), including llama.cpp's hand-written splitters for the GPT-2 and
//     LLaMA-3 regexes and its "collapsed" category matching for the others (run with regexp2); or
//     SentencePiece-style (U+2581 spaces, <0xNN> byte fallback) as in HF LLaMA tokenizer.json files.
//   - WordPiece (BERT), as GGUF stores it (word starts with a U+2581 prefix).
//
// Vocabularies load from GGUF metadata (FromMetadata, or Load on a .gguf), a SentencePiece tokenizer.model, an
// HF tokenizer.json (+ tokenizer_config.json beside it) or a llama2.c tokenizer.bin; Load detects which.
//
// Special tokens: user-defined tokens are always matched in the text before tokenization; control tokens
// (BOS, EOS, <|im_end|>, ...) only when Encode is asked to parse them, otherwise their text is ordinary text.
// EncodeSegments parses them only in the Special segments of one text (a chat template's own text), so that
// the same text typed in a message stays text; ControlTexts lists them.
//
// Decoding prints nothing for control tokens, and a Decoder streams text one id at a time without ever
// splitting a UTF-8 character (bytes of a character spread over byte-fallback tokens are held until it is
// complete); given the prompt, it streams exactly what Decode(prompt + ids) adds after Decode(prompt). A Tokenizer is immutable after loading apart from an internal cache, and safe for concurrent use.
package tokenizer
