"""Progress, and what happens when there is none: the loop beats a :class:`Heartbeat` whenever it gets
somewhere (an iteration, a zipcode, a miner judged); ``/healthz`` turns 503 once it has been idle longer than
``stall_seconds``, and the :class:`Watchdog` thread ends the process with :data:`STALLED_EXIT` once it has
been idle ``exit_seconds``, so that pm2 (or systemd) starts it again. It runs in a thread: a loop blocked in
its own thread cannot hide its stall."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from loguru import logger

STALLED_EXIT = 3
"""Exit code of a neuron the watchdog ended (pm2 restarts it)."""


class Heartbeat:
    """When the loop last made progress, and what it was (monotonic seconds; safe across threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.last = clock()
        self.what = "started"

    def beat(self, what: str = "progress") -> None:
        self.last = self._clock()
        self.what = what

    def idle(self) -> float:
        """Seconds since the last progress."""
        return self._clock() - self.last


class Watchdog:
    def __init__(
        self,
        heartbeat: Heartbeat,
        stall_seconds: float,
        exit_seconds: float,
        on_stall: Callable[[int], None] = os._exit,
        interval: float = 1.0,
    ):
        """``exit_seconds`` 0: never end the process (``/healthz`` still reports the stall)."""
        self.heartbeat = heartbeat
        self.stall_seconds = stall_seconds
        self.exit_seconds = exit_seconds
        self.on_stall = on_stall
        self.interval = interval
        self._thread: threading.Thread | None = None

    def health(self) -> tuple[bool, dict]:
        idle = self.heartbeat.idle()
        ok = idle <= self.stall_seconds
        return ok, {
            "status": "ok" if ok else "stalled",
            "idle_seconds": round(idle, 1),
            "stall_seconds": self.stall_seconds,
            "last_progress": self.heartbeat.what,
        }

    def start(self) -> Watchdog:
        if self.exit_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            idle = self.heartbeat.idle()
            if idle > self.exit_seconds:
                logger.error(
                    f"watchdog: no progress for {idle:.0f} s (limit {self.exit_seconds:g} s, last: "
                    f"{self.heartbeat.what}); exiting with code {STALLED_EXIT} so that pm2 restarts it"
                )
                sys.stderr.flush()
                self.on_stall(STALLED_EXIT)
                return
