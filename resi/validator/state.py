"""The validator's durable state in SQLite: per epoch the inputs fixed at its start (seed block, block hash,
metagraph), the snapshot, every refetch answer, the results; the EMA per uid; what was set and uploaded.

The EMA and the epoch's "done" mark change in one transaction, so a crash can never count an epoch twice
or lose one; the stored inputs make a restarted validator reach the same scores as one that never stopped.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from resi.sqlite import connect, written

_SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    epoch_id TEXT PRIMARY KEY, status TEXT NOT NULL, block INTEGER, block_hash TEXT, metagraph TEXT,
    results TEXT, weights TEXT, weights_set INTEGER NOT NULL DEFAULT 0, results_uploaded INTEGER NOT NULL DEFAULT 0,
    detail TEXT, started_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS ema (uid INTEGER PRIMARY KEY, hotkey TEXT NOT NULL, value REAL NOT NULL, epoch_id TEXT);
CREATE TABLE IF NOT EXISTS snapshot_facts (epoch_id TEXT PRIMARY KEY, facts BLOB NOT NULL, counts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refetch (
    epoch_id TEXT NOT NULL, listing_id TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (epoch_id, listing_id)
);
CREATE TABLE IF NOT EXISTS attempts (epoch_id TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS weights_set_at (epoch_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS weights_sent (epoch_id TEXT PRIMARY KEY, block INTEGER, uids TEXT NOT NULL,
                                         weights TEXT NOT NULL);
"""

PROCESSING, DONE, SKIPPED = "processing", "done", "skipped"


