"""Time as the loops see it: a clock they are given (the system's, or a test's), and a pause that a stop
ends early."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from resi.epochs import utcnow


class Clock(Protocol):
    def now(self) -> datetime:
        """The time now, timezone-aware UTC."""
        ...


class SystemClock:
    """This machine's clock."""

    def now(self) -> datetime:
        return utcnow()


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    if seconds > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
