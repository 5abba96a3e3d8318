"""Plausibility of listing rows, vectorized over a table: the same rules for miners (before they upload)
and validators (when they count), so an honest miner never loses a row it believed valid.

``table_problems`` returns, per row, the first problem found (a short stable code) or null. Types are the
schema's business (files are type-checked against it before their rows are read); these rules are about
values: required fields present, numbers in range, vocabulary, formats (listing ids of the source's own
form), dates not after the scrape.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

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


def _real(column, fmt: str, length: int):
    """Whether the first ``length`` characters are a moment that exists (no February 31, no second 99):
    parsing and printing it again gives the same text."""
    head = pc.utf8_slice_codeunits(column, 0, length)
    parsed = pc.strptime(head, format=fmt, unit="s", error_is_null=True)
    return pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), head), False)


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
    scraped = t["scraped_timestamp"]
    yield "format:scraped_timestamp", pc.invert(pc.and_(pc.match_substring_regex(scraped, _TIMESTAMP),
                                                        _real(scraped, "%Y-%m-%dT%H:%M:%S", 19)))
    listed = t["listing_date"]
    yield "format:listing_date", pc.invert(pc.and_(pc.match_substring_regex(listed, _DATE),
                                                   _real(listed, "%Y-%m-%d", 10)))
    yield "range:listing_date", pc.or_(pc.less(listed, "1990-01-01"),
                                       pc.greater(listed, pc.utf8_slice_codeunits(scraped, 0, 10)))


def table_problems(table: pa.Table) -> pa.Array:
    """Per row: the first problem's code, or null for a plausible row."""
    t = table.select(list(COLUMNS))
    result = pa.nulls(t.num_rows, pa.string())
    for reason, mask in _checks(t):
        flagged = pc.and_(pc.is_null(result), pc.fill_null(mask, False))
        result = pc.if_else(flagged, reason, result)
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


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
