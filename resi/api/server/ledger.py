"""Seen commitments (replays) and rate-limit counts: kept in memory, every change appended to a log first.

The per-request path does no database work: a dict lookup, a deque, and one ``os.write`` of a JSON line to an
append-only segment file. A ``write`` is in the kernel's hands when it returns, so a ``kill -9`` right after an
answer went out loses nothing: on start the segments are read back and every commitment used, and every request
counted, within the windows that matter is known again. (A power cut could lose the last lines the kernel had
not written to disk yet; the server does not fsync per request.) A line cut short by the kill is skipped.

Segments are started every ``keep`` seconds and deleted once nothing in them can matter (two ``keep`` later);
one server process owns a state folder (a lock file says so).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections import deque
from pathlib import Path


class LedgerError(OSError):
    """The ledger cannot be written (a full disk): the request is refused, nothing is counted."""


class Ledger:
    def __init__(self, folder: Path, keep: float):
        self.folder = folder
        self.keep = keep
        """Seconds an entry can matter: the longest rate-limit window or replay horizon."""
        self._seen: dict[tuple[str, str], float] = {}
        self._events: dict[str, deque[float]] = {}
        self._fd: int | None = None
        self._lock: int | None = None
        self._segment_start = 0.0
        self._calls = 0

    # --- start and segments -----------------------------------------------------------------------------------

    def open(self, now: float) -> None:
        """Take the folder, read back what can still matter, start a new segment."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.folder / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another server uses {self.folder}: one server per --state-dir") from None
        for path in sorted(self.folder.glob("*.log"), key=self._start_of):
            if self._start_of(path) >= now - 2 * self.keep:  # older ones: deleted by the rotation below
                for line in path.read_bytes().splitlines():
                    self._replay(line, now)
        self._rotate(now)

    @staticmethod
    def _start_of(path: Path) -> float:
        try:
            return float(path.stem)
        except ValueError:
            return 0.0

    def _replay(self, line: bytes, now: float) -> None:
        try:
            kind, at, a, b = json.loads(line)
            at = float(at)
        except (ValueError, TypeError):
            return  # cut short by a kill, or not ours
        if at <= now - self.keep:
            return
        if kind == "s":
            self._seen[(a, b)] = at
        elif kind == "r":
            self._events.setdefault(a, deque()).append(at)

    def _rotate(self, now: float) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._segment_start = now
        self._fd = os.open(self.folder / f"{now:.6f}.log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        for path in self.folder.glob("*.log"):
            if self._start_of(path) < now - 2 * self.keep:
                path.unlink(missing_ok=True)

    def _append(self, entry: list, now: float) -> None:
        if now - self._segment_start >= self.keep:
            self._rotate(now)
        if self._fd is None:
            raise LedgerError(errno.EBADF, "ledger closed")
        try:
            os.write(self._fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        except OSError as exc:
            raise LedgerError(exc.errno, f"ledger not writable: {exc.strerror}") from None

    def close(self) -> None:
        for fd in (self._fd, self._lock):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock = None

    # --- the two questions ------------------------------------------------------------------------------------

    def first_use(self, hotkey: str, commitment: str, now: float, keep: float) -> bool:
        """Record a signed commitment; False if it was already used within ``keep`` seconds (a replay)."""
        self._tidy(now)
        seen = self._seen.get((hotkey, commitment))
        if seen is not None and seen > now - keep:
            return False
        self._append(["s", now, hotkey, commitment], now)
        self._seen[(hotkey, commitment)] = now
        return True

    def charge(self, key: str, limit: int, window: float, now: float) -> tuple[bool, int, float]:
        """Count one request against ``key`` if fewer than ``limit`` were counted in the ``window`` seconds
        before ``now`` (a sliding window): (allowed, remaining, when the oldest counted one leaves it)."""
        times = self._events.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        allowed = len(times) < limit
        if allowed:
            self._append(["r", now, key, None], now)
            times.append(now)
        return allowed, max(0, limit - len(times)), (times[0] if times else now) + window

    def prune(self, now: float, longest_window: float) -> int:
        """Forget counts no window can see any more; how many."""
        dropped = 0
        for key in list(self._events):
            times = self._events[key]
            while times and times[0] <= now - longest_window:
                times.popleft()
                dropped += 1
            if not times:
                del self._events[key]
        return dropped

    def _tidy(self, now: float) -> None:
        self._calls += 1
        if self._calls % 4096 == 0:
            self._seen = {k: at for k, at in self._seen.items() if at > now - self.keep}
