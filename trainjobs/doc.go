// Package trainjobs holds bestofn's training job types for package jobs: train-reward (a reward model trained
// on preference pairs, exported as an ONNX directory package reward serves) and sft (supervised fine-tuning of
// a generator on Alpaca or chat rows, exported as GGUF), each either run in-process by package train or handed
// to an external trainer command (see External).
//
// Data files are JSONL uploads. Preference data (purpose PurposePreferences) holds TRL rows {prompt?, chosen,
// rejected, margin?} (without a prompt, chosen and rejected are whole dialogues in the reward template, as in
// HH-RLHF) or the paper's comparison rows {user_input, responses_and_scores: [{response, score, source}]}. SFT
// data (PurposeSFT) holds Alpaca rows {instruction, input?, output} or chat rows {messages: [{role, content}]}.
// A malformed row fails the job with an error naming its file and line, unless the job's skip_bad_rows is set;
// then it is skipped and counted by reason in the result, as are rows that make no training example
// (identical responses, equal scores, a prompt too long for the sequence length).
package trainjobs
