// Package sampler turns logits into the next token: temperature, top-k, top-p, min-p, penalties, logit bias, JSON
// mode and a seeded random source per sequence, plus stop strings across token boundaries.
//
// A Sampler serves one sequence. Its pipeline is llama.cpp's default chain:
//
//	logit bias -> repetition penalty (last RepeatLastN accepted tokens), presence and frequency penalties
//	(all accepted tokens, OpenAI's rule) -> top-k -> top-p -> min-p -> temperature -> one uniform draw
//
// with temperature 0 meaning greedy argmax (ties to the lowest id). Top-p and min-p see the probabilities at
// temperature 1, as in llama.cpp. Each Sampler draws from its own math/rand/v2 PCG seeded by Params.Seed, so
// the same seed and the same logits give the same tokens. The paper's decoding (temperature 1, top_p 1, no
// penalties) is exactly softmax sampling by inverse CDF over the vocabulary in id order.
//
// Log-probabilities are those of the raw model distribution, log_softmax(logits) before bias, penalties,
// filtering and temperature (vLLM's default), for the chosen token and the TopLogprobs best alternatives.
//
// Sample and Accept allocate nothing: every buffer is sized at New from the vocabulary size. Top-k and top-p
// use quickselect (top-p by probability mass), never a sort of the vocabulary.
//
// JSON mode (Params.JSON) constrains a sequence to one JSON object: after bias and penalties, a pushdown
// automaton over bytes (RFC 8259, UTF-8 checked, white space bounded as llama.cpp's JSON grammar bounds it)
// masks every token whose text would make the output invalid, and end-of-generation tokens come only once the
// object is closed. JSONVocab holds each token's bytes, built once per vocabulary.
//
// StopMatcher holds back streamed text that could still become a stop string and cuts the output where the
// first stop string completes (the engine ends sequences on end-of-generation tokens and token limits).
package sampler
