"""The truth check's power, through the real code: a miner 10% of whose rows are fabricated or stale scores 0
in at least 99% of epochs, an honest miner under normal drift keeps its score in at least 99%, with the
sample rule (refetch, confirmed-rate extrapolation) of ``resi.validation.truth.judge`` (docs/scoring.md has the
exact math)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from resi.validation.params import ValidationParams
from resi.validation.truth import UNANSWERED, Snapshot, choose_sample, judge, sample_seed
from tests.helpers import PYTHON
from tests.test_validation import LISTED, START, facts, row, split_by_snapshot

P = ValidationParams()
TRIALS = 200
SOLD_BEFORE = START.timestamp() - 3600


def epoch(rng: random.Random, n: int, false_share: float, kind: str, drift: float, lost: float,
          unanswered: float = 0.0):
    """One epoch of a miner with ``n`` rows: its truth result and its rows."""
    false = round(n * false_share)
    rows = [row(i) for i in range(n)]
    honest = rows[: n - false]
    drifted = set(rng.sample(range(len(honest)), round(len(honest) * drift)))
    gone = set(rng.sample(sorted(drifted), round(len(drifted) * lost)))
    snapshot = Snapshot({r["listing_id"]: facts(r) for i, r in enumerate(honest) if i not in drifted}, {})
    stale = [[LISTED, LISTED + 1, "listed", None], [SOLD_BEFORE, SOLD_BEFORE + 1, "status", "sold"]]

    def answer(i: int, r: dict):
        if rng.random() < unanswered:
            return UNANSWERED
        if i >= n - false:
            return None if kind == "fabricated" else facts(r, status="sold", events=stale)
        return None if i in gone else facts(r)

    valid = {r["listing_id"]: r for r in rows}
    result, pool = split_by_snapshot(valid, snapshot, START.timestamp())
    sample = choose_sample(pool, sample_seed(f"0x{rng.getrandbits(64):x}", "hk", "sha"), P.sample_size)
    result.sample_rows = {i: valid[i] for i in sample}
    index = {r["listing_id"]: i for i, r in enumerate(rows)}
    outcomes = {i: answer(index[i], valid[i]) for i in sample}
    return judge(result, outcomes, START.timestamp(), P), valid


def test_a_ten_percent_fabricator_scores_zero():
    rng = random.Random(1)
    zeros = sum(epoch(rng, 1000, 0.10, "fabricated", 0.05, 0.25)[0].factor == 0.0 for _ in range(TRIALS))
    assert zeros >= 0.99 * TRIALS


def test_a_ten_percent_stale_miner_scores_zero():
    rng = random.Random(3)
    outcomes = [epoch(rng, 1000, 0.10, "stale", 0.05, 0.0)[0] for _ in range(TRIALS)]
    assert sum(o.factor == 0.0 for o in outcomes) >= 0.99 * TRIALS
    assert all(set(o.bad) <= {"stale"} for o in outcomes)


def test_an_honest_miner_under_normal_drift_keeps_its_score():
    rng = random.Random(2)
    kept = 0
    for _ in range(TRIALS):
        truth, valid = epoch(rng, 1000, 0.0, "", 0.10, 0.10)
        kept += truth.factor > 0.98 and sum(truth.credited().values()) > 0.98 * len(valid)
    assert kept >= 0.99 * TRIALS


def test_an_outage_during_the_sample_neither_zeroes_the_honest_nor_spares_the_fabricator():
    rng = random.Random(4)
    honest = [epoch(rng, 1000, 0.0, "", 0.10, 0.0, unanswered=0.15)[0] for _ in range(TRIALS // 2)]
    assert all(t.factor == 1.0 for t in honest)
    fabricators = [epoch(rng, 1000, 0.10, "fabricated", 0.05, 0.0, unanswered=0.15)[0] for _ in range(TRIALS // 2)]
    assert sum(t.factor == 0.0 for t in fabricators) >= 0.99 * len(fabricators)


def test_the_exact_calculation_meets_both_bounds():
    script = Path(__file__).resolve().parent.parent / "scripts" / "scoring_power.py"
    out = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    assert "worst case" in out.stdout
