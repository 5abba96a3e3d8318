"""A validator killed (SIGKILL) in the middle of an epoch and restarted sets the same weights as one that
was not, with no epoch counted twice."""

from __future__ import annotations

import json
import signal
import sqlite3

from resi.chain.local import SimulatedChainStore
from resi.localnet.network import LocalNetwork, NetworkConfig
from tests.e2e import wait_for


def _rows(path, query):
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute(query).fetchall()
        except sqlite3.OperationalError:
            return []


def test_killed_validator_sets_the_same_weights(tmp_path, local_s3):
    net = LocalNetwork(NetworkConfig(run_dir=tmp_path, epoch_minutes=0.5, listings_scale=0.02, block_seconds=1),
                       s3=local_s3)
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
        in_progress = wait_for(lambda: _rows(state, "SELECT epoch_id FROM epochs WHERE status='processing'"),
                               180, interval=0.05, what="the validator to begin an epoch")
        killed.process.signal(signal.SIGKILL)
        killed.process.proc.wait(10)
        epoch_id = in_progress[0][0]
        with sqlite3.connect(state) as db:
            assert db.execute("SELECT status FROM epochs WHERE epoch_id=?", (epoch_id,)).fetchall() == [("processing",)]
        net.start_validator(killed, *slow)

        def both_done(n: int):
            done = [_rows(net.validator_dir(v) / "state.db",
                          "SELECT epoch_id FROM epochs WHERE status='done' AND weights_set=1 ORDER BY epoch_id")
                    for v in (steady, killed)]
            return len(done[0]) >= n and len(done[1]) >= n and done

        done = wait_for(lambda: both_done(2), 240, interval=1, what="two epochs validated by both")
        common = sorted(set(done[0]) & set(done[1]))
        assert (epoch_id,) in common
        records = SimulatedChainStore(net.chain_path).weights(46)
        on_chain = {v.signer.hotkey: [(r["uids"], r["weights"]) for r in records if r["hotkey"] == v.signer.hotkey]
                    for v in (steady, killed)}
        query = "SELECT epoch_id, results, weights FROM epochs WHERE status='done'"
        done_rows = [{e: (res, w) for e, res, w in _rows(net.validator_dir(v) / "state.db", query)}
                     for v in (steady, killed)]
        for (epoch,) in common:  # each epoch counted once by each: the same scores, EMA and weights after it
            a, b = (json.loads(r[epoch][0]) for r in done_rows)
            wa, wb = (json.loads(r[epoch][1]) for r in done_rows)
            assert [(m["uid"], m["score"], m["ema"]) for m in a] == [(m["uid"], m["score"], m["ema"]) for m in b]
            assert wa == wb
            if wa["uids"]:  # and both put that vector on the chain
                assert all((wa["uids"], wa["weights"]) in vectors for vectors in on_chain.values())
        assert "resuming an unfinished validation" in killed.process.log_tail(400)
    finally:
        net.stop()
