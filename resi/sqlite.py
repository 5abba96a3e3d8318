"""SQLite connections for the neurons' local state (checkpoint, validator state): autocommit, WAL, schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder) in WAL mode, with ``schema`` applied (idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn
