"""The miner as a real process against the reference server, SeaweedFS and the local listing site."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from email.utils import parsedate_to_datetime

import pytest

from resi.epochs import parse_iso
from resi.listings.files import read_listings, read_metadata, sha256_hex
from resi.localnet.network import LocalNetwork, NetworkConfig
from resi.localnet.world import ListingWorld, WorldConfig
from tests.e2e import db_rows, final_status, read_upload, wait_epoch_with, wait_for

pytestmark = pytest.mark.slow

EPOCH_MINUTES = 1.0


@pytest.fixture(scope="module")
def net(tmp_path_factory, local_s3):
    network = LocalNetwork(
        NetworkConfig(
            run_dir=tmp_path_factory.mktemp("minernet"), epoch_minutes=EPOCH_MINUTES, listings_scale=0.02, block_seconds=1
        ),
        s3=local_s3,
    )
    network.start_infrastructure()
    network.participants_for_test = {name: network.register(name) for name in ("honest", "killed", "stopped")}
    network.start_api()
    yield network
    network.stop()


def world(net: LocalNetwork) -> ListingWorld:
    c = net.config
    return ListingWorld(WorldConfig(seed=c.seed, scale=c.listings_scale, churn=c.churn))


def test_miner_completes_an_epoch(net):
    wait_epoch_with(EPOCH_MINUTES, min_remaining=35)
    miner = net.start_miner(net.participants_for_test["honest"])
    status = wait_for(lambda: final_status(net.run_dir, miner.signer.hotkey), 120, what="a final status")
    assert status["status"] == "COMPLETED" and status["uploaded"], status
    epoch_id = status["epoch_id"]
    parquet, meta_bytes, modified = read_upload(net.s3, miner.signer.hotkey, epoch_id)
    meta = read_metadata(meta_bytes)
    table = read_listings(parquet)
    rows = table.to_pylist()
    assert meta.parquet_sha256 == sha256_hex(parquet) and meta.row_count == len(rows) == status["listings"]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["zipcode"]] = counts.get(row["zipcode"], 0) + 1
    assert meta.zipcode_counts == counts and meta.hotkey == miner.signer.hotkey and meta.epoch_id == epoch_id
    assignment = json.loads(
        sqlite3.connect(net.run_dir / "api" / "state.db")
        .execute("SELECT assignment FROM epochs WHERE epoch_id=?", (epoch_id,))
        .fetchone()[0]
    )
    assert meta.nonce == assignment["nonce"]
    assigned = {z["zipcode"] for z in assignment["zipcodes"]}
    assert set(counts) == assigned  # every zipcode delivered, nothing else
    w = world(net)
    for row in rows:  # every row is a listing the site has
        home = w.home(row["listing_id"], parse_iso(row["scraped_timestamp"]).timestamp())
        assert home is not None and home.static.zipcode == row["zipcode"]
    assert len({r["listing_id"] for r in rows}) == len(rows)
    deadline = parse_iso(assignment["submissionDeadline"])
    assert all(parsedate_to_datetime(v) <= deadline for v in modified.values())
    assert status["body"]["zipcodesCompleted"] and status["body"]["s3UploadComplete"] is True


def test_sigkill_mid_epoch_resumes_without_fetching_finished_zipcodes_again(net):
    participant = net.participants_for_test["killed"]
    checkpoint = net.run_dir / "miners" / participant.name / "checkpoint.db"
    wait_epoch_with(EPOCH_MINUTES, min_remaining=45)
    net.start_miner(participant, "--miner.concurrency", "1", "--source.max_rps", "3")

    def finished() -> list[str]:
        return [r[0] for r in db_rows(checkpoint, "SELECT zipcode FROM zipcodes")]

    done_before = wait_for(lambda: len(finished()) >= 2 and finished(), 60, interval=0.05, what="two zipcodes done")
    participant.process.signal(signal.SIGKILL)
    participant.process.proc.wait(10)
    done_before = finished()
    with sqlite3.connect(checkpoint) as db:
        epoch_id, reported = db.execute("SELECT epoch_id, reported FROM epochs").fetchone()
    assert reported is None  # killed mid-epoch
    restarted_at = time.time()
    net.start_miner(participant)
    status = wait_for(lambda: final_status(net.run_dir, participant.signer.hotkey, epoch_id), 90, what="completion")
    assert status["status"] == "COMPLETED", status
    parquet, _, _ = read_upload(net.s3, participant.signer.hotkey, epoch_id)
    ids = read_listings(parquet)["listing_id"].to_pylist()
    assert len(ids) == len(set(ids))  # no duplicate rows
    log = [json.loads(line) for line in (net.run_dir / "site-requests.jsonl").read_text().splitlines()]
    refetched = [
        e
        for e in log
        if e.get("op") in ("GetHomeSearch", "Search_suggestions") and e["t"] >= restarted_at and e.get("zipcode") in done_before
    ]
    assert done_before and not refetched, refetched
    after = {e.get("zipcode") for e in log if e.get("op") == "GetHomeSearch" and e["t"] >= restarted_at}
    assert after and not after & set(done_before)  # the restart fetched only what was left


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_stops_cleanly_and_keeps_the_checkpoint(net, sig):
    participant = net.participants_for_test["stopped"]
    checkpoint = net.run_dir / "miners" / participant.name / "checkpoint.db"
    wait_epoch_with(EPOCH_MINUTES, min_remaining=40)
    net.start_miner(participant, "--miner.concurrency", "1", "--source.max_rps", "2", "--miner.shutdown_grace", "10")

    def finished() -> int:
        return len(db_rows(checkpoint, "SELECT zipcode FROM zipcodes"))

    wait_for(lambda: finished() >= 1, 60, interval=0.05, what="a finished zipcode")
    started = time.monotonic()
    participant.process.signal(sig)
    code = participant.process.proc.wait(30)
    elapsed = time.monotonic() - started
    assert code == 0 and elapsed < 15  # well within a pm2 kill_timeout of 30 s
    assert finished() >= 1
    assert "stopping: finishing the work in flight" in participant.process.log_tail(200)
