"""The whole subnet on the local network: honest miners, every kind of cheater, two validators.

``python -m resi.localnet`` itself is run (as a user would), for two validated epochs of one minute."""

from __future__ import annotations

import json
import subprocess

import pytest

from resi.chain.local import SimulatedChainStore
from tests.helpers import PYTHON

EXPECTED = {  # cheater -> a reason its results must show (and its score is 0)
    "nothing": "no_upload",
    "wrong_nonce": "wrong_nonce",
    "fabricate": "fabrication_over_threshold",
    "pad": "duplicate_address",
    "unassigned": "unassigned_zipcode",
    "copy": "copy_of",
    "bomb": "too_many_rows",
}


@pytest.fixture(scope="module")
def localnet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("localnet")
    out = subprocess.run(
        [PYTHON, "-m", "resi.localnet", "--run-dir", str(run_dir), "--epoch-minutes", "1", "--epochs", "2",
         "--cheaters", "all", "--scale", "0.02", "--block-seconds", "1"],
        capture_output=True, text=True, timeout=600,
    )
    return run_dir, out


def test_localnet_runs_two_epochs_and_stops_cleanly(localnet):
    run_dir, out = localnet
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["epochs"]) == 2 and summary["failed_processes"] == []
    assert "epoch " in out.stdout and "truth check" in out.stdout  # the table was printed
    for epoch in summary["epochs"]:
        assert {"epoch_id", "miners", "validators"} <= set(epoch)
        for miner in epoch["miners"]:
            assert {"hotkey", "cheater", "rows_uploaded", "rows_valid", "score", "weight", "reasons"} <= set(miner)
        assert all(v["weights_set"] for v in epoch["validators"])


def test_every_cheater_gets_the_outcome_the_design_gives_it(localnet):
    run_dir, _ = localnet
    summary = json.loads((run_dir / "summary.json").read_text())
    for epoch in summary["epochs"]:
        honest = [m for m in epoch["miners"] if m["cheater"] is None]
        cheaters = {m["cheater"]: m for m in epoch["miners"] if m["cheater"]}
        assert all(m["score"] > 0.9 for m in honest), honest
        for name, reason in EXPECTED.items():
            assert cheaters[name]["score"] == 0, (name, cheaters[name])
            assert any(k.startswith(reason) for k in cheaters[name]["reasons"]), (name, cheaters[name]["reasons"])
        assert cheaters["stale"]["score"] == 0 and cheaters["stale"]["reasons"]
        assert sum(m["weight"] for m in honest) >= 0.95


def test_validators_set_identical_weights(localnet):
    run_dir, _ = localnet
    records = SimulatedChainStore(run_dir / "chain.db").weights(46)
    by_validator: dict[str, list] = {}
    for r in records:
        by_validator.setdefault(r["hotkey"], []).append((r["uids"], r["weights"]))
    assert len(by_validator) == 2
    first, second = by_validator.values()
    n = min(len(first), len(second))  # one weight vector per validated epoch, the partial first one included
    assert n >= 2 and first[:n] == second[:n]
    for text in (run_dir / "logs").glob("validator*.log"):
        assert "Traceback" not in text.read_text()
