"""Epoch arithmetic and the wire's timestamp formats.

Epochs are aligned to multiples of their length since the Unix epoch, so 4-hour epochs start at
00, 04, ... 20 UTC and a local network's 3-minute epochs start at :00, :03, ... Every party computes
the same ids from the same clock without talking to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from resi.constants import EPOCH_ID_FORMAT, EPOCH_LENGTH

UTC = timezone.utc


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Epoch:
    """One epoch: ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        return epoch_id(self.start)


def epoch_at(moment: datetime, length: timedelta = EPOCH_LENGTH) -> Epoch:
    """The epoch that contains ``moment``."""
    seconds = int(length.total_seconds())
    if seconds <= 0:
        raise ValueError("epoch length must be positive")
    ts = int(moment.timestamp())
    start = datetime.fromtimestamp(ts - ts % seconds, UTC)
    return Epoch(start, start + length)


def epoch_from_id(value: str, length: timedelta = EPOCH_LENGTH) -> Epoch:
    """The epoch named by an id like ``2025-10-01T16-00-00``; ValueError if it is not one."""
    start = datetime.strptime(value, EPOCH_ID_FORMAT).replace(tzinfo=UTC)
    if epoch_at(start, length).start != start:
        raise ValueError(f"{value!r} is not the start of an epoch of {length}")
    return Epoch(start, start + length)


def epoch_id(start: datetime) -> str:
    return start.astimezone(UTC).strftime(EPOCH_ID_FORMAT)


def iso_z(moment: datetime) -> str:
    """``2025-10-01T16:00:00.000Z``: the spec's timestamp format."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive means UTC). ValueError if it is not one."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