class ValidatorState:
    """One connection, opened on first use (nothing happens in the constructor)."""

    def __init__(self, path: Path, readonly: bool = False):
        """``readonly``: a reader beside the validator (status, status page): writes fail, nothing is created."""
        self.readonly = readonly
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            self._conn = connect(self.path, _SCHEMA, self.readonly)
        yield self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- attempts ---------------------------------------------------------------------------------------------

    def start_attempt(self, epoch_id: str) -> int:
        """Count an attempt at ``epoch_id`` that has not ended cleanly yet; how many there are in a row. A
        validator that dies while validating (killed, out of memory) leaves the count up."""
        with self._db() as db:
            db.execute("INSERT INTO attempts VALUES (?, 1) ON CONFLICT(epoch_id) DO UPDATE SET count=count+1", (epoch_id,))
            return db.execute("SELECT count FROM attempts WHERE epoch_id=?", (epoch_id,)).fetchone()[0]

    def end_attempt(self, epoch_id: str) -> None:
        """The attempt ended cleanly (done, or stopped by an outage that was nobody's fault)."""
        with self._db() as db:
            db.execute("DELETE FROM attempts WHERE epoch_id=?", (epoch_id,))

    def first_run(self, now: float) -> float:
        """When this validator first ran with this state (``now`` on the first call, kept from then on)."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('first_run', ?)", (now,))
            return db.execute("SELECT value FROM meta WHERE key='first_run'").fetchone()[0]

    # --- epochs ---------------------------------------------------------------------------------------------------

    def epoch(self, epoch_id: str) -> dict | None:
        with self._db() as db:
            row = db.execute(
                "SELECT status, block, block_hash, metagraph, results, weights, weights_set, "
                "results_uploaded, detail, (SELECT at FROM weights_set_at w WHERE w.epoch_id=e.epoch_id)"
                " FROM epochs e WHERE epoch_id=?",
                (epoch_id,),
            ).fetchone()
            sent = db.execute("SELECT block, uids, weights FROM weights_sent WHERE epoch_id=?", (epoch_id,)).fetchone()
        if row is None:
            return None
        return {
            "epoch_id": epoch_id,
            "status": row[0],
            "block": row[1],
            "block_hash": row[2],
            "metagraph": json.loads(row[3]) if row[3] else None,
            "results": json.loads(row[4]) if row[4] else None,
            "weights": json.loads(row[5]) if row[5] else None,
            "weights_set": bool(row[6]),
            "results_uploaded": bool(row[7]),
            "detail": row[8],
            "weights_set_at": row[9],
            "on_chain": None if sent is None else {"block": sent[0], "uids": json.loads(sent[1]), "weights": json.loads(sent[2])},
        }

    def begin(self, epoch_id: str, block: int, block_hash: str, metagraph: list[tuple]) -> dict:
        """Fix the epoch's inputs (the first call wins: a restart reuses them). ``metagraph``: (uid, hotkey) or
        (uid, hotkey, holds a validator permit, registered after the epoch began) per neuron."""
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO epochs (epoch_id, status, block, block_hash, metagraph, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (epoch_id, PROCESSING, block, block_hash, json.dumps(metagraph), time.time()),
            )
        return written(self.epoch(epoch_id), f"epoch {epoch_id}", self.path)

    def skip(self, epoch_id: str, detail: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO epochs (epoch_id, status, detail, started_at, finished_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(epoch_id) DO UPDATE SET status=excluded.status, detail=excluded.detail,"
                " finished_at=excluded.finished_at WHERE epochs.status != 'done'",
                (epoch_id, SKIPPED, detail, time.time(), time.time()),
            )

    def finished(self, epoch_id: str) -> bool:
        record = self.epoch(epoch_id)
        return record is not None and record["status"] in (DONE, SKIPPED)

    def commit(
        self, epoch_id: str, results: list[dict], ema: dict[int, tuple[str, float]], weights: tuple[list[int], list[float]]
    ) -> bool:
        """Mark the epoch done and replace the EMA, atomically; False (and nothing changed) if already done."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                status = db.execute("SELECT status FROM epochs WHERE epoch_id=?", (epoch_id,)).fetchone()
                if status is not None and status[0] == DONE:
                    db.execute("ROLLBACK")
                    return False
                db.execute("DELETE FROM ema")
                db.executemany(
                    "INSERT INTO ema VALUES (?, ?, ?, ?)", [(uid, hk, value, epoch_id) for uid, (hk, value) in ema.items()]
                )
                db.execute(
                    "UPDATE epochs SET status=?, results=?, weights=?, finished_at=? WHERE epoch_id=?",
                    (DONE, json.dumps(results), json.dumps({"uids": weights[0], "weights": weights[1]}), time.time(), epoch_id),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return True

    def mark(
        self,
        epoch_id: str,
        *,
        weights_set: bool | None = None,
        results_uploaded: bool | None = None,
        sent: tuple[int | None, list[int], list[float]] | None = None,
        at: float | None = None,
    ) -> None:
        """``sent``: (block, uids, weights) of the vector that went on chain with ``weights_set``, ``at`` that
        moment (Unix time; now when None); the first one after the epoch's EMA is what its results file
        publishes."""
        with self._db() as db:
            if weights_set is not None:
                db.execute("UPDATE epochs SET weights_set=? WHERE epoch_id=?", (int(weights_set), epoch_id))
                if weights_set:
                    db.execute("INSERT OR IGNORE INTO weights_set_at VALUES (?, ?)", (epoch_id, at or time.time()))
                if weights_set and sent is not None:
                    db.execute(
                        "INSERT OR IGNORE INTO weights_sent VALUES (?, ?, ?, ?)",
                        (epoch_id, sent[0], json.dumps(sent[1]), json.dumps(sent[2])),
                    )
            if results_uploaded is not None:
                db.execute("UPDATE epochs SET results_uploaded=? WHERE epoch_id=?", (int(results_uploaded), epoch_id))

    def unfinished(self) -> list[str]:
        """Epochs begun but not counted (the validator stopped in the middle), oldest first."""
        with self._db() as db:
            return [r[0] for r in db.execute("SELECT epoch_id FROM epochs WHERE status=? ORDER BY started_at", (PROCESSING,))]

    def latest_done(self) -> dict | None:
        done = self.recent_done(1)
        return done[0] if done else None

    def recent_done(self, limit: int) -> list[dict]:
        """The newest ``limit`` counted epochs, newest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT epoch_id FROM epochs WHERE status=? ORDER BY finished_at DESC LIMIT ?", (DONE, limit)
            ).fetchall()
        return [epoch for (epoch_id,) in rows if (epoch := self.epoch(epoch_id)) is not None]

    def ema_epoch(self) -> str | None:
        """The epoch the EMA was last updated by."""
        with self._db() as db:
            row = db.execute("SELECT epoch_id FROM ema LIMIT 1").fetchone()
        return None if row is None else row[0]

    def ema(self) -> dict[int, tuple[str, float]]:
        with self._db() as db:
            return {uid: (hk, value) for uid, hk, value in db.execute("SELECT uid, hotkey, value FROM ema")}

    # --- snapshot and refetches ------------------------------------------------------------------------------------

    def save_snapshot(self, epoch_id: str, facts: dict[str, dict], counts: dict[str, int | None]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO snapshot_facts VALUES (?, ?, ?)",
                (epoch_id, zlib.compress(json.dumps(facts).encode()), json.dumps(counts)),
            )

    def snapshot(self, epoch_id: str) -> tuple[dict[str, dict], dict[str, int | None]] | None:
        with self._db() as db:
            row = db.execute("SELECT facts, counts FROM snapshot_facts WHERE epoch_id=?", (epoch_id,)).fetchone()
        if row is None:
            return None
        return json.loads(zlib.decompress(row[0])), json.loads(row[1])

    def refetched(self, epoch_id: str) -> dict[str, dict | str | None]:
        with self._db() as db:
            rows = db.execute("SELECT listing_id, outcome FROM refetch WHERE epoch_id=?", (epoch_id,)).fetchall()
        return {listing_id: json.loads(outcome) for listing_id, outcome in rows}

    def save_refetches(self, epoch_id: str, outcomes: dict[str, dict | str | None]) -> None:
        """The source's answers for these ids, in one transaction."""
        with self._db() as db:
            db.executemany(
                "INSERT OR REPLACE INTO refetch VALUES (?, ?, ?)",
                [(epoch_id, listing_id, json.dumps(outcome)) for listing_id, outcome in outcomes.items()],
            )

    def prune(self, keep_epochs: int = 50) -> None:
        """Drop snapshots and refetch answers of all but the newest ``keep_epochs`` epochs."""
        with self._db() as db:
            old = [
                r[0] for r in db.execute("SELECT epoch_id FROM epochs ORDER BY started_at DESC LIMIT -1 OFFSET ?", (keep_epochs,))
            ]
            for epoch_id in old:
                db.execute("DELETE FROM snapshot_facts WHERE epoch_id=?", (epoch_id,))
                db.execute("DELETE FROM refetch WHERE epoch_id=?", (epoch_id,))


def validator_epochs(path: Path, epochs: int) -> tuple[list[dict], dict[int, tuple[str, float]]]:
    """A validator's newest ``epochs`` counted epochs (newest first) and its EMA, from its state at ``path``,
    read beside the validator (read-only); nothing before the validator made the file and its tables."""
    if not path.exists():
        return [], {}
    state = ValidatorState(path, readonly=True)
    try:
        return state.recent_done(epochs), state.ema()
    except sqlite3.OperationalError:  # the validator has not made its tables yet
        return [], {}
    finally:
        state.close()
