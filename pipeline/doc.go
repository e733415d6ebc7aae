// Package pipeline holds the data-side job types of the paper's pipeline ("Instruction Tuning with GPT-4",
// arXiv 2304.03277) for the job platform (package jobs), and the live A/B report:
//
//   - generate-data: instructions -> the teacher's answers with the paper's Algorithm 1 prompt (the Alpaca
//     template), as alpaca_gpt4_data.json rows {instruction, input, output}; language "zh" translates the
//     instruction first and answers in Chinese (the paper's LLaMA-GPT4-CN data);
//   - feedback: for each prompt, K candidates from served bestofn models, other OpenAI/Ollama endpoints,
//     answer files or the server's A/B log, rated 1-10 by the teacher (one answer at a time, or pairs in both
//     orders) or by a Scorer (a reward model, rule checks); outputs the paper's comparison rows and the TRL
//     preference pairs derived from them, for train-reward;
//   - ab-report: the R1-vs-B win rate of live A/B traffic by a chosen judge with a 95% CI, and each variant's
//     latency from the server's own histograms.
//
// Every teacher answer is kept raw beside its parsed fields; per-item rows are appended to the job's outputs
// as they are made, so a job interrupted by a crash resumes without asking the teacher again for what it has.
// Types and Purposes are what cmd/bestofn registers with the platform.
package pipeline
