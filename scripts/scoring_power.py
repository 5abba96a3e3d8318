#!/usr/bin/env python3
"""The truth check's power and the penalty for rows proven false, computed exactly (no simulation):
docs/scoring.md quotes the output.

    python scripts/scoring_power.py [--rows 10000] [--sample 50] [--threshold 0.05] [--min-answered 0.8]
                                    [--penalty P]

Model. A miner uploads N rows; F of them are false (invented, stale, or with values the listing never had) and
land in the pool. Of the honest rows, a share ``corrected`` has a static field the source corrected during the
epoch (the snapshot proves those rows false, exactly: no sampling); a share d changed status or price during
the epoch or left the search ("drift"): they form the pool with the false rows. A share w of the drifted rows
can no longer be proven at the source (deleted entirely: Realtor keeps sold and withdrawn listings, so w is
small). A sample of k pool rows is fetched again; f of the k' answered ones are bad (proven false).

The estimated proven-false share is r = (corrected rows + f / k' x pool) / N. Above the threshold the epoch
scores 0; below it the truth factor is 1 - P x r. The credited rows are the snapshot's proven rows plus the
pool at the sample's confirmed rate (k' - f) / k'. f is hypergeometric: k' draws without replacement from the
pool. k' = k when the source answers the whole sample; at worst ceil(min-answered x k).

What the calibration requires (``issue: wrong data never pays``): under the normal drift of a 4-hour epoch an
honest miner is zeroed with probability <= 1% and loses <= 1% of its score on average (against every row
proven); the penalty P is the largest whole multiple, ten at most, that keeps it so. A miner with >= 1% of
its rows proven false earns less than it would by leaving them out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from math import ceil, comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resi.validation.params import ValidationParams  # noqa: E402

CORRECTED = 0.001
"""Share of listings a static field of which the source corrects during an epoch (modelled)."""
NORMAL_DRIFT = [(d, w) for d in (0.02, 0.05, 0.10) for w in (0.0, 0.005, 0.01)]
"""(d, w) of a normal 4-hour epoch, for the honest miner's mean loss: up to 10% of listings change, and up to
1% of those are deleted outright (at most 0.1% of the rows, as many as the corrections)."""
STRESS_DRIFT = [(d, w) for d in (0.02, 0.05, 0.10) for w in (0.0, 0.05, 0.10, 0.25)]
"""Harsher drift, for the threshold's false alarms only (P(score 0) of an honest miner)."""
MAX_PENALTY = 10


@dataclass(frozen=True)
class Case:
    n: int
    false: int
    corrected: int
    pool: int
    bad: int
    """Rows of the pool that the refetch proves false (false rows and deleted drift)."""


def case(n: int, false_share: float, drift: float, lost: float, corrected: float = CORRECTED) -> Case:
    false = round(n * false_share)
    honest = n - false
    fixed = round(honest * corrected)
    drifted = round((honest - fixed) * drift)
    return Case(n, false, fixed, false + drifted, false + round(drifted * lost))


def outcomes(c: Case, k: int, answered_share: float) -> Iterator[tuple[float, int, int]]:
    """(probability, bad rows in the answered sample f, answered rows k') of every outcome of the sample."""
    if c.pool == 0:
        yield 1.0, 0, 0
        return
    draws = min(k, c.pool)
    answered = max(1, ceil(answered_share * draws))
    total = comb(c.pool, answered)
    for f in range(max(0, answered - (c.pool - c.bad)), min(answered, c.bad) + 1):
        yield comb(c.bad, f) * comb(c.pool - c.bad, answered - f) / total, f, answered


def rate(c: Case, f: int, answered: int) -> float:
    """The estimated proven-false share."""
    sampled = f / answered * c.pool if answered else 0.0
    return (c.corrected + sampled) / c.n


def earned(c: Case, f: int, answered: int, threshold: float, penalty: float) -> float:
    """Credited rows x truth factor: what the epoch pays, in rows."""
    r = rate(c, f, answered)
    factor = 0.0 if r > threshold else max(0.0, 1.0 - penalty * r)
    credited = c.n - c.corrected - c.pool + (c.pool * (answered - f) / answered if answered else 0)
    return credited * factor


def p_zero(c: Case, k: int, threshold: float, answered_share: float = 1.0) -> float:
    """Probability that the epoch scores 0 (estimated false share above ``threshold``)."""
    return sum(p for p, f, a in outcomes(c, k, answered_share) if rate(c, f, a) > threshold)


def mean_earned(c: Case, k: int, threshold: float, penalty: float, answered_share: float = 1.0) -> float:
    return sum(p * earned(c, f, a, threshold, penalty) for p, f, a in outcomes(c, k, answered_share))


def honest_loss(n: int, d: float, w: float, k: int, threshold: float, penalty: float, answered_share: float = 1.0) -> float:
    """An honest miner's mean loss against every row proven and paid in full."""
    return 1.0 - mean_earned(case(n, 0.0, d, w), k, threshold, penalty, answered_share) / n


