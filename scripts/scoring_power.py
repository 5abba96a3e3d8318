#!/usr/bin/env python3
"""The detection power of the truth check, computed exactly (no simulation): docs/scoring.md quotes it.

    python scripts/scoring_power.py [--rows 10000] [--sample 30] [--threshold 0.05]

Model. A miner uploads N rows. The validator's snapshot lacks the rows whose listings changed between
the miner's scrape and its own ("drift", a share d of the honest rows; a share w of those were withdrawn
entirely, so fetching them again finds nothing) and every fabricated row (a share F of all rows). A sample
of k of these unverified rows is fetched again; f of them turn out fabricated or withdrawn. The estimated
fabricated share is (f / k) x unverified / N, and above the threshold the epoch scores 0.

f is hypergeometric: k draws without replacement from the unverified rows, of which the "bad" ones are
the fabricated rows plus the withdrawn drift rows.
"""

from __future__ import annotations

import argparse
from math import comb


def tail_zero(n: int, fake_share: float, drift: float, withdrawn: float, k: int, threshold: float) -> float:
    """Probability that the epoch scores 0 (estimated fabricated share above ``threshold``)."""
    fakes = round(n * fake_share)
    honest = n - fakes
    drifted = round(honest * drift)
    unverified = fakes + drifted
    bad = fakes + round(drifted * withdrawn)
    if unverified == 0:
        return 0.0
    draws = min(k, unverified)
    total = comb(unverified, draws)
    p = 0.0
    for f in range(max(0, draws - (unverified - bad)), min(draws, bad) + 1):
        if f / draws * unverified / n > threshold:
            p += comb(bad, f) * comb(unverified - bad, draws - f) / total
    return p


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--threshold", type=float, default=0.05)
    args = parser.parse_args()
    n, k, t = args.rows, args.sample, args.threshold
    print(f"N = {n} rows, sample k = {k}, threshold = {t:.0%}\n")
    print("Fabricator (10% of rows invented): probability its epoch scores 0")
    print(f"  {'drift d':>8} {'withdrawn w':>12} {'P(score 0)':>14}")
    worst = 1.0
    for d in (0.0, 0.02, 0.05, 0.10, 0.20):
        for w in (0.0, 0.25):
            p = tail_zero(n, 0.10, d, w, k, t)
            worst = min(worst, p)
            print(f"  {d:>8.0%} {w:>12.0%} {p:>14.10f}")
    print(f"  worst case: {worst:.10f}  (required >= 0.99)\n")
    print("Honest miner under normal drift (d <= 10%, w <= 25%): probability it is wrongly scored 0")
    print(f"  {'drift d':>8} {'withdrawn w':>12} {'P(score 0)':>14}")
    worst_false = 0.0
    for d in (0.02, 0.05, 0.10):
        for w in (0.05, 0.10, 0.25):
            p = tail_zero(n, 0.0, d, w, k, t)
            worst_false = max(worst_false, p)
            print(f"  {d:>8.0%} {w:>12.0%} {p:>14.10f}")
    print(f"  worst case: {worst_false:.10f}  (required <= 0.01)\n")
    print("Beyond normal (for reference): an honest miner whose unverifiable share d x w reaches the threshold")
    for d, w in ((0.20, 0.10), (0.20, 0.25)):
        print(f"  d={d:.0%} w={w:.0%}: P(score 0) = {tail_zero(n, 0.0, d, w, k, t):.6f}")
    return 0 if worst >= 0.99 and worst_false <= 0.01 else 1


if __name__ == "__main__":
    raise SystemExit(main())
