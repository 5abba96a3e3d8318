"""The miner's checkpoint: what it was assigned and every finished zipcode's rows, in SQLite.

A zipcode's rows are committed in one transaction the moment the zipcode finishes, so a miner killed at
any instant restarts with every finished zipcode intact and fetches none of them again. Rows are stored as
parquet (a few KB per zipcode).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from resi.api.models import Assignment
from resi.listings.schema import READ_SCHEMA
from resi.sqlite import connect, written

_SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    epoch_id TEXT PRIMARY KEY, assignment TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL, uploaded_at REAL, reported TEXT
);
CREATE TABLE IF NOT EXISTS zipcodes (
    epoch_id TEXT NOT NULL, zipcode TEXT NOT NULL, rows BLOB NOT NULL, row_count INTEGER NOT NULL,
    drops TEXT NOT NULL, finished_at REAL NOT NULL, PRIMARY KEY (epoch_id, zipcode)
);
CREATE TABLE IF NOT EXISTS uploads (epoch_id TEXT PRIMARY KEY, verified INTEGER NOT NULL);
"""

SCRAPING, UPLOADED = "scraping", "uploaded"


@dataclass(frozen=True)
class EpochRecord:
    assignment: Assignment
    state: str
    created_at: float
    uploaded_at: float | None
    reported: str | None
    """The final status the API accepted for this epoch (None until one was)."""


class Checkpoint:
    def __init__(self, path: Path, readonly: bool = False):
        """``readonly``: a reader beside the miner (status): writes fail, nothing is created."""
        self.readonly = readonly
        self.path = path

    def _db(self) -> sqlite3.Connection:
        return connect(self.path, _SCHEMA, self.readonly)

    def start_epoch(self, assignment: Assignment) -> EpochRecord:
        """Record an assignment (the first record of an epoch wins; a restart gets it back)."""
        with closing(self._db()) as db:
            db.execute(
                "INSERT OR IGNORE INTO epochs (epoch_id, assignment, state, created_at) VALUES (?, ?, ?, ?)",
                (assignment.epoch_id, assignment.model_dump_json(by_alias=True), SCRAPING, time.time()),
            )
        return self.known(assignment.epoch_id)

    def known(self, epoch_id: str) -> EpochRecord:
        """An epoch this checkpoint has recorded (:meth:`start_epoch`)."""
        return written(self.epoch(epoch_id), f"epoch {epoch_id}", self.path)

    def epoch(self, epoch_id: str) -> EpochRecord | None:
        with closing(self._db()) as db:
            row = db.execute(
                "SELECT assignment, state, created_at, uploaded_at, reported FROM epochs WHERE epoch_id=?", (epoch_id,)
            ).fetchone()
        if row is None:
            return None
        return EpochRecord(Assignment.model_validate_json(row[0]), row[1], row[2], row[3], row[4])

    def set_state(self, epoch_id: str, state: str) -> None:
        with closing(self._db()) as db:
            db.execute(
                "UPDATE epochs SET state=?, uploaded_at=CASE WHEN ?='uploaded' THEN ? ELSE uploaded_at END WHERE epoch_id=?",
                (state, state, time.time(), epoch_id),
            )

    def set_uploaded(self, epoch_id: str, verified: bool) -> None:
        """Both files are uploaded (``verified``: and seen in the bucket's listing)."""
        self.set_state(epoch_id, UPLOADED)
        with closing(self._db()) as db:
            db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?)", (epoch_id, int(verified)))

    def recent(self, limit: int) -> list[dict]:
        """The newest ``limit`` epochs, newest first: what was assigned, done, uploaded and reported."""
        with closing(self._db()) as db:
            rows = db.execute(
                "SELECT e.epoch_id, e.assignment, e.state, e.created_at, e.uploaded_at, e.reported, u.verified,"
                " (SELECT COUNT(*) FROM zipcodes z WHERE z.epoch_id=e.epoch_id),"
                " (SELECT COALESCE(SUM(row_count), 0) FROM zipcodes z WHERE z.epoch_id=e.epoch_id)"
                " FROM epochs e LEFT JOIN uploads u ON u.epoch_id=e.epoch_id ORDER BY e.created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        out = []
        for epoch_id, assignment, state, created, uploaded, reported, verified, done, rows_kept in rows:
            zipcodes = Assignment.model_validate_json(assignment).zipcodes
            out.append(
                {
                    "epoch_id": epoch_id,
                    "state": state,
                    "started_at": created,
                    "zipcodes": len(zipcodes),
                    "zipcodes_done": done,
                    "rows": rows_kept,
                    "uploaded_at": uploaded,
                    "upload_verified": None if verified is None else bool(verified),
                    "reported": reported,
                }
            )
        return out

    def set_reported(self, epoch_id: str, status: str) -> None:
        with closing(self._db()) as db:
            db.execute("UPDATE epochs SET reported=? WHERE epoch_id=?", (status, epoch_id))

    def save_zipcode(self, epoch_id: str, zipcode: str, rows: pa.Table, drops: dict[str, int]) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(rows.cast(READ_SCHEMA), sink, compression="zstd")
        with closing(self._db()) as db:
            db.execute(
                "INSERT OR REPLACE INTO zipcodes VALUES (?, ?, ?, ?, ?, ?)",
                (epoch_id, zipcode, sink.getvalue().to_pybytes(), rows.num_rows, json.dumps(drops), time.time()),
            )

    def finished_zipcodes(self, epoch_id: str) -> dict[str, int]:
        """Zipcode -> rows kept, for every zipcode of ``epoch_id`` already finished."""
        with closing(self._db()) as db:
            return dict(db.execute("SELECT zipcode, row_count FROM zipcodes WHERE epoch_id=?", (epoch_id,)).fetchall())

    def completions(self, epoch_id: str) -> list[tuple[str, int, float]]:
        with closing(self._db()) as db:
            return db.execute(
                "SELECT zipcode, row_count, finished_at FROM zipcodes WHERE epoch_id=? ORDER BY zipcode", (epoch_id,)
            ).fetchall()

    def rows(self, epoch_id: str) -> pa.Table:
        """Every finished zipcode's rows of ``epoch_id``, in zipcode order."""
        with closing(self._db()) as db:
            blobs = db.execute("SELECT rows FROM zipcodes WHERE epoch_id=? ORDER BY zipcode", (epoch_id,)).fetchall()
        tables = [pq.read_table(pa.BufferReader(b[0])).cast(READ_SCHEMA) for b in blobs]
        return pa.concat_tables(tables) if tables else READ_SCHEMA.empty_table()

    def prune(self, older_than: float) -> list[str]:
        """Forget epochs recorded before ``older_than`` (unix time); their ids."""
        with closing(self._db()) as db:
            ids = [r[0] for r in db.execute("SELECT epoch_id FROM epochs WHERE created_at < ?", (older_than,))]
            for epoch_id in ids:
                db.execute("DELETE FROM zipcodes WHERE epoch_id=?", (epoch_id,))
                db.execute("DELETE FROM epochs WHERE epoch_id=?", (epoch_id,))
        return ids


def miner_epochs(path: Path, epochs: int) -> list[dict]:
    """A miner's newest ``epochs`` epochs from its checkpoint at ``path``, read beside the miner (read-only);
    none before the miner made the file and its tables."""
    if not path.exists():
        return []
    try:
        return Checkpoint(path, readonly=True).recent(epochs)
    except sqlite3.OperationalError:  # the miner has not made its tables yet
        return []
