"""The truth check's power, through the real code: a miner 10% of whose rows are fabricated or stale scores 0
in at least 99% of epochs; an honest miner under the modelled drift (listings that change or leave the search
during the epoch, a few the source deletes, 0.1% whose static fields the source corrects) is zeroed in at most
1% and loses at most 1% of its pay on average; a miner with 1% of its rows proven false earns less than by
leaving them out, by about the penalty's multiple. ``scripts/scoring_power.py`` has the exact math (quoted in
docs/scoring.md); these runs agree with it."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from statistics import mean

import pytest

from resi.validation.truth import UNANSWERED, Snapshot, choose_sample, conclude, sample_seed
from tests.kit import PYTHON, ROOT
from tests.validation.epoch_data import LISTED, START, P, facts, row, split_by_snapshot

pytestmark = pytest.mark.slow

TRIALS = 200
SOLD_BEFORE = START.timestamp() - 3600
SCRIPT = ROOT / "scripts" / "scoring_power.py"
_spec = importlib.util.spec_from_file_location("scoring_power", SCRIPT)
power = sys.modules.setdefault("scoring_power", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(power)


def epoch(
    rng: random.Random,
    n: int,
    false_share: float,
    kind: str,
    drift: float,
    lost: float,
    unanswered: float = 0.0,
    corrected: float = 0.0,
):
    """One epoch of a miner with ``n`` rows: its truth result and its rows. ``corrected``: share of the honest
    rows whose sqft the source corrected after the miner's scrape (the snapshot has the new value)."""
    false = round(n * false_share)
    rows = [row(i) for i in range(n)]
    honest = rows[: n - false]
    fixed = set(rng.sample(range(len(honest)), round(len(honest) * corrected)))
    steady = [i for i in range(len(honest)) if i not in fixed]
    drifted = set(rng.sample(steady, round(len(steady) * drift)))
    gone = set(rng.sample(sorted(drifted), round(len(drifted) * lost)))

    def source(i: int, r: dict) -> dict:
        return facts(dict(r, sqft=r["sqft"] + 1) if i in fixed else r)

    snapshot = Snapshot({r["listing_id"]: source(i, r) for i, r in enumerate(honest) if i not in drifted}, {})
    stale = [[LISTED, LISTED + 1, "listed", None], [SOLD_BEFORE, SOLD_BEFORE + 1, "status", "sold"]]

    def answer(i: int, r: dict):
        if rng.random() < unanswered:
            return UNANSWERED
        if i >= n - false:
            return None if kind == "fabricated" else facts(r, status="sold", events=stale)
        return None if i in gone else source(i, r)

    valid = {r["listing_id"]: r for r in rows}
    result, pool = split_by_snapshot(valid, snapshot, START.timestamp())
    sample = choose_sample(pool, sample_seed(f"0x{rng.getrandbits(64):x}", "hk", "sha"), P.sample_size)
    result.sample_rows = {i: valid[i] for i in sample}
    index = {r["listing_id"]: i for i, r in enumerate(rows)}
    outcomes = {i: answer(index[i], valid[i]) for i in sample}
    return conclude(result, outcomes, START.timestamp(), P), valid


def paid(truth) -> float:
    """What the epoch pays, in rows: credited rows x truth factor."""
    return truth.factor * sum(truth.credited().values())


def test_a_ten_percent_fabricator_scores_zero():
    rng = random.Random(1)
    zeros = sum(epoch(rng, 1000, 0.10, "fabricated", 0.05, 0.25)[0].factor == 0.0 for _ in range(TRIALS))
    assert zeros >= 0.99 * TRIALS


def test_a_ten_percent_stale_miner_scores_zero():
    rng = random.Random(3)
    outcomes = [epoch(rng, 1000, 0.10, "stale", 0.05, 0.0)[0] for _ in range(TRIALS)]
    assert sum(o.factor == 0.0 for o in outcomes) >= 0.99 * TRIALS
    assert all(set(o.bad) <= {"stale"} for o in outcomes)


@pytest.mark.parametrize("drift,lost", [(0.02, 0.0), (0.10, 0.01)])
def test_an_honest_miner_under_modelled_drift_is_rarely_zeroed_and_loses_at_most_one_percent(drift, lost):
    rng = random.Random(2)
    n = 1000
    epochs = [epoch(rng, n, 0.0, "", drift, lost, corrected=power.CORRECTED)[0] for _ in range(TRIALS)]
    assert sum(t.factor == 0.0 for t in epochs) <= 0.01 * TRIALS
    assert any(t.bad.get("mismatch:sqft") for t in epochs)  # the corrections are proven false, as modelled
    loss = 1 - mean(paid(t) for t in epochs) / n
    exact = power.honest_loss(n, drift, lost, P.sample_size, P.fabrication_threshold, P.false_penalty)
    assert loss == pytest.approx(exact, abs=0.001)  # the real truth check agrees with the calculation
    assert loss <= 0.01 and exact <= 0.01


def test_the_penalty_is_the_largest_multiple_that_keeps_honest_miners_within_one_percent():
    best = power.largest_penalty(10_000, P.sample_size, P.fabrication_threshold, P.min_answered_share)
    assert P.false_penalty == best >= 1
    worst = max(power.honest_loss(10_000, d, w, P.sample_size, P.fabrication_threshold, best + 1) for d, w in power.NORMAL_DRIFT)
    assert worst > 0.01  # one more and an honest miner would lose more than allowed


def test_a_one_percent_false_miner_earns_less_than_by_leaving_those_rows_out():
    n, trials = 1000, TRIALS // 2
    with_them = [epoch(random.Random(s), n, 0.01, "fabricated", 0.05, 0.005)[0] for s in range(trials)]
    without = [epoch(random.Random(s), n - 10, 0.0, "", 0.05, 0.005)[0] for s in range(trials)]
    cost = (mean(paid(t) for t in without) - mean(paid(t) for t in with_them)) / 10  # rows of pay per false row
    assert all(t.bad.get("not_found_at_source", 0) <= t.sample_bad for t in with_them)
    assert cost >= 0.75 * P.false_penalty  # each false row costs about the penalty's multiple of a row
    assert mean(paid(t) for t in with_them) < mean(paid(t) for t in without)


def test_an_outage_during_the_sample_neither_zeroes_the_honest_nor_spares_the_fabricator():
    rng = random.Random(4)
    honest = [epoch(rng, 1000, 0.0, "", 0.10, 0.0, unanswered=0.15)[0] for _ in range(TRIALS // 2)]
    assert all(t.factor == 1.0 for t in honest)
    fabricators = [epoch(rng, 1000, 0.10, "fabricated", 0.05, 0.0, unanswered=0.15)[0] for _ in range(TRIALS // 2)]
    assert sum(t.factor == 0.0 for t in fabricators) >= 0.99 * len(fabricators)


def test_the_exact_calculation_meets_every_bound():
    out = subprocess.run([PYTHON, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    assert "worst case" in out.stdout
