#!/usr/bin/env python3
"""Independent reference numbers for package evalstats (Python standard library only).

Writes evalstats/testdata/reference.json: relative scores, win/tie/loss counts, per-category breakdowns and
paired percentile-bootstrap intervals of seeded random paired scores; numpy-style (type 7) quantiles; ROUGE-L
as Google's rouge-score computes rougeL without a stemmer (tokenize: lowercase, [^a-z0-9]+ -> space, split;
LCS table; precision, recall, F1), and Fig. 6 bucket means.

Run from the repo root:  /usr/bin/python3 scripts/evalstats_reference.py > evalstats/testdata/reference.json
"""
import json
import math
import random
import re

# --- relative score and bootstrap ---------------------------------------------------------------------------


def relative(model, opponent):
    a, b = sum(model), sum(opponent)
    return {"n": len(model), "model": a, "opponent": b, "ratio": a / b}


def win_tie_loss(model, opponent):
    w = t = l = 0
    for x, y in zip(model, opponent):
        if x - y > 1e-9:
            w += 1
        elif y - x > 1e-9:
            l += 1
        else:
            t += 1
    return {"win": w, "tie": t, "loss": l}


def quantile7(sorted_values, q):
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = math.floor(pos)
    if lo >= n - 1:
        return sorted_values[-1]
    frac = pos - lo
    return sorted_values[lo] + frac * (sorted_values[lo + 1] - sorted_values[lo])


def bootstrap(model, opponent, resamples, level, seed):
    rng = random.Random(seed)
    n = len(model)
    ratios = []
    for _ in range(resamples):
        a = b = 0.0
        for _ in range(n):
            j = rng.randrange(n)
            a += model[j]
            b += opponent[j]
        ratios.append(a / b)
    ratios.sort()
    alpha = (1 - level) / 2
    return quantile7(ratios, alpha), quantile7(ratios, 1 - alpha)


def by_category(categories, model, opponent):
    order, groups = [], {}
    for c, x, y in zip(categories, model, opponent):
        if c not in groups:
            order.append(c)
            groups[c] = ([], [])
        groups[c][0].append(x)
        groups[c][1].append(y)
    return [{"category": c, "relative": relative(*groups[c]), "win_tie_loss": win_tie_loss(*groups[c])} for c in order]


def paired_case(name, rng, n, model_bias):
    cats = ["generic", "knowledge", "roleplay", "common-sense", "fermi", "counterfactual", "coding", "math",
            "writing"]
    categories = [cats[i % len(cats)] for i in range(n)]
    opponent = [float(rng.randint(5, 10)) for _ in range(n)]
    model = []
    for y in opponent:
        # half points occur when a judge's two orders are averaged
        x = y + model_bias + rng.choice([-2, -1.5, -1, -0.5, 0, 0, 0.5, 1])
        model.append(min(10.0, max(1.0, x)))
    lo, hi = bootstrap(model, opponent, 100000, 0.95, 7)
    return {
        "name": name,
        "model": model,
        "opponent": opponent,
        "categories": categories,
        "relative": relative(model, opponent),
        "win_tie_loss": win_tie_loss(model, opponent),
        "by_category": by_category(categories, model, opponent),
        "bootstrap_95": {"low": lo, "high": hi, "resamples": 100000},
    }


# --- ROUGE-L as rouge-score -----------------------------------------------------------------------------------

NON_ALPHANUM_RE = re.compile(r"[^a-z0-9]+")
SPACES_RE = re.compile(r"\s+")
VALID_TOKEN_RE = re.compile(r"^[a-z0-9]+$")


def rouge_tokenize(text):
    text = text.lower()
    text = NON_ALPHANUM_RE.sub(" ", text)
    tokens = SPACES_RE.split(text)
    return [t for t in tokens if VALID_TOKEN_RE.match(t)]


def lcs_table(ref, can):
    rows, cols = len(ref), len(can)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            if ref[i - 1] == can[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table


def rouge_l(reference, prediction):
    ref, pred = rouge_tokenize(reference), rouge_tokenize(prediction)
    if not ref or not pred:
        return {"precision": 0.0, "recall": 0.0, "f": 0.0}
    lcs = lcs_table(ref, pred)[-1][-1]
    p, r = lcs / len(pred), lcs / len(ref)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": p, "recall": r, "f": f}


def bucket(n):
    if n <= 2:
        return "0-2"
    if n <= 5:
        return "3-5"
    if n <= 10:
        return "6-10"
    return ">10"


ROUGE_PAIRS = [
    # rouge-score's README example: rougeL precision 0.625, recall 0.5556, fmeasure 0.5882
    ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
    ("Don't stop believing!", "dont stop, believe"),
    ("Paris", "The capital of France is Paris."),
    ("", "anything"),
    ("something", ""),
    ("...", "!!!"),
    ("Café au lait, naïve résumé", "cafe au lait naive resume"),
    ("İstanbul KELVIN \u212a", "istanbul kelvin k"),
    ("北京是中国的首都", "北京是首都"),
    ("3.14159 is pi; e is 2.71828", "pi is 3.14159 and e is 2.71828"),
    ("a b c d e f g h i j k l", "l k j i h g f e d c b a"),
    ("The cat sat on the mat. The cat was happy.", "A cat was on a mat and it was happy"),
    ("Yes", "yes yes yes"),
    ("Once upon a time there was a girl named Lily", "Once upon a time, there was a little girl named Lily."),
]


def main():
    rng = random.Random(20260402)
    out = {
        "generator": "scripts/evalstats_reference.py",
        "paper": [
            {"model": 624, "opponent": 667, "ratio": 624 / 667, "percent": "94%"},
            {"model": 606, "opponent": 726.5, "ratio": 606 / 726.5, "percent": "83%"},
        ],
        "paired": [
            paired_case("close", rng, 80, 0.0),
            paired_case("better", rng, 80, 0.75),
            paired_case("small", rng, 12, -0.5),
        ],
        "quantiles": [],
        "rouge": [],
        "buckets": None,
    }
    for n in (1, 2, 5, 10, 101):
        vals = sorted(rng.uniform(0, 2) for _ in range(n))
        for q in (0.0, 0.025, 0.5, 0.975, 1.0):
            out["quantiles"].append({"sorted": vals, "q": q, "value": quantile7(vals, q)})
    for ref, pred in ROUGE_PAIRS:
        s = rouge_l(ref, pred)
        out["rouge"].append({"reference": ref, "prediction": pred, "reference_tokens": rouge_tokenize(ref),
                             "prediction_tokens": rouge_tokenize(pred), **s})
    # bucket means over the pairs above plus seeded random word strings of every length 0..14
    words = ["the", "cat", "dog", "a", "ball", "ran", "red", "big", "and", "sun"]
    refs = [r for r, _ in ROUGE_PAIRS]
    preds = [p for _, p in ROUGE_PAIRS]
    for n in range(15):
        refs.append(" ".join(rng.choice(words) for _ in range(n)))
        preds.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 14))))
    sums, counts = {}, {}
    total = 0.0
    for ref, pred in zip(refs, preds):
        b = bucket(len(rouge_tokenize(ref)))
        f = rouge_l(ref, pred)["f"]
        sums[b] = sums.get(b, 0.0) + f
        counts[b] = counts.get(b, 0) + 1
        total += f
    out["buckets"] = {
        "references": refs,
        "predictions": preds,
        "buckets": [{"bucket": b, "n": counts.get(b, 0), "mean_f": sums.get(b, 0.0) / counts[b] if counts.get(b) else 0.0}
                    for b in ("0-2", "3-5", "6-10", ">10")],
        "mean_f": total / len(refs),
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
