"""What many tests share: the project's root folder, a clock the test moves, and whether a process is alive."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from resi.epochs import UTC

ROOT = Path(__file__).resolve().parent.parent
"""The project's root folder (where ``neurons/``, ``docs/`` and ``pyproject.toml`` are)."""


class FakeClock:
    """A clock only the test moves. ``now()``: a UTC datetime (``resi.clock.Clock``, for the loops); called:
    Unix seconds (for the heartbeat, the watchdog and the simulated chain)."""

    def __init__(self, start: float = 1_000_000.0):
        self.t = start

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "Z" not in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
