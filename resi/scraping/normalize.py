"""Realtor-shaped records (Realtor.com GraphQL, as homeharvest returns them raw) to listing rows and to facts.

Rows (what miners upload):
- ``listing_id`` is Realtor's ``property_id`` (what a listing is fetched again by); ``source_url`` its ``href``
  in the canonical spelling (``resi.listings.schema.canonical_source_url``: no query string, fragment or
  trailing slash).
- status: a pending or contingent flag -> ``pending``; ``for_sale`` -> ``active``; ``sold`` -> ``sold``;
  rentals, off-market and unknown statuses are dropped.
- price: ``list_price`` as a number > 0, else dropped (a range or "call for price" is not guessed).
- bathrooms: full + 0.5 x half; null when the source gives neither. sqft: positive integer or null.
- listing_date: the date part (UTC) of ``list_date``; days_on_market: whole days from it to the scrape
  (to the sale for sold listings); both null without a list date.
- property_type: Realtor's type mapped to house, condo, townhouse, multi_family, land, mobile, farm; any
  other type is ``other``.
- zipcode: the first five digits of ``postal_code``; address: ``line, city, state zip``.
- scraped_timestamp: when the source answered with the record (``_observed_at``, set by the source's
  transport per response), else the time given; milliseconds, and days on market are counted from exactly
  that instant, so anyone can recompute them.

Facts (what the validator proves rows against, see ``resi/validation/history.py``): the same static fields
(the canonical ``source_url`` among them),
the status and price at the time of the answer, and the listing's dated events: from ``property_history``
when the record has it (home details), else from ``list_date``, ``pending_date``, ``last_sold_date`` and
``last_status_change_date`` (search results). Each event time is an interval ``[earliest, latest)`` in
unix seconds that says how precise the source was (a whole day for ``2025-10-01``, a second for
``2025-10-01T16:00:05Z``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache

from resi.epochs import iso_z
from resi.listings.schema import canonical_source_url
from resi.scraping.source import Drop

_TYPES = {
    "single_family": "house",
    "condos": "condo",
    "condo": "condo",
    "condop": "condo",
    "coop": "condo",
    "condo_townhome_rowhome_coop": "condo",
    "condo_townhome": "condo",
    "apartment": "condo",
    "townhomes": "townhouse",
    "townhouse": "townhouse",
    "multi_family": "multi_family",
    "duplex_triplex": "multi_family",
    "land": "land",
    "mobile": "mobile",
    "farm": "farm",
}
_STATUS = {"for_sale": "active", "active": "active", "pending": "pending", "contingent": "pending", "sold": "sold"}
_EVENTS = {
    "listed": "listed",
    "relisted": "listed",
    "price changed": "price",
    "price change": "price",
    "pending": "pending",
    "contingent": "pending",
    "under contract": "pending",
    "sold": "sold",
    "listing removed": "off_market",
    "off market": "off_market",
    "delisted": "off_market",
    "withdrawn": "off_market",
    "expired": "off_market",
    "cancelled": "off_market",
}
"""Realtor's ``property_history`` event names -> what they change. Rental events are not the market's."""
_UTC = timezone.utc
_WEB = ("http://", "https://")


def _number(value) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        return float(value) if value == value else None
    if value is None or kind is bool:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.replace(",", "").replace("$", "").strip())
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


COUNT_LIMIT = 2**53
"""Counts (rooms, square feet) at or beyond this are not numbers a source means: null, never an overflow."""


def _int(value) -> int | None:
    if type(value) is int:
        return value if -COUNT_LIMIT < value < COUNT_LIMIT else None
    number = _number(value)
    return None if number is None or abs(number) >= COUNT_LIMIT else int(number)


_PRECISION = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?")


def moment_span(value) -> tuple[datetime, float] | None:
    """A source's time string as (its earliest instant in UTC, its precision in seconds): ``2025-10-01`` is
    a whole day, ``2025-10-01T16:00:05Z`` one second, ``...05.123Z`` a millisecond. None if it is none."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    match = _PRECISION.match(text)
    if match is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
        return moment.replace(tzinfo=_UTC), 86_400.0
    hour, minute, second, fraction = match.groups()
    precision = (
        86_400.0
        if hour is None
        else 3_600.0
        if minute is None
        else 60.0
        if second is None
        else 1.0
        if fraction is None
        else 10.0 ** -len(fraction)
    )
    moment = moment.replace(tzinfo=_UTC) if moment.tzinfo is None else moment.astimezone(_UTC)
    return moment, precision


def _moment(value) -> datetime | None:
    span = moment_span(value)
    return span[0] if span else None


_stamp = lru_cache(maxsize=256)(iso_z)
"""Records of one answer share their scrape time: format it once."""


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def observed_at(record: dict, default: datetime) -> datetime:
    """When the source answered with ``record`` (to the millisecond, as written into rows)."""
    return answered_at(record.get("_observed_at"), default)


def answered_at(stamp, default: datetime) -> datetime:
    """:func:`observed_at` of a record whose ``_observed_at`` is ``stamp``."""
    return _millis(datetime.fromtimestamp(stamp, _UTC) if type(stamp) is float else default)


_EMPTY: dict = {}


def zipcode_of(postal) -> str | None:
    """The zipcode of a ``postal_code``: its first five characters when they are digits (None: no zipcode)."""
    zipcode = str(postal or "")[:5]
    return zipcode if len(zipcode) == 5 and zipcode.isdigit() else None


def property_type_of(kind) -> str:
    """Realtor's property type as one of the schema's (``other`` for any it does not name)."""
    return _TYPES.get(str(kind or "").lower(), "other")


def _static(record: dict) -> dict:
    """The fields of a listing that do not change with time, normalized (or :class:`Drop`)."""
    get = record.get
    property_id = get("property_id")
    if not isinstance(property_id, (str, int)) or isinstance(property_id, bool) or not str(property_id).strip():
        raise Drop("missing_id")
    address = (get("location") or _EMPTY).get("address") or _EMPTY
    postal = zipcode_of(address.get("postal_code"))
    if postal is None:
        raise Drop("bad_zipcode")
    line = address.get("line")
    city, state = address.get("city"), address.get("state_code")
    if not isinstance(line, str) or not line.strip():
        raise Drop("missing_address")
    if not isinstance(city, str) or not city or not isinstance(state, str) or not state:
        raise Drop("missing_city_or_state")
    description = get("description") or _EMPTY
    full, half = _int(description.get("baths_full")), _int(description.get("baths_half"))
    sqft = _int(description.get("sqft"))
    coordinate = address.get("coordinate") or _EMPTY
    mls_id = (get("source") or _EMPTY).get("listing_id")
    href = get("href")
    return {
        "listing_id": str(property_id).strip(),
        "source_url": canonical_source_url(href) if isinstance(href, str) and href.startswith(_WEB) else None,
        "address": f"{line.strip()}, {city}, {state} {postal}",
        "zipcode": postal,
        "bedrooms": _int(description.get("beds")),
        "bathrooms": None if full is None and half is None else (full or 0) + 0.5 * (half or 0),
        "sqft": sqft if sqft and sqft > 0 else None,
        "property_type": property_type_of(description.get("type")),
        "mls_id": str(mls_id) if mls_id not in (None, "") else None,
        "city": city,
        "state": state,
        "latitude": _number(coordinate.get("lat")),
        "longitude": _number(coordinate.get("lon")),
    }


def _market_status(record: dict) -> str:
    """active, pending, sold or off_market (rentals and anything unknown are off the sale market)."""
    flags = record.get("flags") or _EMPTY
    raw = str(record.get("status") or "").lower()
    if raw == "for_sale" and (flags.get("is_pending") or flags.get("is_contingent")):
        return "pending"
    return _STATUS.get(raw, "off_market")


def normalize_realtor(record: dict, scraped_at: datetime) -> dict:
    """One Realtor record as a row of the listing schema, or :class:`Drop` with the reason."""
    if type(record) is not dict:
        raise Drop("not_a_record")
    try:
        return _normalize(record, observed_at(record, scraped_at))
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):  # a nested value of the wrong kind
        raise Drop("malformed_record") from None


def _normalize(record: dict, scraped_at: datetime) -> dict:
    get = record.get
    property_id = get("property_id")
    if not isinstance(property_id, (str, int)) or isinstance(property_id, bool) or not str(property_id).strip():
        raise Drop("missing_id")
    href = get("href")
    if not isinstance(href, str) or not href.startswith(_WEB):
        raise Drop("missing_url")
    raw_status = str(get("status") or "").lower()
    if raw_status == "for_rent":
        raise Drop("not_for_sale")
    if raw_status not in _STATUS:
        raise Drop("unsupported_status")
    status = _market_status(record)
    price = _number(get("list_price"))
    if price is None or price <= 0:
        raise Drop("missing_price")
    row = _static(record)
    listed = _moment(get("list_date"))
    end = _moment(get("last_sold_date")) if status == "sold" else scraped_at
    days = (end - listed).days if listed is not None and end is not None else None
    row.update(
        price=price,
        listing_date=listed.date().isoformat() if listed else None,
        listing_status=status,
        days_on_market=days if days is not None and days >= 0 else None,
        scraped_timestamp=_stamp(scraped_at),
    )
    return row


# --- facts ------------------------------------------------------------------------------------------------


def _span(value) -> tuple[float, float] | None:
    parsed = moment_span(value)
    if parsed is None:
        return None
    start = parsed[0].timestamp()
    return start, start + parsed[1]


def _history_events(history: list) -> list[list]:
    events = []
    for item in history[:500]:
        if not isinstance(item, dict):
            continue
        kind = _EVENTS.get(str(item.get("event_name") or "").strip().lower())
        span = _span(item.get("date"))
        if kind is None or span is None:
            continue
        price = _number(item.get("price"))
        if kind == "listed":
            events.append([*span, "listed", price if price and price > 0 else None])
        elif kind == "price":
            if price and price > 0:
                events.append([*span, "price", price])
        else:
            events.append([*span, "status", kind])
    return events


def _derived_events(record: dict, status: str) -> list[list]:
    """Events from a search result's dates (no ``property_history``)."""
    events = []
    listed = _span(record.get("list_date"))
    if listed:
        events.append([*listed, "listed", None])
    pending = _span(record.get("pending_date"))
    if pending:
        events.append([*pending, "status", "pending"])
    sold = _span(record.get("last_sold_date"))
    if sold and status == "sold":
        events.append([*sold, "status", "sold"])
    changed = _span(record.get("last_status_change_date"))
    if changed and status == "off_market":
        events.append([*changed, "status", "off_market"])
    return events


def realtor_facts(record: dict, observed: datetime) -> dict:
    """What the source says about one listing's life (any status, sold and withdrawn included), or
    :class:`Drop` when the record does not identify a listing. Plain JSON-able data."""
    if type(record) is not dict:
        raise Drop("not_a_record")
    try:
        static = _static(record)
        status = _market_status(record)
        history = record.get("property_history")
        events = _history_events(history) if isinstance(history, list) and history else _derived_events(record, status)
        price = _number(record.get("list_price"))
        when = observed_at(record, observed)
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        raise Drop("malformed_record") from None
    events.sort(key=lambda e: (e[0], e[1]))
    return {
        "listing_id": static["listing_id"],
        "observed_at": when.timestamp(),
        "static": static,
        "status": status,
        "price": price if price and price > 0 else None,
        "events": events,
    }
