// Package sampler turns logits into the next token: temperature, top-k, top-p, min-p, penalties, logit bias and a
// seeded random source per sequence, plus stop conditions (stop tokens, stop strings across token boundaries,
// max tokens).
package sampler
