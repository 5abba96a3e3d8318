"""ISO-8601 timestamps of a whole column read at once from their digits (numpy), exactly as Python reads them.

:func:`iso_micros` reads ``YYYY-MM-DD`` and ``YYYY-MM-DDTHH:MM:SS`` with an optional fraction of 3 or 6
digits and an optional ``Z`` or ``+00:00``: what ``datetime.fromisoformat`` reads on every supported Python
(naive means UTC, as in ``resi.epochs.parse_iso``). A value is *readable* when every digit is an ASCII digit,
every separator is in its place and the fields name a real moment (year from 1, month 1-12, a day of that
month, hour < 24, minute and second < 60). Whatever is not readable (other forms, other offsets, February 31)
is left to the caller to read with Python, value by value: the kernels never guess.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, to_numpy

_WIDTH = 32
"""The longest form read: ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``."""


def _forms() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Length -> (has a time, digits of the fraction, suffix length); -1 for lengths of no form."""
    time, fraction, suffix = np.full(_WIDTH + 1, -1), np.full(_WIDTH + 1, -1), np.full(_WIDTH + 1, -1)
    time[10], fraction[10], suffix[10] = 0, 0, 0
    for digits in (0, 3, 6):
        for tail in (0, 1, 6):
            length = 19 + (digits + 1 if digits else 0) + tail
            time[length], fraction[length], suffix[length] = 1, digits, tail
    return time, fraction, suffix


_TIME, _FRACTION, _SUFFIX = _forms()
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
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    buffers = stamps.buffers()
    offsets = np.frombuffer(buffers[1], np.int32)[stamps.offset:stamps.offset + n + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    lengths = np.minimum(np.diff(offsets), _WIDTH + 1)
    fraction = np.where(lengths <= _WIDTH, _FRACTION[np.minimum(lengths, _WIDTH)], -1)
    readable = (fraction >= 0) & to_numpy(pc.is_valid(stamps))
    padded = np.concatenate([data, np.zeros(_WIDTH, np.uint8)])  # reads past the last value stay in bounds
    text = padded[np.where(readable, offsets[:-1], 0)[:, None] + np.arange(_WIDTH)]
    lengths = np.where(readable, lengths, 10)
    timed, suffix = _TIME[lengths] == 1, _SUFFIX[lengths]
    fraction = np.where(readable, fraction, 0)
    digit = (text >= 48) & (text <= 57)

    def digits(first: int, count: int) -> np.ndarray:
        return digit[:, first:first + count].all(axis=1)

    def char(at: int | np.ndarray, symbol: str) -> np.ndarray:
        return text[np.arange(n), at] == ord(symbol)

    readable &= digits(0, 4) & digits(5, 2) & digits(8, 2) & char(4, "-") & char(7, "-")
    readable &= ~timed | (char(10, "T") & char(13, ":") & char(16, ":") & digits(11, 2) & digits(14, 2)
                          & digits(17, 2))
    readable &= (fraction == 0) | (char(19, ".") & digits(20, 3) & ((fraction == 3) | digits(23, 3)))
    last = lengths - 1
    readable &= (suffix != 1) | char(last, "Z")
    readable &= (suffix != 6) | (char(last - 5, "+") & char(last - 4, "0") & char(last - 3, "0")
                                 & char(last - 2, ":") & char(last - 1, "0") & char(last, "0"))

    def number(first: int, count: int) -> np.ndarray:
        value = np.zeros(n, np.int64)
        for k in range(first, first + count):
            value = value * 10 + (text[:, k].astype(np.int64) - 48) * digit[:, k]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2) * timed, number(14, 2) * timed, number(17, 2) * timed
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    readable &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    readable &= (hour < 24) & (minute < 60) & (second < 60)
    micros = np.where(fraction == 3, number(20, 3) * 1000, np.where(fraction == 6, number(20, 6), 0))
    total = ((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000
             + micros)
    return np.where(readable, total, 0), readable
