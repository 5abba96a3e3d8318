"""``normalize_realtor`` of many records at once, for the miner's pipeline: the same rows in the same order
and the same drop counts, 2 to 3 times faster (``scripts/bench_pipeline.py``).

The fields are read out of the records in one pass (item getters, each record in the CPU's cache once), their
Python types are checked per field, and the rows are built with compute kernels. The fast path only builds
rows that it can show the definition builds the same way; every other record goes through
:func:`resi.scraping.normalize.normalize_realtor` itself, which then decides its row or its drop reason:
- a value of another type than the plain JSON one expected (a number as text, a float count, a boolean
  price, a list where an object belongs), or a count too large to be one;
- a record the definition drops (no id, no link, a rental, no price, a bad zipcode, no street line...);
- a string that the kernels and Python could read differently: an id that is not ASCII digits, a street line
  that is not printable ASCII (``str.strip``), a status not spelled in lowercase, a date that
  :func:`resi.moments.iso_micros` does not read, an answer time Python cannot convert.
Fields with few distinct values (property types, zipcodes, answer times) are computed by the definition's own
Python once per distinct value; a str subclass is read as its characters. The records are those
a JSON decoder makes; ``tests/scraping/test_realtor_table.py`` holds the two paths to each other on generated,
recorded and fuzzed records (other JSON types, edge numbers, odd strings and dates, non-JSON values).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import to_numpy
from resi.listings.schema import READ_SCHEMA
from resi.moments import iso_micros
from resi.scraping.normalize import (
    _STATUS,
    COUNT_LIMIT,
    _stamp,
    answered_at,
    normalize_realtor,
    property_type_of,
    zipcode_of,
)
from resi.scraping.source import normalize_each

_EMPTY: dict = {}
_NONE = type(None)
_STRING, _TEXT = frozenset({str}), frozenset({str, _NONE})
_PRICE, _COORDINATE = frozenset({int, float}), frozenset({int, float, _NONE})
_COUNT, _FLAG = frozenset({int, _NONE}), frozenset({bool, _NONE})
_RAW_STATUSES = ("for_sale", "active", "pending", "contingent", "sold")
_RAW = pa.array(_RAW_STATUSES, pa.string())
_MARKET = pa.array([_STATUS[raw] for raw in _RAW_STATUSES], pa.string())
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000
_MICROSECOND = datetime.resolution


def realtor_table(records: Sequence, scraped_at: datetime, drops: Counter) -> pa.Table:
    """The rows :func:`normalize_realtor` makes of ``records`` (:data:`READ_SCHEMA`, in order); ``drops``
    counts the records that make none, by the definition's reason."""
    records = list(records)
    slow = np.zeros(len(records), bool)
    columns = _columns(_Fields(_read(records, slow), slow), scraped_at)
    fast = ~slow
    if fast.all():
        return pa.table(columns, schema=READ_SCHEMA)
    table = pa.table(columns, schema=READ_SCHEMA).filter(pa.array(fast))
    others = np.flatnonzero(slow)
    rest, kept = normalize_each([records[i] for i in others], normalize_realtor, scraped_at, drops)
    if not kept:
        return table
    order = np.argsort(np.concatenate([np.flatnonzero(fast), others[kept]]), kind="stable")
    return pa.concat_tables([table, rest]).take(pa.array(order))


_FIELDS = (
    "property_id",
    "status",
    "href",
    "list_price",
    "list_date",
    "last_sold_date",
    "_observed_at",
    "pending",
    "type",
    "sqft",
    "beds",
    "baths_full",
    "baths_half",
    "mls_id",
    "line",
    "city",
    "state_code",
    "postal_code",
    "lat",
    "lon",
)
"""Every field the rows are made of, named as in the record (``mls_id`` is ``source.listing_id``; ``pending``
is ``flags.is_pending or flags.is_contingent``)."""


_TOP = itemgetter(
    "property_id",
    "status",
    "href",
    "list_price",
    "list_date",
    "last_sold_date",
    "_observed_at",
    "flags",
    "description",
    "location",
    "source",
)
_ABOUT = itemgetter("type", "sqft", "beds", "baths_full", "baths_half")
_PLACE = itemgetter("line", "city", "state_code", "postal_code", "coordinate")


