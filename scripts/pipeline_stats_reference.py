#!/usr/bin/env python3
"""Reference values for pipeline/stats.go, computed from the definitions in plain Python (no numpy).

- win rate: P(T > C) + 0.5 P(T = C) over every (treatment, control) pair, by brute force;
- sample quantiles: linear interpolation between closest ranks (numpy's default, Hyndman-Fan type 7);
- histogram quantiles: PromQL's histogram_quantile as its documentation states it (find the bucket holding
  rank q*count, interpolate linearly inside it, the lowest bucket starting at 0 when its bound is positive,
  a rank in the +Inf bucket giving the highest finite bound).

Run: python3 scripts/pipeline_stats_reference.py > pipeline/testdata/stats_reference.json
"""
import json
import math
import random


def win_rate(t, c):
    s = 0.0
    for a in t:
        for b in c:
            s += 1.0 if a > b else 0.5 if a == b else 0.0
    return s / (len(t) * len(c))


def quantile7(x, q):
    x = sorted(x)
    h = (len(x) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(x) - 1)
    return x[lo] + (h - lo) * (x[hi] - x[lo])


def histogram_quantile(q, upper, count, total):
    # upper/count: finite bucket bounds (ascending) and their cumulative counts; total: the +Inf bucket's.
    rank = q * total
    prev_upper, prev_count = 0.0, 0.0
    for u, c in zip(upper, count):
        if c >= rank:
            if c == prev_count:
                return u
            return prev_upper + (u - prev_upper) * (rank - prev_count) / (c - prev_count)
        prev_upper, prev_count = u, c
    return upper[-1]


rng = random.Random(7)
out = {"win_rates": [], "quantiles": [], "histograms": []}
cases = [
    ([8, 7, 9], [6, 7, 7]),
    ([1, 1, 1], [1, 1, 1]),
    ([5.5, 2.0], [3.0, 5.5, 9.0, 1.0]),
]
for _ in range(3):
    n, m = rng.randint(5, 30), rng.randint(5, 30)
    cases.append(([rng.randint(1, 10) for _ in range(n)], [rng.randint(1, 10) for _ in range(m)]))
    cases.append(([round(rng.gauss(0.3, 1), 3) for _ in range(n)], [round(rng.gauss(0, 1), 3) for _ in range(m)]))
for t, c in cases:
    out["win_rates"].append({"t": t, "c": c, "win_rate": win_rate(t, c)})

for x, q in [([3, 1, 2], 0.5), ([1, 2, 3, 4], 0.5), ([1, 2, 3, 4], 0.95), ([0.2, 0.1, 0.4, 0.3, 0.9], 0.99), ([5], 0.5)]:
    out["quantiles"].append({"x": x, "q": q, "value": quantile7(x, q)})
for _ in range(4):
    x = [round(rng.expovariate(3), 4) for _ in range(rng.randint(3, 40))]
    for q in (0.025, 0.5, 0.975):
        out["quantiles"].append({"x": x, "q": q, "value": quantile7(x, q)})

bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
for scale in (20, 20, 3, 0.05):
    obs = [rng.expovariate(scale) for _ in range(rng.randint(5, 60))]
    count = [float(sum(1 for o in obs if o <= b)) for b in bounds]
    for q in (0.5, 0.95, 0.99):
        out["histograms"].append({"upper": bounds, "count": count, "total": float(len(obs)), "q": q,
                                  "value": histogram_quantile(q, bounds, count, len(obs))})
print(json.dumps(out, indent=1))
