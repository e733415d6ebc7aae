// Package evalstats holds the numbers of an evaluation: the paper's relative score (sum of a model's judge
// scores over the sum of its opponent's, e.g. 624 : 667 = 94%), a paired bootstrap confidence interval of that
// ratio, win/tie/loss counts, a per-category breakdown, and ROUGE-L with the reference-length buckets of the
// paper's Fig. 6.
//
// # Relative score and its interval
//
// Scores are paired: model[i] and opponent[i] are the judge's scores of the two answers to question i. The
// relative score is sum(model) / sum(opponent). BootstrapRatio resamples questions with replacement (the pair
// moves together, so the interval reflects that both answers share a question's difficulty), recomputes the ratio
// for each resample and returns the percentile interval (quantiles with linear interpolation, numpy's default).
// The source of randomness is a PCG seeded by BootstrapOptions.Seed, so the interval is reproducible.
//
// # ROUGE-L
//
// RougeL is the "rougeL" of Google's rouge-score package (the sentence-level LCS variant, not "rougeLsum"),
// without stemming (rouge-score's default use_stemmer=False): text is lowercased, every run of characters other
// than a-z and 0-9 becomes a space and the result is split on spaces, so non-ASCII letters are dropped exactly as
// rouge-score drops them. Precision is LCS/len(prediction), recall LCS/len(reference) and the F-measure is
// their harmonic mean (beta = 1, as rouge-score's fmeasure); an empty side scores 0. UnicodeTokens is an
// alternative tokenization for text rouge-score cannot see (Chinese): letters and digits of any script, with each
// Han, Hiragana, Katakana or Hangul character a token of its own; RougeLTokens scores any token lists.
//
// Buckets of the reference length, in the tokens the metric sees, are those of Fig. 6: 0-2, 3-5, 6-10 and >10.
//
// scripts/evalstats_reference.py (Python standard library only) computes every number here independently;
// its output is testdata/reference.json, which the tests compare against.
package evalstats
