"""What many tests share: the project's root folder and Python, a clock the test moves, whether a process is
alive, a closed port, and running a coroutine from a plain test."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from resi.epochs import UTC

ROOT = Path(__file__).resolve().parent.parent
"""The project's root folder (where ``neurons/``, ``docs/`` and ``pyproject.toml`` are)."""
PYTHON = sys.executable


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


def run(coro):
    """Run a coroutine in a fresh event loop (tests stay plain functions)."""
    return asyncio.run(coro)


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
