"""A validator killed (SIGKILL) in the middle of an epoch and restarted sets the same weights as one that
was not, with no epoch counted twice. Everything runs on the local subtensor node: the validators, the
miners and the API server read the chain and the weights land through the bittensor SDK's extrinsics."""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest

from resi.chain.store import SimulatedChainStore
from resi.chain.weights import conform
from resi.localnet.network import LocalNetwork, NetworkConfig
from tests.e2e import db_rows, wait_for

pytestmark = pytest.mark.slow


def test_killed_validator_sets_the_same_weights(tmp_path, local_s3):
    net = LocalNetwork(
        NetworkConfig(run_dir=tmp_path, epoch_minutes=0.5, listings_scale=0.02, block_seconds=1, chain="node"), s3=local_s3
    )
    try:
        net.start_infrastructure()
        miners = [net.register(f"m{i}") for i in range(2)]
        steady, killed = net.register("steady", validator=True), net.register("killed", validator=True)
        net.start_api()
        for m in miners:
            net.start_miner(m)
        net.start_validator(steady)
        slow = ("--source.max_rps", "2")  # its snapshot takes seconds: time to kill it in the middle
        net.start_validator(killed, *slow)
        state = net.validator_dir(killed) / "state.db"
        in_progress = wait_for(
            lambda: db_rows(state, "SELECT epoch_id FROM epochs WHERE status='processing'"),
            180,
            interval=0.05,
            what="the validator to begin an epoch",
        )
        killed.process.signal(signal.SIGKILL)
        killed.process.proc.wait(10)
        epoch_id = in_progress[0][0]
        with sqlite3.connect(state) as db:
            assert db.execute("SELECT status FROM epochs WHERE epoch_id=?", (epoch_id,)).fetchall() == [("processing",)]
        net.start_validator(killed, *slow)

        def both_done():
            done = [
                db_rows(
                    net.validator_dir(v) / "state.db",
                    "SELECT epoch_id, weights_set FROM epochs WHERE status='done' ORDER BY epoch_id",
                )
                for v in (steady, killed)
            ]
            common = {e for e, _ in done[0]} & {e for e, _ in done[1]}
            set_by_both = {e for e, s in done[0] if s} & {e for e, s in done[1] if s}
            return epoch_id in common and len(common) >= 2 and set_by_both and (sorted(common), set_by_both)

        common, set_by_both = wait_for(both_done, 240, interval=1, what="two epochs validated by both")
        common = [(e,) for e in common]
        store = SimulatedChainStore(net.chain_path)
        records = store.weights(46)
        on_chain = {
            v.signer.hotkey: [(r["uids"], r["weights"]) for r in records if r["hotkey"] == v.signer.hotkey]
            for v in (steady, killed)
        }
        params = store.params(46)
        query = "SELECT epoch_id, results, weights FROM epochs WHERE status='done'"
        done_rows = [{e: (res, w) for e, res, w in db_rows(net.validator_dir(v) / "state.db", query)} for v in (steady, killed)]
        for (epoch,) in common:  # each epoch counted once by each: the same scores, EMA and weights after it
            a, b = (json.loads(r[epoch][0]) for r in done_rows)
            wa, wb = (json.loads(r[epoch][1]) for r in done_rows)
            assert [(m["uid"], m["score"], m["ema"]) for m in a] == [(m["uid"], m["score"], m["ema"]) for m in b]
            assert wa == wb
            if wa["uids"] and epoch in set_by_both:  # and both put that vector on the chain, as u16 through the node
                for v in (steady, killed):
                    assert conform(wa["uids"], wa["weights"], params, v.uid) in on_chain[v.signer.hotkey]
        assert "resuming an unfinished validation" in killed.process.log_tail(400)
        assert "setting weights with the direct extrinsic instead" in steady.process.log_tail(2000)
    finally:
        net.stop()
