"""ISO-8601 timestamps of a whole column read at once from their digits (numpy), exactly as Python reads them.

:func:`iso_micros` reads ``YYYY-MM-DD`` and ``YYYY-MM-DDTHH:MM:SS`` with an optional fraction of 3 or 6
digits and an optional ``Z`` or ``+00:00``: what ``datetime.fromisoformat`` reads on every supported Python
(naive means UTC, as in ``resi.epochs.parse_iso``). A value is *readable* when every digit is an ASCII digit,
every separator is in its place and the fields name a real moment (year from 1, month 1-12, a day of that
month, hour < 24, minute and second < 60). Whatever is not readable (other forms, other offsets, February 31)
is left to the caller to read with Python, value by value: the kernels never guess.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, to_numpy
from resi.epochs import parse_iso

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

_WIDTH = 32
"""The longest form read: ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``."""


def _forms() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per length of a form: the digits of its fraction (-1: no form has that length), and per position the
    lowest and highest byte allowed there (digits, separators, the suffix; anything past the end)."""
    fraction = np.full(_WIDTH + 1, -1)
    low, high = np.zeros((_WIDTH + 1, _WIDTH), np.uint8), np.full((_WIDTH + 1, _WIDTH), 255, np.uint8)
    for digits in (0, 3, 6):
        for tail in ("", "Z", "+00:00"):
            for form in (["YYYY-MM-DD"] if not digits and not tail else []) + [
                "YYYY-MM-DDTHH:MM:SS" + ("." + "f" * digits if digits else "") + tail
            ]:
                fraction[len(form)] = digits
                for at, symbol in enumerate(form):
                    low[len(form), at], high[len(form), at] = (48, 57) if symbol in "YMDHSf" else (ord(symbol),) * 2
    return fraction, low, high


_FRACTION, _LOW, _HIGH = _forms()
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso_micros(stamps: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since 1970-01-01 UTC, readable) of every value of a string column; the microseconds of
    a value that is not readable (or null) are 0."""
    stamps = contiguous(stamps)
    n = len(stamps)
    micros, readable = np.zeros(n, np.int64), np.zeros(n, bool)
    if n == 0 or stamps.null_count == n:
        return micros, readable
    buffers = stamps.buffers()
    offsets = np.frombuffer(buffers[1], np.int32)[stamps.offset : stamps.offset + n + 1].astype(np.int64)
    lengths = np.minimum(np.diff(offsets), _WIDTH)
    rows = np.flatnonzero((_FRACTION[lengths] >= 0) & (np.diff(offsets) <= _WIDTH) & to_numpy(pc.is_valid(stamps)))
    if len(rows) == 0:
        return micros, readable
    data = np.frombuffer(buffers[2], np.uint8)
    padded = np.concatenate([data, np.zeros(_WIDTH, np.uint8)])  # reads past the last value stay in bounds
    text = padded[offsets[rows][:, None] + np.arange(_WIDTH)]
    lengths = lengths[rows]
    ok = ((text >= _LOW[lengths]) & (text <= _HIGH[lengths])).all(axis=1)
    timed, fraction = lengths > 10, _FRACTION[lengths]

    def number(first: int, count: int) -> np.ndarray:
        value = np.zeros(len(rows), np.int64)
        for k in range(first, first + count):
            value = value * 10 + (text[:, k].astype(np.int64) - 48)
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2) * timed, number(14, 2) * timed, number(17, 2) * timed
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour < 24) & (minute < 60) & (second < 60)
    fractions = np.where(fraction == 3, number(20, 3) * 1000, np.where(fraction == 6, number(20, 6), 0))
    total = (days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000 + fractions
    micros[rows], readable[rows] = np.where(ok, total, 0), ok
    return micros, readable


def instants(stamps: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since 1970-01-01 UTC, known) of every value of a string column, whatever its legal
    spelling: the kernels read each distinct value once (a page's rows share their time), and Python
    (``resi.epochs.parse_iso``) the distinct values they leave. Unknown where neither reads it (or null)."""
    encoded = pc.dictionary_encode(contiguous(stamps))
    values = encoded.dictionary
    micros, known = iso_micros(values)
    for i in np.flatnonzero(~known):
        try:
            moment = parse_iso(values[int(i)].as_py())
        except (ValueError, OverflowError):
            continue
        micros[i] = (moment - _EPOCH) // _MICROSECOND
        known[i] = True
    at = to_numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64)  # null: -1, the appended "unknown"
    return np.append(micros, 0)[at], np.append(known, False)[at]
