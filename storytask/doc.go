// Package storytask is the task family of bestofn's default models: short-story instructions with verifiable
// constraints that a story model as small as stories260K can learn, such as
//
//	Write a short story about a cat named Tom. Mention a ball. Use fewer than 40 words.
//
// Every constraint is one rules.FromText reads from the instruction's own words (a name, a word to mention, a
// word limit, a happy ending), so the rules package both teaches (it ranks the teacher's samples and rates the
// student's candidates) and judges.
//
// Generate makes a deterministic list of instructions for a seed and a split. The split is by combination: the
// (name, object) pairs of the evaluation split (HeldOut) never occur in a training instruction, so an evaluation
// prompt, and the pairing it asks for, appears in no training data. The held-out pairs are fixed by the family
// (not by the seed): name i and object j are held out when (i + 3j) mod 8 == 0, so every name and every object has
// held-out partners and is also trained with others.
package storytask
