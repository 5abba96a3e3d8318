"""Realtor-shaped records (Realtor.com GraphQL, as homeharvest returns them raw) to listing rows.

Rules:
- ``listing_id`` is Realtor's ``property_id`` (what a listing is fetched again by); ``source_url`` its ``href``.
- status: a pending or contingent flag -> ``pending``; ``for_sale`` -> ``active``; ``sold`` -> ``sold``;
  rentals, off-market and unknown statuses are dropped.
- price: ``list_price`` as a number > 0, else dropped (a range or "call for price" is not guessed).
- bathrooms: full + 0.5 x half; null when the source gives neither. sqft: positive integer or null.
- listing_date: the date part (UTC) of ``list_date``; days_on_market: whole days from it to the scrape
  (to the sale for sold listings); both null without a list date.
- property_type: Realtor's type mapped to house, condo, townhouse, multi_family, land, mobile, farm; any
  other type is ``other``.
- zipcode: the first five digits of ``postal_code``; address: ``line, city, state zip``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from resi.epochs import iso_z
from resi.scraping.source import Drop

_TYPES = {
    "single_family": "house", "condos": "condo", "condo": "condo", "condop": "condo", "coop": "condo",
    "condo_townhome_rowhome_coop": "condo", "condo_townhome": "condo", "apartment": "condo",
    "townhomes": "townhouse", "townhouse": "townhouse", "multi_family": "multi_family",
    "duplex_triplex": "multi_family", "land": "land", "mobile": "mobile", "farm": "farm",
}
_STATUS = {"for_sale": "active", "active": "active", "pending": "pending", "contingent": "pending", "sold": "sold"}


def _number(value) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    if value is None or kind is bool:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").replace("$", "").strip())
        except ValueError:
            return None
    return None


def _int(value) -> int | None:
    if type(value) is int:
        return value
    number = _number(value)
    return None if number is None or number != number else int(number)


def _moment(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


_stamp = lru_cache(maxsize=16)(iso_z)
"""A batch shares one scrape time: format it once."""


_EMPTY: dict = {}


def normalize_realtor(record: dict, scraped_at: datetime) -> dict:
    """One Realtor record as a row of the listing schema, or :class:`Drop` with the reason."""
    if type(record) is not dict:
        raise Drop("not_a_record")
    try:
        return _normalize(record, scraped_at)
    except (AttributeError, TypeError):  # a nested value of the wrong kind (a list where a dict belongs...)
        raise Drop("malformed_record") from None


def _normalize(record: dict, scraped_at: datetime) -> dict:
    get = record.get
    property_id = get("property_id")
    if not isinstance(property_id, (str, int)) or not str(property_id).strip():
        raise Drop("missing_id")
    href = get("href")
    if not isinstance(href, str) or not href.startswith(("http://", "https://")):
        raise Drop("missing_url")
    flags = get("flags") or _EMPTY
    raw_status = str(get("status") or "").lower()
    if raw_status == "for_sale" and (flags.get("is_pending") or flags.get("is_contingent")):
        status = "pending"
    elif raw_status in _STATUS:
        status = _STATUS[raw_status]
    elif raw_status == "for_rent":
        raise Drop("not_for_sale")
    else:
        raise Drop("unsupported_status")
    price = _number(get("list_price"))
    if price is None or price <= 0:
        raise Drop("missing_price")
    address = (get("location") or _EMPTY).get("address") or _EMPTY
    postal = str(address.get("postal_code") or "")[:5]
    if len(postal) != 5 or not postal.isdigit():
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
    listed = _moment(get("list_date"))
    end = _moment(get("last_sold_date")) if status == "sold" else scraped_at
    days = (end - listed).days if listed is not None and end is not None else None
    coordinate = address.get("coordinate") or _EMPTY
    mls_id = (get("source") or _EMPTY).get("listing_id")
    return {
        "address": f"{line.strip()}, {city}, {state} {postal}",
        "zipcode": postal,
        "price": price,
        "bedrooms": _int(description.get("beds")),
        "bathrooms": None if full is None and half is None else (full or 0) + 0.5 * (half or 0),
        "sqft": sqft if sqft and sqft > 0 else None,
        "listing_date": listed.date().isoformat() if listed else None,
        "property_type": _TYPES.get(str(description.get("type") or "").lower(), "other"),
        "listing_status": status,
        "days_on_market": days if days is not None and days >= 0 else None,
        "mls_id": str(mls_id) if mls_id not in (None, "") else None,
        "source_url": href,
        "scraped_timestamp": _stamp(scraped_at),
        "listing_id": str(property_id),
        "city": city,
        "state": state,
        "latitude": _number(coordinate.get("lat")),
        "longitude": _number(coordinate.get("lon")),
    }


def normalize_realtor_existing(record: dict, scraped_at: datetime) -> dict:
    """A listing fetched again by id, as a row, whatever its status now: off the market or rented, it still
    exists. Such a status is reported as ``sold`` (the truth check compares stable fields, not the status);
    a record missing what identifies a listing still raises :class:`Drop`."""
    try:
        return normalize_realtor(record, scraped_at)
    except Drop as drop:
        if drop.reason not in ("unsupported_status", "not_for_sale"):
            raise
        return normalize_realtor(dict(record, status="sold", flags={}), scraped_at)
