// Package judge compares a model's answer with an opponent's answer to the same question, the three ways the
// evaluate job uses:
//
//   - LLM: a strong model (GPT-4 in the paper; any OpenAI-compatible or Ollama endpoint here) reads both answers
//     with the pairwise two-score prompt of Vicuna's GPT-4 reviewer (FastChat's "pair" judge prompt) and writes
//     two 1-10 scores on its first line. Each pair is judged in both orders (model first, then opponent first)
//     and the two orders are averaged, which cancels the judge's position bias as FastChat's llm_judge does.
//     The judge's raw text is kept with every verdict; an output whose scores cannot be read is a parse failure,
//     recorded with its reason and raw text and never turned into a score (Vicuna recorded -1).
//   - Reward: a reward model (one not used for ranking the candidates) scores both answers; the pair's scores are
//     the Bradley-Terry preference probabilities sigmoid(r_model - r_opponent) and its complement, so they sum to 1
//     and sum(model) : sum(opponent) is the expected win share against the expected loss share.
//   - Rules: the question's verifiable instructions (package rules) are checked on both answers; a side's score is
//     the fraction of instructions it follows (strict).
//
// ParseScores is the first-line score parser, tested on real-looking malformed judge outputs.
package judge
