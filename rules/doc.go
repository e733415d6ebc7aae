// Package rules checks verifiable instructions in the manner of IFEval ("Instruction-Following Evaluation for
// Large Language Models", Zhou et al. 2023): "answer in under 80 words", "mention a ball", "end with 'The end.'",
// "answer in JSON with the keys name and age". Each instruction is checked by code, so an answer either follows it
// or not, with no judge to ask.
//
// # Where instructions come from
//
// A question carries them in IFEval's machine-readable shape, parallel lists of ids and keyword arguments:
//
//	{"prompt": "...", "instruction_id_list": ["length_constraints:number_words", "startend:end_checker"],
//	 "kwargs": [{"num_words": 80, "relation": "less than"}, {"end_phrase": "The end."}]}
//
// Parse turns such lists into Instructions (an unknown id or a bad argument is an error naming it). FromText finds
// instructions in an instruction's own words ("a story about a cat named Tom, under 80 words, that mentions a ball
// and ends with 'The end.'"), for prompts that carry no list, such as those reaching the server.
//
// The ids are IFEval's where IFEval has the check (keywords:existence, keywords:forbidden_words,
// keywords:frequency, keywords:letter_frequency, length_constraints:number_words, :number_sentences,
// :number_paragraphs, detectable_format:json_format, :title, :number_bullet_lists,
// :number_highlighted_sections, detectable_content:postscript, :number_placeholders, startend:end_checker,
// startend:quotation, change_case:english_lowercase, :english_capital, :capital_word_frequency,
// punctuation:no_comma, combination:repeat_prompt), with the same arguments and relations ("less than" is
// count < N, "at least" is count >= N). bestofn adds checks that fit short stories and structured answers:
// startend:start_checker {start_phrase}, detectable_content:name {name} (the name appears as a word, case
// sensitive), sentiment:ends_happily {} (the last sentence other than "The end." holds a word of a small happy
// lexicon, unnegated, and no word of a sad one) and detectable_format:json_keys {keys} (a JSON object holding
// every key). Words are runs of Unicode letters, digits and underscores (IFEval's \w+); keywords match whole
// words, case-insensitively (IFEval's existence check matches substrings: "ball" in "balloon"; we do not).
// Sentences end at '.', '!' or '?' followed by a space or the end, except after common abbreviations (Mr., Dr.,
// e.g.) and single-letter initials.
//
// # Strict and loose
//
// Strict checks the answer as it is. Loose, as IFEval's, also accepts the instruction as followed when it holds
// for the answer with its first line, its last line or both removed, or with '*' removed from any of these
// (markdown emphasis and a chatty first line are forgiven). Accuracy is reported at the prompt level (every
// instruction of a prompt followed) and the instruction level (the fraction of all instructions followed).
//
// # Scoring candidates
//
// Scorer ranks candidates next to ONNX reward models (it satisfies engine.Scorer): a candidate's score is the
// fraction of the prompt's instructions it follows (strict), plus TieBreak (0.01) times its mean partial
// credit. Partial credit measures how near a candidate came to an instruction it missed (85 words against
// "under 80" is nearer than 300; two of three required keywords is nearer than none), and is 1 for a followed
// instruction; since TieBreak times the credit is below one instruction's share for up to 100 instructions, it
// only orders candidates that follow equally many.
package rules
