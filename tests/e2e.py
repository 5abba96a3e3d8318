"""Helpers for end-to-end tests on a LocalNetwork."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from resi import constants as c
from resi.epochs import epoch_at, utcnow
from resi.storage.presigner import S3Presigner


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def db_rows(path: Path, query: str, params: tuple = ()) -> list[tuple]:
    """``query`` on a process's SQLite file; [] while the file or its tables do not exist yet (a process that
    is starting creates them when it gets there: wait on that, not on time)."""
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute(query, params).fetchall()
        except sqlite3.OperationalError:
            return []


def statuses(run_dir: Path, hotkey: str | None = None) -> list[dict]:
    """Every status the API server stored (oldest first)."""
    rows = db_rows(
        run_dir / "api" / "state.db",
        "SELECT epoch_id, hotkey, status, listings_scraped, s3_upload_complete, body, received_at FROM statuses ORDER BY id",
    )
    out = [
        {
            "epoch_id": r[0],
            "hotkey": r[1],
            "status": r[2],
            "listings": r[3],
            "uploaded": bool(r[4]),
            "body": json.loads(r[5]),
            "at": r[6],
        }
        for r in rows
    ]
    return [s for s in out if hotkey is None or s["hotkey"] == hotkey]


def final_status(run_dir: Path, hotkey: str, epoch_id: str | None = None) -> dict | None:
    for s in reversed(statuses(run_dir, hotkey)):
        if s["status"] != c.STATUS_IN_PROGRESS and (epoch_id is None or s["epoch_id"] == epoch_id):
            return s
    return None


def wait_epoch_with(epoch_minutes: float, min_remaining: float) -> None:
    """Sleep until the current epoch has at least ``min_remaining`` seconds left."""
    length = timedelta(minutes=epoch_minutes)
    epoch = epoch_at(utcnow(), length)
    left = (epoch.end - utcnow()).total_seconds()
    if left < min_remaining:
        time.sleep(left + 0.5)


def read_upload(s3, hotkey: str, epoch_id: str, bucket: str = "resi-sn46-data") -> tuple[bytes, bytes, dict]:
    """The two uploaded objects of a miner's epoch and their listing info (straight from S3)."""
    import urllib.request

    presigner = S3Presigner(s3.settings)
    prefix = c.miner_epoch_prefix(hotkey, epoch_id)
    files = {}
    for name in (c.LISTINGS_FILE, c.METADATA_FILE):
        with urllib.request.urlopen(presigner.get_url(bucket, prefix + name, 60)) as resp:
            files[name] = (resp.read(), resp.headers["Last-Modified"])
    return files[c.LISTINGS_FILE][0], files[c.METADATA_FILE][0], {k: v[1] for k, v in files.items()}
