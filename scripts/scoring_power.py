#!/usr/bin/env python3
"""The detection power of the truth check, computed exactly (no simulation): docs/scoring.md quotes it.

    python scripts/scoring_power.py [--rows 10000] [--sample 50] [--threshold 0.05] [--min-answered 0.8]

Model. A miner uploads N rows; a share F of them are false (invented, stale, or with values the listing never
had). The validator's snapshot proves every honest row except a share d that changed since the miner's
scrape or left the search ("drift"); those and every false row form the pool. A share w of the drifted rows
can no longer be proven at the source (deleted entirely: Realtor keeps sold and withdrawn listings, so w is
small). A sample of k pool rows is fetched again; f of the k' answered ones are bad. The estimated false share
is (f / k') x pool / N, and above the threshold the epoch scores 0.

f is hypergeometric: k' draws without replacement from the pool, whose "bad" rows are the false rows plus the
unprovable drift rows. k' = k when the source answers the whole sample; with an outage during the validation
window the epoch is retried, and at worst committed with k' = ceil(min-answered x k) answered rows (below
that, no extrapolation and no zero from the sample at all).
"""

from __future__ import annotations

import argparse
from math import ceil, comb


def p_zero(n: int, false_share: float, drift: float, lost: float, k: int, threshold: float,
           answered_share: float = 1.0) -> float:
    """Probability that the epoch scores 0 (estimated false share above ``threshold``)."""
    false = round(n * false_share)
    drifted = round((n - false) * drift)
    pool = false + drifted
    bad = false + round(drifted * lost)
    if pool == 0:
        return 0.0
    draws = min(k, pool)
    answered = max(1, ceil(answered_share * draws))
    total = comb(pool, answered)
    p = 0.0
    for f in range(max(0, answered - (pool - bad)), min(answered, bad) + 1):
        if f / answered * pool / n > threshold:
            p += comb(bad, f) * comb(pool - bad, answered - f) / total
    return p


def table(title: str, cases, n: int, k: int, t: float, answered: float, false_share: float, worst_of, bound: str):
    print(title)
    print(f"  {'drift d':>8} {'lost w':>8} {'P(score 0)':>14}")
    values = []
    for d, w in cases:
        p = p_zero(n, false_share, d, w, k, t, answered)
        values.append(p)
        print(f"  {d:>8.0%} {w:>8.0%} {p:>14.10f}")
    worst = worst_of(values)
    print(f"  worst case: {worst:.10f}  (required {bound})\n")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--min-answered", type=float, default=0.8)
    args = parser.parse_args()
    n, k, t, a = args.rows, args.sample, args.threshold, args.min_answered
    print(f"N = {n} rows, sample k = {k}, threshold = {t:.0%}, extrapolation from {ceil(a * k)} answered rows on\n")
    normal = [(d, w) for d in (0.0, 0.02, 0.05, 0.10) for w in (0.0, 0.25)]
    ok = True
    worst = table("A miner 10% of whose rows are false (fabricated or stale: both are bad rows of the pool), the "
                  "source answering the whole sample: P(score 0)",
                  normal + [(0.20, 0.0), (0.20, 0.25)], n, k, t, 1.0, 0.10, min, ">= 0.99")
    ok &= worst >= 0.99
    worst = table(f"The same, the source down for part of the sample ({ceil(a * k)} of {k} answered)",
                  normal, n, k, t, a, 0.10, min, ">= 0.99")
    ok &= worst >= 0.99
    honest = [(d, w) for d in (0.02, 0.05, 0.10) for w in (0.0, 0.05, 0.10, 0.25)]
    worst = table("An honest miner under the normal drift of a 4-hour epoch (d <= 10%): P(wrongly scored 0)",
                  honest, n, k, t, 1.0, 0.0, max, "<= 0.01")
    ok &= worst <= 0.01
    worst = table(f"The same with {ceil(a * k)} of {k} answered", honest, n, k, t, a, 0.0, max, "<= 0.01")
    ok &= worst <= 0.01
    print("Beyond normal (for reference): d = 20% with only part of the sample answered, and an honest miner")
    print("whose unprovable share d x w reaches the threshold")
    print(f"  10% false, d=20% w=0%, {ceil(a * k)} answered: P(score 0) = {p_zero(n, 0.1, 0.2, 0.0, k, t, a):.6f}")
    for d, w in ((0.20, 0.10), (0.20, 0.25)):
        print(f"  honest d={d:.0%} w={w:.0%}: P(score 0) = {p_zero(n, 0.0, d, w, k, t):.6f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