def _read(records: list, slow: np.ndarray) -> dict[str, list]:
    """Every field of :data:`_FIELDS`, read record by record: one pass keeps each record in the CPU's cache,
    and appends make no objects for the garbage collector to walk. A record with every key, whose nodes are
    dicts, is read with item getters; any other with the definition's own expressions (a node is
    ``record.get(name) or {}``, then ``.get``); a record that is not a dict, or whose nodes cannot be read
    so, is slow (its fields None)."""
    columns: dict[str, list] = {name: [] for name in _FIELDS}
    (
        add_id,
        add_status,
        add_href,
        add_price,
        add_listed,
        add_sold,
        add_observed,
        add_pending,
        add_type,
        add_sqft,
        add_beds,
        add_full,
        add_half,
        add_mls,
        add_line,
        add_city,
        add_state,
        add_postal,
        add_lat,
        add_lon,
    ) = [column.append for column in columns.values()]
    if not set(map(type, records)) <= {dict}:
        slow |= np.fromiter((type(record) is not dict for record in records), bool, len(records))
        records = [record if type(record) is dict else _EMPTY for record in records]
    done = columns["property_id"]  # one value per record read so far
    for record in records:
        try:
            (property_id, status, href, price, listed, sold, observed, flags, about, location, source) = _TOP(record)
            if type(about) is not dict or type(location) is not dict:
                raise LookupError
            address = location["address"]
            if type(address) is not dict:
                raise LookupError
            kind, sqft, beds, full, half = _ABOUT(about)
            line, city, state, postal, coordinate = _PLACE(address)
        except (LookupError, TypeError):
            get = record.get
            property_id, status, href, price = get("property_id"), get("status"), get("href"), get("list_price")
            listed, sold, observed, flags = get("list_date"), get("last_sold_date"), get("_observed_at"), get("flags")
            source = get("source")
            try:
                about = (get("description") or _EMPTY).get
                address = (get("location") or _EMPTY).get("address") or _EMPTY
                coordinate = address.get("coordinate")
                place = address.get
                kind, sqft, beds, full, half = (
                    about("type"),
                    about("sqft"),
                    about("beds"),
                    about("baths_full"),
                    about("baths_half"),
                )
                line, city, state, postal = place("line"), place("city"), place("state_code"), place("postal_code")
            except Exception:  # the definition says what this record is
                slow[len(done)] = True
                kind = sqft = beds = full = half = line = city = state = postal = coordinate = None
        try:
            flag, at = (flags or _EMPTY).get, (coordinate or _EMPTY).get
            mls_id = (source or _EMPTY).get("listing_id")
            pending = flag("is_pending") or flag("is_contingent")  # the definition's test, as it reads it
            lat, lon = at("lat"), at("lon")
        except Exception:
            slow[len(done)] = True
            mls_id = pending = lat = lon = None
        add_id(property_id)
        add_status(status)
        add_href(href)
        add_price(price)
        add_listed(listed)
        add_sold(sold)
        add_observed(observed)
        add_pending(pending)
        add_type(kind)
        add_sqft(sqft)
        add_beds(beds)
        add_full(full)
        add_half(half)
        add_mls(mls_id)
        add_line(line)
        add_city(city)
        add_state(state)
        add_postal(postal)
        add_lat(lat)
        add_lon(lon)
    return columns


