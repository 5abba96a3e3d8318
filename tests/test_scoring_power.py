"""The truth check's power, through the real code: a 10% fabricator scores 0 in at least 99% of epochs,
an honest miner under normal drift keeps its score in at least 99% (docs/scoring.md has the exact math)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from resi.validation.params import ValidationParams
from resi.validation.truth import Snapshot, choose_sample, judge, sample_seed, split_by_snapshot
from tests.helpers import PYTHON
from tests.test_validation import row

P = ValidationParams()
TRIALS = 200


def epoch_outcome(rng: random.Random, n: int, fake_share: float, drift: float, withdrawn: float) -> float:
    """One epoch's truth factor for a miner with ``n`` rows."""
    fakes = round(n * fake_share)
    rows = [row(i, listing_id=f"R{i}") for i in range(n - fakes)] + [row(n + i, listing_id=f"F{i}") for i in range(fakes)]
    drifted = set(rng.sample(range(n - fakes), round((n - fakes) * drift)))
    gone = set(rng.sample(sorted(drifted), round(len(drifted) * withdrawn)))
    snapshot = Snapshot({r["listing_id"]: r for i, r in enumerate(rows[: n - fakes]) if i not in drifted}, {})
    at_source = {r["listing_id"]: r for i, r in enumerate(rows[: n - fakes]) if i not in gone}
    result, unverified = split_by_snapshot(rows, snapshot, P)
    sample = choose_sample(unverified, sample_seed(f"0x{rng.getrandbits(64):x}", "hk", "sha"), P.sample_size)
    refetched = {i: at_source.get(i) for i in sample}
    return judge(result, {r["listing_id"]: r for r in rows}, unverified, sample, refetched, P).factor


def test_a_ten_percent_fabricator_scores_zero():
    rng = random.Random(1)
    zeros = sum(epoch_outcome(rng, 1000, 0.10, 0.05, 0.25) == 0.0 for _ in range(TRIALS))
    assert zeros >= 0.99 * TRIALS


def test_an_honest_miner_under_normal_drift_keeps_its_score():
    rng = random.Random(2)
    kept = sum(epoch_outcome(rng, 1000, 0.0, 0.10, 0.10) > 0.9 for _ in range(TRIALS))
    assert kept >= 0.99 * TRIALS


def test_the_exact_calculation_meets_both_bounds():
    script = Path(__file__).resolve().parent.parent / "scripts" / "scoring_power.py"
    out = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    assert "worst case" in out.stdout
