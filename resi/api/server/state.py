"""The reference server's durable state: epochs and their nonces and assignments and miner statuses in SQLite;
rate-limit windows and seen commitments in memory with an append-only log (``ledger.py``), out of the
per-request database path. A restart, even after ``kill -9``, keeps all of it.

One connection, used from the event loop: every statement is a short indexed read or write (well under a
millisecond in WAL mode), so there is nothing to gain from a thread pool.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from resi.api.server.ledger import Ledger
from resi.sqlite import written

_SCHEMA = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS epochs (
    epoch_id TEXT PRIMARY KEY, start_ts REAL NOT NULL, end_ts REAL NOT NULL, nonce TEXT NOT NULL,
    assignment TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assigned (
    epoch_id TEXT NOT NULL, zipcode TEXT NOT NULL, start_ts REAL NOT NULL, PRIMARY KEY (epoch_id, zipcode)
);
CREATE INDEX IF NOT EXISTS assigned_start ON assigned (start_ts);
CREATE TABLE IF NOT EXISTS statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, epoch_id TEXT NOT NULL, hotkey TEXT NOT NULL, status TEXT NOT NULL,
    listings_scraped INTEGER, s3_upload_complete INTEGER NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS statuses_epoch ON statuses (epoch_id, hotkey);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""


class StateStore:
    def __init__(self, path: Path, keep: float = 2 * 3600.0):
        """``keep``: seconds a rate-limit count or a seen commitment can matter (the longest window)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.executescript(_SCHEMA)
        self.ledger = Ledger(path.parent / f"{path.stem}-ledger", keep)
        self.ledger.open(time.time())
        self._epochs: dict[str, dict] = {}

    def close(self) -> None:
        self._db.close()
        self.ledger.close()

    def ping(self) -> None:
        """Raise unless the store can be written (a full disk fails here, not on the next client's request)."""
        self._db.execute("INSERT OR REPLACE INTO health VALUES (1, ?)", (time.time(),))

    # --- epochs ---------------------------------------------------------------------------------------------------

    def epoch(self, epoch_id: str) -> dict | None:
        """The stored epoch (read-only: an epoch never changes once stored, so it is kept in memory)."""
        cached = self._epochs.get(epoch_id)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT epoch_id, start_ts, end_ts, nonce, assignment FROM epochs WHERE epoch_id=?", (epoch_id,)
        ).fetchone()
        if row is None:
            return None
        record = {"epoch_id": row[0], "start_ts": row[1], "end_ts": row[2], "nonce": row[3], "assignment": json.loads(row[4])}
        if len(self._epochs) > 64:
            self._epochs.clear()
        self._epochs[epoch_id] = record
        return record

    def insert_epoch(self, epoch_id: str, start_ts: float, end_ts: float, nonce: str, assignment: dict) -> dict:
        """Store an epoch unless one with that id exists; return what is stored (first writer wins)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self.epoch(epoch_id) is None:
                self._db.execute(
                    "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                    (epoch_id, start_ts, end_ts, nonce, json.dumps(assignment), time.time()),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO assigned VALUES (?, ?, ?)",
                    [(epoch_id, z["zipcode"], start_ts) for z in assignment["zipcodes"]],
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return written(self.epoch(epoch_id), f"epoch {epoch_id}", self.path)

    def recently_assigned(self, since_ts: float, before_ts: float) -> set[str]:
        rows = self._db.execute(
            "SELECT zipcode FROM assigned WHERE start_ts >= ? AND start_ts < ?", (since_ts, before_ts)
        ).fetchall()
        return {r[0] for r in rows}

    def recent_epochs(self, limit: int = 10) -> list[dict]:
        rows = self._db.execute("SELECT epoch_id FROM epochs ORDER BY start_ts DESC LIMIT ?", (limit,)).fetchall()
        return [epoch for (epoch_id,) in rows if (epoch := self.epoch(epoch_id)) is not None]

    # --- miner statuses ----------------------------------------------------------------------------------------

    def add_status(self, epoch_id: str, hotkey: str, status: str, listings: int | None, uploaded: bool, body: dict) -> None:
        self._db.execute(
            "INSERT INTO statuses (epoch_id, hotkey, status, listings_scraped, s3_upload_complete, body, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (epoch_id, hotkey, status, listings, int(uploaded), json.dumps(body), time.time()),
        )

    # --- rate limits and replays ------------------------------------------------------------------------------------

    def charge(self, key: str, limit: int, window: float, now: float) -> tuple[bool, int, float]:
        return self.ledger.charge(key, limit, window, now)

    def prune(self, now: float, longest_window: float) -> int:
        return self.ledger.prune(now, longest_window)

    def first_use(self, hotkey: str, commitment: str, now: float, keep: float) -> bool:
        return self.ledger.first_use(hotkey, commitment, now, keep)