class _Fields:
    """The fields read out of the records, turned into arrow arrays one at a time; marks in ``slow`` the
    records the fast path leaves to the definition."""

    def __init__(self, values: dict[str, list], slow: np.ndarray):
        self.values = values
        self.slow = slow

    def mark(self, condition: pa.Array | np.ndarray) -> None:
        """Rows where ``condition`` holds, or is null, are slow."""
        if isinstance(condition, (pa.Array, pa.ChunkedArray)):
            condition = to_numpy(pc.fill_null(condition, True))
        self.slow |= condition

    def checked(self, name: str, kinds: frozenset) -> list:
        """The values of ``name``, where those of another type than ``kinds`` are None and their rows slow."""
        values = self.values[name]
        if not set(map(type, values)) <= kinds:
            for i, value in enumerate(values):
                if type(value) not in kinds:
                    self.slow[i] = True
                    values[i] = None
        return values

    def text(self, name: str, optional: bool = False) -> pa.Array:
        """A field of strings (or None, when ``optional``); rows of any other value are slow. The types are
        checked by arrow's inference, which reads a list as strings only when every value is a str (or None);
        a str subclass counts as its characters."""
        try:
            array = pa.array(self.values[name])
        except (pa.ArrowException, ValueError, TypeError, OverflowError):  # values of mixed types
            array = None
        if array is None or array.type not in (pa.string(), pa.null()):
            array = pa.array(self.checked(name, _TEXT), pa.string())
        array = array.cast(pa.string())
        if not optional:
            self.mark(pc.is_null(array))
        return array

    def numbers(self, name: str, kinds: frozenset, kind: pa.DataType) -> pa.Array:
        """A numeric field (Python types checked: arrow would take a bool as 1.0 and a float as an int); an int
        beyond 64 bits, or for a float field beyond 2**53 (arrow refuses to round it), makes its row slow."""
        values = self.checked(name, kinds)
        try:
            return pa.array(values, kind)
        except (OverflowError, pa.ArrowInvalid):
            bound = 2**53 if pa.types.is_floating(kind) else 2**63
            for i, value in enumerate(values):
                if type(value) is int and not -bound <= value < bound:
                    self.slow[i] = True
                    values[i] = None
            return pa.array(values, kind)

    def count(self, name: str) -> pa.Array:
        """A field of counts (ints or None); a count the definition calls none (beyond ``COUNT_LIMIT``) makes
        its row slow."""
        values = self.numbers(name, _COUNT, pa.int64())
        huge = pc.fill_null(pc.or_(pc.greater_equal(values, COUNT_LIMIT), pc.less_equal(values, -COUNT_LIMIT)), False)
        self.mark(huge)
        return pc.if_else(huge, pa.scalar(None, pa.int64()), values)

    def flag(self, name: str) -> pa.Array:
        """A true/false field read as the definition reads it (truthiness), for True, False and None only."""
        try:
            array = pa.array(self.values[name], pa.bool_())  # refuses anything but booleans and None
        except (pa.ArrowException, ValueError, TypeError):
            array = pa.array(self.checked(name, _FLAG), pa.bool_())
        return pc.fill_null(array, False)

    def each_distinct(self, name: str, kinds: frozenset, function: Callable) -> pa.Array:
        """``function`` of every value of ``name`` (of ``kinds``: types that never compare equal to each
        other), computed once per distinct value; a result of None makes the row slow."""
        values = self.checked(name, kinds)
        results = {value: function(value) for value in set(values)}
        distinct = list(results)
        codes = np.fromiter(map({value: i for i, value in enumerate(distinct)}.__getitem__, values), np.int64, len(values))
        out = pa.array([results[value] for value in distinct], pa.string()).take(pa.array(codes))
        self.mark(pc.is_null(out))
        return out

    def answers(self, scraped_at: datetime) -> tuple[pa.Array, np.ndarray]:
        """(``scraped_timestamp``, the same in microseconds) of every record: the definition's answer time,
        computed once per distinct ``_observed_at``; a time it cannot convert makes the row slow."""
        stamps = self.values["_observed_at"]
        if not set(map(type, stamps)) <= {float, _NONE}:
            stamps = [stamp if type(stamp) is float else None for stamp in stamps]
        distinct: dict[float | None, int] = {}
        texts: list[str | None] = []
        micros: list[int] = []
        for stamp in set(stamps):
            try:
                moment = answered_at(stamp, scraped_at)
            except (ValueError, OverflowError, OSError):
                moment = None
            distinct[stamp] = len(texts)
            texts.append(_stamp(moment) if moment else None)
            micros.append((moment - _EPOCH) // _MICROSECOND if moment else 0)
        codes = np.fromiter(map(distinct.__getitem__, stamps), np.int64, len(stamps))
        text = pa.array(texts, pa.string()).take(pa.array(codes))
        self.mark(pc.is_null(text))
        return text, np.array(micros, np.int64)[codes]


def _columns(fields: _Fields, scraped_at: datetime) -> dict[str, pa.Array]:
    """The listing schema's columns of every record (meaningful for the rows that stay fast), marking slow
    the rows the definition drops or that the kernels cannot read as it does."""
    mark = fields.mark
    listing_id = fields.text("property_id")
    mark(pc.invert(pc.match_substring_regex(listing_id, r"^[0-9]+$")))
    source_url = fields.text("href")
    mark(pc.invert(pc.or_(pc.starts_with(source_url, "http://"), pc.starts_with(source_url, "https://"))))
    mark(pc.match_substring_regex(source_url, r"[?#]|/$"))  # not in the canonical spelling: the definition writes it
    raw_status = pc.index_in(fields.text("status"), value_set=_RAW)
    mark(pc.is_null(raw_status))
    flagged = fields.flag("pending")
    status = pc.if_else(pc.and_(pc.equal(raw_status, 0), flagged), "pending", pc.take(_MARKET, raw_status))
    price = fields.numbers("list_price", _PRICE, pa.float64())
    mark(pc.invert(pc.and_(pc.greater(price, 0), pc.is_finite(price))))
    line = fields.text("line")
    mark(pc.invert(pc.match_substring_regex(line, r"^[\x20-\x7e]*$")))
    line = pc.utf8_trim(line, " ")  # a printable-ASCII line: the only whitespace str.strip removes is " "
    mark(pc.equal(line, ""))
    city, state = fields.text("city"), fields.text("state_code")
    mark(pc.or_(pc.equal(city, ""), pc.equal(state, "")))
    zipcode = fields.each_distinct("postal_code", _STRING, zipcode_of)
    address = pc.binary_join_element_wise(line, city, pc.binary_join_element_wise(state, zipcode, " "), ", ")
    mls_id = fields.text("mls_id", optional=True)
    number = {name: fields.count(name) for name in ("sqft", "beds", "baths_full", "baths_half")}
    full, half = number["baths_full"], number["baths_half"]
    bathrooms = pc.if_else(
        pc.and_(pc.is_null(full), pc.is_null(half)),
        pa.scalar(None, pa.float64()),
        pc.add(pc.cast(pc.fill_null(full, 0), pa.float64()), pc.multiply(pc.cast(pc.fill_null(half, 0), pa.float64()), 0.5)),
    )
    sqft = number["sqft"]
    listed_text = fields.text("list_date", optional=True)
    listed, listed_ok = iso_micros(listed_text)
    mark(to_numpy(pc.is_valid(listed_text)) & ~listed_ok)
    is_sold = to_numpy(pc.fill_null(pc.equal(raw_status, _RAW_STATUSES.index("sold")), False))
    sold_text = fields.text("last_sold_date", optional=True)  # read by the definition for sold listings only
    sold, sold_ok = iso_micros(pc.if_else(pa.array(is_sold), sold_text, pa.scalar(None, pa.string())))
    mark(is_sold & to_numpy(pc.is_valid(sold_text)) & ~sold_ok)
    stamps, answered_us = fields.answers(scraped_at)
    end, end_ok = np.where(is_sold, sold, answered_us), np.where(is_sold, sold_ok, True)
    days = np.floor_divide(end - listed, _DAY_US)
    known = listed_ok & end_ok & (days >= 0)
    return {
        "address": address,
        "zipcode": zipcode,
        "price": price,
        "bedrooms": number["beds"],
        "bathrooms": bathrooms,
        "sqft": pc.if_else(pc.greater(sqft, 0), sqft, pa.scalar(None, pa.int64())),
        "listing_date": pc.utf8_slice_codeunits(listed_text, 0, 10),
        "property_type": fields.each_distinct("type", _TEXT, property_type_of),
        "listing_status": status,
        "days_on_market": pa.array(days, pa.int64(), mask=~known),
        "mls_id": pc.if_else(pc.equal(mls_id, ""), pa.scalar(None, pa.string()), mls_id),
        "source_url": source_url,
        "scraped_timestamp": stamps,
        "listing_id": listing_id,
        "city": city,
        "state": state,
        "latitude": _not_nan(fields.numbers("lat", _COORDINATE, pa.float64())),
        "longitude": _not_nan(fields.numbers("lon", _COORDINATE, pa.float64())),
    }


def _not_nan(values: pa.Array) -> pa.Array:
    """The definition's ``_number``: NaN is no number (infinities stay)."""
    return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)
