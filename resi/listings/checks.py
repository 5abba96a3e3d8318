"""Plausibility of listing rows, vectorized over a table: the same rules for miners (before they upload)
and validators (when they count), so an honest miner never loses a row it believed valid.

``table_problems`` returns, per row, the first problem found (a short stable code) or null. Types are the
schema's business (files are type-checked against it before their rows are read); these rules are about
values: required fields present, numbers in range, vocabulary, formats (listing ids of the source's own
form), dates not after the scrape.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, to_numpy
from resi.listings.schema import COLUMNS, LISTING_SCHEMA, LISTING_STATUSES, PROPERTY_TYPES, READ_SCHEMA

LIMITS = {
    "price": (1_000.0, 200_000_000.0),
    "bedrooms": (0, 50),
    "bathrooms": (0.0, 50.0),
    "sqft": (100, 200_000),
    "days_on_market": (0, 20_000),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
}
_ZIPCODE = r"^[0-9]{5}$"
LISTING_ID = r"^[1-9][0-9]{3,19}$"
"""A listing id is a Realtor property id: digits, no leading zero (one spelling per listing), 4 to 20 of them.
Anything else cannot be fetched again to be proven, so it is not a listing row."""
_DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"


def _real(column, shaped, length: int) -> pa.Array:
    """Whether the first ``length`` characters (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``) are a moment that
    exists (no February 31, no second 60), on the rows where ``shaped`` says they have that shape; false
    elsewhere. The same as parsing and printing them again (``strptime``/``strftime``), read from the digits."""
    column = contiguous(column)
    rows = np.flatnonzero(to_numpy(pc.fill_null(shaped, False)))
    out = np.zeros(len(column), bool)
    if not len(rows):
        return pa.array(out)
    head = pc.utf8_slice_codeunits(column.take(pa.array(rows)), 0, length)
    offsets = np.frombuffer(head.buffers()[1], np.int32)[head.offset : head.offset + len(head) + 1]
    if not (np.diff(offsets) == length).all():
        raise ValueError("shaped rows must start with exactly `length` ASCII characters")
    data = np.frombuffer(head.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    d = data.reshape(-1, length).astype(np.int64) - ord("0")

    def number(*at: int) -> np.ndarray:
        value = np.zeros(len(d), np.int64)
        for i in at:
            value = value * 10 + d[:, i]
        return value

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    if length > 10:
        ok &= (number(11, 12) < 24) & (number(14, 15) < 60) & (number(17, 18) < 60)
    out[rows] = ok
    return pa.array(out)


def _malformed(values: pa.Array, pattern: str, length: int) -> pa.Array:
    """Whether each value is not of ``pattern`` naming a real moment in its first ``length`` characters."""
    shaped = pc.match_substring_regex(values, pattern)
    return pc.invert(pc.and_(shaped, _real(values, shaped, length)))


def _by_value(column, check) -> pa.Array:
    """``check`` of a string column, computed once per distinct value (a page's rows share a scrape time;
    listings share list dates)."""
    encoded = pc.dictionary_encode(contiguous(column))
    return pc.take(check(encoded.dictionary), encoded.indices)


MAX_TEXT = {"address": 512, "source_url": 2048}
"""Characters a text field may have (256 for the others): nothing real is longer."""


def _checks(t: pa.Table):
    """(reason, mask) pairs in the order they are reported."""
    for field in LISTING_SCHEMA:
        if not field.nullable:
            yield f"null:{field.name}", pc.is_null(t[field.name])
    for field in LISTING_SCHEMA:
        if pa.types.is_string(field.type):
            yield f"length:{field.name}", pc.greater(pc.utf8_length(t[field.name]), MAX_TEXT.get(field.name, 256))
    for name, (low, high) in LIMITS.items():
        col = t[name]
        outside = pc.or_(pc.less(col, low), pc.greater(col, high))
        if pa.types.is_floating(col.type):  # NaN compares false with everything: it is out of every range
            outside = pc.or_(outside, pc.is_nan(col))
        yield f"range:{name}", outside
    yield "format:zipcode", pc.invert(pc.match_substring_regex(t["zipcode"], _ZIPCODE))
    yield "vocabulary:property_type", pc.invert(pc.is_in(t["property_type"], pa.array(PROPERTY_TYPES)))
    yield "vocabulary:listing_status", pc.invert(pc.is_in(t["listing_status"], pa.array(LISTING_STATUSES)))
    url = t["source_url"]
    yield "format:source_url", pc.invert(pc.or_(pc.starts_with(url, "http://"), pc.starts_with(url, "https://")))
    yield "empty:address", pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(t["address"])), 0)
    yield "format:listing_id", pc.invert(pc.match_substring_regex(t["listing_id"], LISTING_ID))
    scraped, listed = t["scraped_timestamp"], t["listing_date"]
    yield "format:scraped_timestamp", _by_value(scraped, lambda values: _malformed(values, _TIMESTAMP, 19))
    yield "format:listing_date", _by_value(listed, lambda values: _malformed(values, _DATE, 10))
    yield "range:listing_date", pc.or_(pc.less(listed, "1990-01-01"), pc.greater(listed, pc.utf8_slice_codeunits(scraped, 0, 10)))


def table_problems(table: pa.Table) -> pa.Array:
    """Per row: the first problem's code, or null for a plausible row."""
    t = table.select(list(COLUMNS))
    first = np.zeros(t.num_rows, np.int16)  # 1 + the position of the row's first problem; 0: none
    reasons = []
    for reason, mask in _checks(t):
        reasons.append(reason)
        first[(first == 0) & to_numpy(pc.fill_null(mask, False))] = len(reasons)
    return pa.array(reasons, pa.string()).take(pa.array(first - 1, mask=first == 0))


_PY_TYPES = {"string": (str,), "int64": (int,), "double": (int, float)}


def row_problem(row: dict) -> str | None:
    """The first problem of one row given as a dict (types included), or None."""
    for field in LISTING_SCHEMA:
        if field.name not in row:
            return f"missing_column:{field.name}"
        value = row[field.name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, _PY_TYPES[str(field.type)])):
            return f"type:{field.name}"
    return table_problems(pa.Table.from_pylist([row], schema=READ_SCHEMA))[0].as_py()