def largest_penalty(n: int, k: int, threshold: float, answered_share: float, bound: float = 0.01) -> int:
    """The largest whole multiple (<= 10) that keeps the honest miner's mean loss within ``bound`` under every
    normal drift, with the sample fully or partly answered."""
    for penalty in range(MAX_PENALTY, 0, -1):
        if all(honest_loss(n, d, w, k, threshold, penalty, a) <= bound for d, w in NORMAL_DRIFT for a in (1.0, answered_share)):
            return penalty
    return 0


def zero_table(title: str, cases, n: int, k: int, t: float, answered: float, false_share: float, worst_of, bound: str) -> float:
    print(title)
    print(f"  {'drift d':>8} {'lost w':>8} {'P(score 0)':>14}")
    values = []
    for d, w in cases:
        p = p_zero(case(n, false_share, d, w), k, t, answered)
        values.append(p)
        print(f"  {d:>8.0%} {w:>8.1%} {p:>14.10f}")
    worst = worst_of(values)
    print(f"  worst case: {worst:.10f}  (required {bound})\n")
    return worst


def main() -> int:
    defaults = ValidationParams()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=defaults.sample_size)
    parser.add_argument("--threshold", type=float, default=defaults.fabrication_threshold)
    parser.add_argument("--min-answered", type=float, default=defaults.min_answered_share)
    parser.add_argument(
        "--penalty",
        type=float,
        default=defaults.false_penalty,
        help="the multiple a proven-false row costs (default: the validators')",
    )
    args = parser.parse_args()
    n, k, t, a, m = args.rows, args.sample, args.threshold, args.min_answered, args.penalty
    print(
        f"N = {n} rows, sample k = {k}, threshold = {t:.0%}, extrapolation from {ceil(a * k)} answered rows on, "
        f"penalty {m:g}x, {CORRECTED:.1%} of honest rows corrected by the source during the epoch\n"
    )
    ok = True
    normal = [(d, w) for d in (0.0, 0.02, 0.05, 0.10) for w in (0.0, 0.25)]
    worst = zero_table(
        "A miner 10% of whose rows are false (fabricated or stale: both are bad rows of the pool), "
        "the source answering the whole sample: P(score 0)",
        normal + [(0.20, 0.0), (0.20, 0.25)],
        n,
        k,
        t,
        1.0,
        0.10,
        min,
        ">= 0.99",
    )
    ok &= worst >= 0.99
    worst = zero_table(
        f"The same, the source down for part of the sample ({ceil(a * k)} of {k} answered)",
        normal,
        n,
        k,
        t,
        a,
        0.10,
        min,
        ">= 0.99",
    )
    ok &= worst >= 0.99
    worst = zero_table(
        "An honest miner under the drift of a 4-hour epoch (d <= 10%, w up to 25%): P(wrongly scored 0)",
        STRESS_DRIFT,
        n,
        k,
        t,
        1.0,
        0.0,
        max,
        "<= 0.01",
    )
    ok &= worst <= 0.01
    worst = zero_table(f"The same with {ceil(a * k)} of {k} answered", STRESS_DRIFT, n, k, t, a, 0.0, max, "<= 0.01")
    ok &= worst <= 0.01

    print(f"An honest miner's mean loss under normal drift (w <= 1%), penalty {m:g}x")
    print(f"  {'drift d':>8} {'lost w':>8} {'mean loss':>10} {f'({ceil(a * k)} answered)':>16}")
    losses = []
    for d, w in NORMAL_DRIFT:
        full, part = honest_loss(n, d, w, k, t, m), honest_loss(n, d, w, k, t, m, a)
        losses += [full, part]
        print(f"  {d:>8.0%} {w:>8.1%} {full:>10.4%} {part:>16.4%}")
    print(f"  worst case: {max(losses):.4%}  (required <= 1%)")
    ok &= max(losses) <= 0.01
    best = largest_penalty(n, k, t, a)
    print(f"  the largest whole penalty (<= {MAX_PENALTY}) within 1%: {best}x; this run's: {m:g}x\n")
    ok &= m <= best

    print(
        "A miner with a share of its rows proven false against the same miner leaving them out "
        f"(d = 5%, w = 0.5%), penalty {m:g}x: mean rows paid"
    )
    print(f"  {'false':>6} {'with them':>10} {'without':>10} {'cost/share':>11}")
    for share in (0.01, 0.02, 0.03, 0.045):
        with_them = case(n, share, 0.05, 0.005)
        without = case(n - with_them.false, 0.0, 0.05, 0.005)
        paid, kept = mean_earned(with_them, k, t, m), mean_earned(without, k, t, m)
        print(f"  {share:>6.1%} {paid:>10.1f} {kept:>10.1f} {(kept - paid) / with_them.false:>11.2f}")
        ok &= paid < kept
    print("  (cost/share: rows of pay lost per false row, beyond the row itself earning nothing)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
