// Package api holds the wire types of bestofn's OpenAI-compatible HTTP API (POST /v1/chat/completions,
// POST /v1/completions, GET /v1/models) and its extensions. It imports only the standard library; the Ollama-
// compatible endpoints use github.com/ollama/ollama/api's types directly.
//
// # Extensions
//
// Requests accept fields OpenAI does not define (OpenAI's /v1/completions has a best_of of its own, ranked by
// log-probability, which bestofn follows when it does not rerank):
//
//   - best_of (int): the number of candidates to sample. Absent means the model's default (1 for a baseline
//     model such as "llama-gpt4", 5 for a best-of-N model such as "llama-gpt4:r1"). It must be at least n.
//   - rerank ("reward" | "none"): whether the reward model ranks the candidates. Absent means the model's
//     default. With "reward" the first n ranked candidates are returned as choices; with "none" the n
//     candidates with the highest mean log-probability per token when best_of > n (OpenAI's best_of), else
//     the candidates in sampling order.
//   - return_candidates (bool): return every sampled candidate in the response's "candidates" field, with its
//     reward score, mean log-probability and rank.
//   - parse_special (bool, /v1/completions): tokenize control-token text in the prompt as those tokens.
//   - top_k, min_p, repeat_penalty: llama.cpp's sampling options.
//
// Responses carry two more fields: "variant" (the A/B variant that served the request; also in the
// X-Bestofn-Variant header) and, when reranking was asked for but the reward model failed, "degraded" with a
// reason (the choices are then in sampling order).
package api
