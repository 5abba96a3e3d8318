"""Miner parts with plain data: the checkpoint and pruning."""

from __future__ import annotations

import time
from datetime import timedelta

import pyarrow as pa

from resi.api.models import Assignment
from resi.listings.schema import READ_SCHEMA
from resi.miner.checkpoint import UPLOADED, Checkpoint
from resi.miner.loop import Miner, MinerConfig, too_late
from tests.listings.rows import good_row

ASSIGNMENT = Assignment.model_validate(
    {
        "epochId": "2025-10-01T16-00-00",
        "epochStart": "2025-10-01T16:00:00.000Z",
        "epochEnd": "2025-10-01T20:00:00.000Z",
        "nonce": "n1",
        "targetListings": 100,
        "tolerancePercent": 10,
        "submissionDeadline": "2025-10-01T20:00:00.000Z",
        "zipcodes": [{"zipcode": "08540", "expectedListings": 50}, {"zipcode": "19103", "expectedListings": 50}],
    }
)


def test_checkpoint_keeps_assignment_and_rows(tmp_path):
    cp = Checkpoint(tmp_path / "c.db")
    first = cp.start_epoch(ASSIGNMENT)
    other = ASSIGNMENT.model_copy(update={"nonce": "changed"})
    assert cp.start_epoch(other).assignment.nonce == "n1" == first.assignment.nonce  # first record wins
    rows = pa.Table.from_pylist([good_row(listing_id=str(1000 + i)) for i in range(3)], schema=READ_SCHEMA)
    cp.save_zipcode(ASSIGNMENT.epoch_id, "08540", rows, {"missing_price": 2})
    reopened = Checkpoint(tmp_path / "c.db")
    assert reopened.finished_zipcodes(ASSIGNMENT.epoch_id) == {"08540": 3}
    assert reopened.rows(ASSIGNMENT.epoch_id).to_pylist() == rows.to_pylist()
    reopened.set_state(ASSIGNMENT.epoch_id, UPLOADED)
    reopened.set_reported(ASSIGNMENT.epoch_id, "COMPLETED")
    record = reopened.epoch(ASSIGNMENT.epoch_id)
    assert record.state == UPLOADED and record.uploaded_at and record.reported == "COMPLETED"


def test_prune_forgets_old_epochs_and_their_files(tmp_path):
    cp = Checkpoint(tmp_path / "c.db")
    cp.start_epoch(ASSIGNMENT)
    folder = tmp_path / "epochs" / ASSIGNMENT.epoch_id
    folder.mkdir(parents=True)
    (folder / "listings.parquet").write_bytes(b"x")
    miner = Miner("hk", None, None, cp, None, MinerConfig(data_dir=tmp_path, retention_days=1))
    miner.prune()
    assert cp.epoch(ASSIGNMENT.epoch_id) is not None and folder.exists()  # recent: kept
    miner = Miner("hk", None, None, cp, None, MinerConfig(data_dir=tmp_path, retention_days=-1 / 86_400))
    time.sleep(0.01)
    miner.prune()
    assert cp.epoch(ASSIGNMENT.epoch_id) is None and not folder.exists()


def test_a_miner_started_after_the_upload_time_says_when_the_next_epoch_starts():
    deadline = ASSIGNMENT.submission_deadline
    assert too_late(ASSIGNMENT, deadline - timedelta(minutes=16), 900) is None
    line = too_late(ASSIGNMENT, deadline - timedelta(minutes=14), 900)
    assert line == ("too late for epoch 2025-10-01T16-00-00: its upload time 19:45 UTC has passed; next epoch at 20:00 UTC")


def test_the_checkpoint_tells_what_each_epoch_came_to(tmp_path):
    cp = Checkpoint(tmp_path / "c.db")
    cp.start_epoch(ASSIGNMENT)
    rows = pa.Table.from_pylist([good_row(listing_id=str(1000 + i)) for i in range(3)], schema=READ_SCHEMA)
    cp.save_zipcode(ASSIGNMENT.epoch_id, "08540", rows, {})
    [recent] = cp.recent(5)
    assert (recent["zipcodes"], recent["zipcodes_done"], recent["rows"], recent["upload_verified"]) == (2, 1, 3, None)
    cp.set_uploaded(ASSIGNMENT.epoch_id, verified=True)
    cp.set_reported(ASSIGNMENT.epoch_id, "TIMEOUT")
    [recent] = cp.recent(5)
    assert recent["upload_verified"] is True and recent["reported"] == "TIMEOUT" and recent["uploaded_at"]
