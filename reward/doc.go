// Package reward scores (prompt, candidate) pairs with an ONNX-exported sequence-classification reward model,
// through hugot's pure-Go backend or ONNX Runtime.
//
// A reward model is a directory holding model.onnx (inputs input_ids and attention_mask, optionally
// token_type_ids; output logits of shape [batch, 1]), tokenizer.json and config.json (num_labels 1). Load reads it;
// Model.Score returns one raw scalar per candidate and satisfies engine.Scorer.
//
//   - Runtimes: "go" runs the graph with hugot's pure-Go backend (onnx-gomlx on GoMLX simplego; no system library),
//     "ort" with ONNX Runtime through github.com/yalue/onnxruntime_go (libonnxruntime.so, e.g. ORT 1.30 from the npm
//     package onnxruntime-node@1.30.0), "auto" picks ONNX Runtime when its library is found. Both give the same
//     scores within 1e-4.
//   - Tokenization is ours, not hugot's: token ids are fed to the session directly. SentencePiece-Unigram
//     tokenizer.json files (DeBERTa-v3 reward models) go through tokenizer.ParseUnigramJSON, BPE ones (OPT's GPT-2
//     byte-level BPE, LLaMA's BPE with byte fallback) through tokenizer.ParseHFJSON; an unsupported feature is a
//     load error naming it.
//   - Prompt and response are joined by a template (Options.Template, else config.json's "reward_template", else
//     DefaultTemplate, HH-RLHF's "\n\nHuman: {prompt}\n\nAssistant: {response}"). Inputs longer than the maximum
//     length lose prompt tokens from the left first, so the response's start is kept; ScoreDetails reports it.
//
// testdata/tiny-rm is a real reward model made by scripts/train_reward.py: a 2-layer transformer trained with the
// pairwise loss -log sigmoid(r(x, y_chosen) - r(x, y_rejected)) on Anthropic HH-RLHF harmless-base pairs, with
// torch's scores for fixed inputs in testdata/reference_scores.json.
package reward
