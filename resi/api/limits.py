"""Per-hotkey, per-endpoint rate limits: the server enforces them, the client paces itself under them.

The documented limits come from the spec; the others (validator read access, miner-specific access,
past-epoch look-ups) are this project's, sized for a validator that visits 256 miners every epoch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window: float
    """Seconds."""


# Endpoint keys, used by both sides.
ASSIGNMENT = "assignment"
STATUS = "status"
FOLDER_ACCESS = "folder_access"
VALIDATOR_UPLOAD = "validator_upload"
VALIDATOR_ACCESS = "validator_access"
MINER_ACCESS = "miner_access"
EPOCH_ASSIGNMENT = "epoch_assignment"
STATS = "stats"

DEFAULT_LIMITS: dict[str, RateLimit] = {
    ASSIGNMENT: RateLimit(10, 60),  # spec: 10 per minute per hotkey
    STATUS: RateLimit(5, 60),  # spec: 5 per minute per hotkey
    FOLDER_ACCESS: RateLimit(10, 60),  # spec: 10 per minute per hotkey
    VALIDATOR_UPLOAD: RateLimit(5, 3600),  # spec: 5 per hour per validator
    STATS: RateLimit(30, 60),  # spec: 30 per minute (public: keyed by client address)
    VALIDATOR_ACCESS: RateLimit(10, 60),
    MINER_ACCESS: RateLimit(600, 60),
    EPOCH_ASSIGNMENT: RateLimit(30, 60),
}


def parse_limits(text: str) -> dict[str, RateLimit]:
    """``status=5/60,assignment=10/60`` -> overrides of :data:`DEFAULT_LIMITS` (for local networks and tests)."""
    out: dict[str, RateLimit] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            name, spec = item.split("=", 1)
            limit, window = spec.split("/", 1)
            if name not in DEFAULT_LIMITS:
                raise ValueError(f"unknown endpoint {name!r} (one of {', '.join(DEFAULT_LIMITS)})")
            out[name] = RateLimit(int(limit), float(window))
        except ValueError as exc:
            raise ValueError(f"bad rate limit {item!r}: {exc}") from None
    return out


class WaitTooLong(Exception):
    """The next call is allowed only after longer than the caller is willing to wait."""

    def __init__(self, seconds: float):
        super().__init__(f"{seconds:.0f} s")
        self.seconds = seconds


class Pacer:
    """Client side: waits before a call so that no ``window`` holds more than ``limit`` calls.

    A sliding window is stricter than the server's fixed windows, so a paced client never sees a 429
    from its own traffic (another process on the same hotkey can still cause one).
    """

    def __init__(
        self,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._calls: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, key: str, max_wait: float | None = None) -> None:
        """Wait until a call to ``key`` is within its limit; :class:`WaitTooLong` at once if that would take
        longer than ``max_wait`` seconds."""
        limit = self.limits.get(key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            while True:
                now = self._clock()
                wait = self._blocked_until.get(key, 0.0) - now
                if limit is not None:
                    calls = self._calls.setdefault(key, deque())
                    while calls and calls[0] <= now - limit.window:
                        calls.popleft()
                    if len(calls) >= limit.limit:
                        wait = max(wait, calls[0] + limit.window - now)
                if wait <= 0:
                    break
                if max_wait is not None and wait > max_wait:
                    raise WaitTooLong(wait)
                await self._sleep(wait + 0.01)
            if limit is not None:
                self._calls[key].append(self._clock())

    def block_for(self, key: str, seconds: float) -> None:
        """The server said the window is used up: hold calls to ``key`` for ``seconds``."""
        self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), self._clock() + max(0.0, seconds))
