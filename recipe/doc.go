// Package recipe runs the paper's loop that makes bestofn's default generator and reward model, through the
// real job platform and real HTTP endpoints, offline and deterministically for a seed:
//
//  1. teacher data: a bestofn server on the base story model ranks many samples per instruction with the rule
//     checks of the instruction's own words (serve --reward-model rules) and answers the generate-data job of
//     an admin server over its OpenAI API;
//  2. sft: the base model fine-tuned on those answers (Alpaca template);
//  3. feedback: K candidates per instruction from the SFT model, served by bestofn, rated by the teacher's rule
//     checks (rater "scorer", kind "rules");
//  4. train-reward: a reward model on those comparisons plus human preference pairs (HH-RLHF);
//  5. evaluate: held-out instructions (storytask's evaluation split, whose (name, object) pairs no training
//     instruction has), groups B and R1..RK of K candidates of the SFT model ranked by the new reward model, judged
//     by the rule checks, with paired bootstrap intervals.
//
// The generator is published as GGUF and the reward model as an ONNX directory; Run copies them, the evaluation
// report and its plot into an output directory (the repository's defaults/) with a summary of every step's wall
// time and metrics (recipe.json), from which WriteModelCard writes the model card.
//
// Run starts every server as a subprocess of the bestofn binary it is given (Config.Binary) on loopback ports,
// with temporary data directories, and stops them when the step that needs them is done. It never reads
// ../shared by itself: the base model, the preference data and the tokenizer are paths in Config (the
// script scripts/recipe.sh passes ../shared's).
package recipe
