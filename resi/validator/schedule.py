"""What a validator does next, as a pure function of the time: which ended epochs to skip (and why), which to
validate, or how long to wait. The loop asks it on every step with its clock's time; tests run it over many
epochs of a fake clock in milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from resi.epochs import epoch_id

MAX_LOOKBACK = 64
"""Ended epochs looked at, at most (the lag normally allows one or two)."""

BEFORE_FIRST_RUN = "ended before this validator first ran"
TOO_OLD = "too old when the validator got to it"


@dataclass(frozen=True)
class Plan:
    skip: list[tuple[str, str]] = field(default_factory=list)
    """(epoch id, why) of ended epochs never to validate: ``BEFORE_FIRST_RUN`` or ``TOO_OLD``."""
    validate: str | None = None
    """The epoch to validate now (the oldest due), if any."""
    wait: float = 0.0
    """Seconds until something is due, when there is nothing to validate now."""


def plan(
    now: datetime,
    current_start: datetime,
    current_end: datetime,
    grace: float,
    lag: float | None,
    first_run: float,
    finished: Callable[[str], bool],
    begun: Callable[[str], bool],
) -> Plan:
    """The next step at ``now`` for epochs of ``current_end - current_start`` (the current epoch's bounds, as the
    API says them). An ended epoch is due ``grace`` seconds after its end and may be validated until ``lag``
    seconds after it (default: one epoch length; one already begun is always finished). ``first_run``: when this
    validator first ran (Unix time). ``finished``/``begun``: what its state says of an epoch id."""
    length = current_end - current_start
    lag_seconds = lag or length.total_seconds()
    skip: list[tuple[str, str]] = []
    ends: list[datetime] = []  # every epoch that ended within the lag (and the one just past it), oldest first
    end = current_start
    while (now - end).total_seconds() <= lag_seconds + length.total_seconds() and len(ends) < MAX_LOOKBACK:
        ends.insert(0, end)
        end -= length
    for end in ends:
        ended = epoch_id(end - length)
        if finished(ended):
            continue
        if now < end + timedelta(seconds=grace):
            return Plan(skip, None, (end + timedelta(seconds=grace) - now).total_seconds())
        if (now - end).total_seconds() > lag_seconds and not begun(ended):
            skip.append((ended, BEFORE_FIRST_RUN if end.timestamp() <= first_run else TOO_OLD))
            continue
        return Plan(skip, ended, 0.0)
    return Plan(skip, None, (current_end + timedelta(seconds=grace) - now).total_seconds())
