"""SQLite connections for the neurons' local state (checkpoint, validator state): autocommit, WAL, schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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
