"""SQLite connections for the neurons' local state (checkpoint, validator state): autocommit, WAL, schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def connect(path: Path, schema: str, readonly: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder) in WAL mode, with ``schema`` applied (idempotent).
    ``readonly``: for readers beside the process that owns the file (status, status pages): nothing is created
    or written; a file that does not exist yet, or tables not made yet, are ``sqlite3.OperationalError``."""
    if readonly:
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30, isolation_level=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn


def written(record: T | None, what: str, path: Path) -> T:
    """A record this process has just written, read back: a database that lost it is this machine's fault, not
    any input's (``sqlite3.DatabaseError``)."""
    if record is None:
        raise sqlite3.DatabaseError(f"{what} was written to {path} and is not there")
    return record
