"""A deterministic world of US listings that drifts with time: what the local listing site serves.

Each zipcode has a number of *slots* (about the count the reference server expects there, from the shared
market model); each slot hosts one listing at a time. A listing lives one lifecycle of 20..120 days divided
by ``churn`` (a local network sets churn so that a few-minute epoch sees about as much change as four real
hours): it is listed (active), a third of listings get a price cut at 45% of their life, listings that sell
go pending at 80% and are sold at the end; about one in seven is withdrawn instead (taken off the market at
the end, straight from active). Then the slot's next listing appears.

Every listing that ever existed stays reachable by id with its history, as Realtor keeps sold and
withdrawn listings: ``home`` answers for any generation, and ``sold`` lists the sold listings of a zipcode
within a window (Realtor's sold search). Everything is a pure function of the seed, the property id and
the time, so any number of processes agree, and a listing asked for twice agrees with itself.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from resi import market
from resi.epochs import UTC

DAY = 86_400.0
_STREETS = (
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Walnut",
    "Chestnut",
    "Spruce",
    "Sunset",
    "Highland",
    "Jefferson",
    "Lincoln",
    "Madison",
    "Franklin",
    "Church",
    "Spring",
    "River",
    "Meadow",
    "Forest",
    "Willow",
    "Ridge",
    "Valley",
    "Broad",
    "Market",
    "Union",
    "Grant",
    "Jackson",
    "Adams",
    "Monroe",
    "Locust",
    "Poplar",
    "Birch",
    "Cherry",
    "Laurel",
    "Magnolia",
    "Dogwood",
    "Hickory",
    "Sycamore",
    "Mill",
    "Center",
    "School",
    "North",
    "South",
    "Prospect",
    "Pleasant",
    "Academy",
    "Summit",
    "Bridge",
)
_SUFFIXES = ("St", "Ave", "Rd", "Dr", "Ln", "Ct", "Blvd", "Way", "Pl", "Ter")
_TYPE_MIX = {
    "PREMIUM": (
        ("condos", 0.35),
        ("single_family", 0.33),
        ("townhomes", 0.15),
        ("multi_family", 0.07),
        ("coop", 0.05),
        ("land", 0.05),
    ),
    "STANDARD": (
        ("single_family", 0.55),
        ("condos", 0.15),
        ("townhomes", 0.12),
        ("multi_family", 0.08),
        ("land", 0.05),
        ("mobile", 0.03),
        ("farm", 0.02),
    ),
    "EMERGING": (
        ("single_family", 0.6),
        ("condos", 0.08),
        ("townhomes", 0.1),
        ("multi_family", 0.07),
        ("land", 0.08),
        ("mobile", 0.05),
        ("farm", 0.02),
    ),
}
CUT_AT, PENDING_AT = 0.45, 0.8
"""Fractions of a lifecycle at which the price cut and the pending status come."""
WITHDRAWN_SHARE = 0.15


@dataclass(frozen=True)
class WorldConfig:
    seed: str = "resi"
    scale: float = 1.0
    """Multiplies listing counts; must equal the API server's ``--listings-scale``."""
    churn: float = 1.0
    """Lifecycles run this many times faster than a real market's 20..120 days."""


@dataclass(frozen=True)
class Static:
    """What does not change during a listing's life."""

    zipcode: str
    slot: int
    gen: int
    listing_id: str
    mls: str
    mls_id: str | None
    prop_type: str
    beds: int | None
    baths_full: int | None
    baths_half: int | None
    sqft: int | None
    lot_sqft: int | None
    year_built: int | None
    street_number: str
    street_direction: str | None
    street_name: str
    street_suffix: str
    unit: str | None
    city: str
    state: str
    county: str | None
    lat: float
    lon: float
    base_price: int
    cut: float
    """Fraction of the price cut mid-life (0 for most listings)."""
    prior_days: float
    """Days the listing was already on the market when it appeared in this world."""
    withdrawn: bool
    """Taken off the market at the end of its life instead of sold."""


@dataclass(frozen=True)
class Event:
    """One line of a listing's ``property_history`` (Realtor's event names)."""

    at: datetime
    name: str
    price: int | None


@dataclass(frozen=True)
class Home:
    static: Static
    property_id: str
    status: str
    """``for_sale``, ``sold`` or ``off_market``."""
    is_pending: bool
    list_date: datetime
    price: int
    pending_date: datetime | None
    sold_date: datetime | None
    sold_price: int | None
    last_status_change: datetime
    last_update: datetime
    history: tuple[Event, ...]
    """Events up to now, oldest first."""

    @property
    def line(self) -> str:
        s = self.static
        parts = [s.street_number, s.street_direction, s.street_name, s.street_suffix, s.unit]
        return " ".join(p for p in parts if p)


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


ID_LENGTH = 17


def encode_property_id(zipcode: str, slot: int, gen: int) -> str:
    """``1`` + zipcode (5) + slot (4) + generation (7): 17 digits, never a leading zero."""
    return f"1{int(zipcode):05d}{slot:04d}{gen:07d}"


def decode_property_id(property_id: str) -> tuple[str, int, int] | None:
    if not isinstance(property_id, str) or len(property_id) != ID_LENGTH or not property_id.isdigit() or property_id[0] != "1":
        return None
    return property_id[1:6], int(property_id[6:10]), int(property_id[10:])


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class ListingWorld:
    def __init__(self, config: WorldConfig = WorldConfig()):
        self.config = config
        # Per-instance caches (a world lives as long as its site).
        self.slot_count = lru_cache(maxsize=65_536)(self._slot_count)
        self._cycle = lru_cache(maxsize=65_536)(self._cycle_uncached)
        self._static = lru_cache(maxsize=200_000)(self._static_uncached)

    def _slot_count(self, zipcode: str) -> int:
        """Listings live in ``zipcode`` at any moment: the expected count, less for some thin markets."""
        if market.zipcode_info(zipcode) is None:
            return 0
        supply = 0.85 + 0.15 * _rng(self.config.seed, "supply", zipcode).random()
        if _rng(self.config.seed, "full", zipcode).random() < 0.6:
            supply = 1.0  # most markets have exactly what the server expects
        return max(1, round(market.expected_listings(zipcode, self.config.scale) * supply))

    def _cycle_uncached(self, zipcode: str, slot: int) -> tuple[float, float]:
        r = _rng(self.config.seed, "cycle", zipcode, slot)
        period = (20 + 100 * r.random()) * DAY / self.config.churn
        return period, r.random() * period

    def _gen_at(self, zipcode: str, slot: int, now: float) -> int:
        period, phase = self._cycle(zipcode, slot)
        return int((now + phase) // period)

    def _span(self, zipcode: str, slot: int, gen: int) -> tuple[float, float]:
        """When generation ``gen`` of a slot appears and ends (unix seconds)."""
        period, phase = self._cycle(zipcode, slot)
        start = gen * period - phase
        return start, start + period

    def _static_uncached(self, zipcode: str, slot: int, gen: int) -> Static:
        info = market.known_zipcode(zipcode)
        r = _rng(self.config.seed, "home", zipcode, slot, gen)
        types, weights = zip(*_TYPE_MIX[info.tier])
        prop_type = r.choices(types, weights)[0]
        land = prop_type in ("land", "farm") and r.random() < 0.7
        condo = prop_type in ("condos", "coop")
        beds = None if land else r.randint(0, 3) if condo else r.randint(2, 6)
        baths_full = None if land else max(1, min((beds or 1), r.randint(1, 4)))
        baths_half = None if land else r.choice((0, 0, 1, 1, 2)) if r.random() < 0.8 else None
        sqft = None if land or r.random() < 0.06 else int((450 + 480 * (beds or 1)) * r.uniform(0.75, 1.3))
        median = market.median_price(zipcode)
        size = (sqft or 1500) / 1700
        base = median * (0.22 if land else size**0.8) * r.lognormvariate(0, 0.25)
        base_price = max(10_000, int(round(base, -3)))
        street = r.choice(_STREETS)
        number = str(2 * slot + 1 + (6000 if gen % 2 else 0))
        mls = f"{info.state}{r.choice(('MLS', 'BR', 'RE'))}"
        digest = hashlib.sha256(f"{zipcode}{slot}{gen}".encode()).digest()
        listing_id = str(2_900_000_000 + int.from_bytes(digest[:4], "big") % 99_999_999)
        return Static(
            zipcode=zipcode,
            slot=slot,
            gen=gen,
            listing_id=listing_id,
            mls=mls,
            mls_id=None if r.random() < 0.03 else f"{info.state}{zipcode[-3:]}{r.randint(1_000_000, 9_999_999)}",
            prop_type=prop_type,
            beds=beds,
            baths_full=baths_full,
            baths_half=baths_half,
            sqft=sqft,
            lot_sqft=int(r.uniform(2_000, 80_000)) if not condo else None,
            year_built=None if land else r.randint(1890, 2025),
            street_number=number,
            street_direction=r.choice((None, None, None, "N", "S", "E", "W")),
            street_name=street,
            street_suffix=r.choice(_SUFFIXES),
            unit=(f"Apt {r.randint(1, 30)}{r.choice('ABCDEF')}" if condo else None),
            city=info.city,
            state=info.state,
            county=info.county,
            lat=round(info.latitude + r.uniform(-0.02, 0.02), 6),
            lon=round(info.longitude + r.uniform(-0.02, 0.02), 6),
            base_price=base_price,
            cut=r.uniform(0.02, 0.07) if r.random() < 0.35 else 0.0,
            prior_days=r.random() * 45,
            withdrawn=r.random() < WITHDRAWN_SHARE,
        )

    def _events(self, s: Static, start: float, end: float) -> list[tuple[float, str, int]]:
        """The whole life of a listing, past and future: (unix time, event name, price)."""
        period = end - start
        events = [(start - s.prior_days * DAY, "Listed", s.base_price)]
        price = s.base_price
        if s.cut:
            price = int(round(price * (1 - s.cut), -2))
            events.append((start + CUT_AT * period, "Price Changed", price))
        if s.withdrawn:
            events.append((end, "Listing Removed", price))
        else:
            events.append((start + PENDING_AT * period, "Pending", price))
            sold = int(round(price * _rng(s.listing_id, "sold").uniform(0.96, 1.04), -2))
            events.append((end, "Sold", sold))
        return events

    def _home(self, zipcode: str, slot: int, gen: int, now: float) -> Home:
        start, end = self._span(zipcode, slot, gen)
        s = self._static(zipcode, slot, gen)
        past = [e for e in self._events(s, start, end) if e[0] <= now]
        price = s.base_price
        pending = sold = None
        sold_price = None
        status = "for_sale"
        status_change = past[0][0]
        for t, name, value in past:
            if name == "Price Changed":
                price = value
            elif name == "Pending":
                pending, status_change = t, t
            elif name == "Sold":
                status, sold, sold_price, status_change = "sold", t, value, t
            elif name == "Listing Removed":
                status, status_change = "off_market", t
        return Home(
            static=s,
            property_id=encode_property_id(zipcode, slot, gen),
            status=status,
            is_pending=status == "for_sale" and pending is not None,
            list_date=_at(past[0][0]),
            price=price,
            pending_date=_at(pending) if pending is not None else None,
            sold_date=_at(sold) if sold is not None else None,
            sold_price=sold_price,
            last_status_change=_at(status_change),
            last_update=_at(max(past[-1][0], start)),
            history=tuple(Event(_at(t), name, value) for t, name, value in past),
        )

    def page(self, zipcode: str, offset: int, limit: int, now: float) -> tuple[int, list[Home]]:
        """``total`` and the listings ``offset..offset+limit`` of a for-sale search in ``zipcode`` (stable order)."""
        total = self.slot_count(zipcode)
        slots = range(max(0, offset), min(total, max(0, offset) + max(0, limit)))
        return total, [self._home(zipcode, s, self._gen_at(zipcode, s, now), now) for s in slots]

    def current(self, zipcode: str, now: float) -> list[Home]:
        return self.page(zipcode, 0, self.slot_count(zipcode), now)[1]

    def sold(self, zipcode: str, since: float, now: float) -> list[Home]:
        """Listings of ``zipcode`` sold in ``[since, now]``, most recent sale first (Realtor's sold search)."""
        out = []
        for slot in range(self.slot_count(zipcode)):
            gen = self._gen_at(zipcode, slot, now) - 1
            while gen >= 0:
                start, end = self._span(zipcode, slot, gen)
                if end < since:
                    break
                if end <= now and not self._static(zipcode, slot, gen).withdrawn:
                    out.append(self._home(zipcode, slot, gen, now))
                gen -= 1
        return sorted(out, key=lambda h: (h.sold_date, h.property_id), reverse=True)

    def home(self, property_id: str, now: float) -> Home | None:
        """Any listing that exists or existed (sold and withdrawn ones included); None for ids that never did."""
        decoded = decode_property_id(property_id)
        if decoded is None:
            return None
        zipcode, slot, gen = decoded
        if slot >= self.slot_count(zipcode) or gen > self._gen_at(zipcode, slot, now):
            return None
        return self._home(zipcode, slot, gen, now)


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def property_url(home: Home, base_url: str) -> str:
    s = home.static
    slug = "_".join([home.line.replace(" ", "-"), s.city.replace(" ", "-"), s.state, s.zipcode])
    return f"{base_url.rstrip('/')}/realestateandhomes-detail/{slug}_M{home.property_id}"


def to_realtor(home: Home, base_url: str, history: bool = False) -> dict:
    """The listing in the shape Realtor.com's GraphQL returns (the fields homeharvest reads); ``history`` adds
    ``property_history``, as Realtor's home details do."""
    s = home.static
    record: dict[str, Any] = {
        "__typename": "SearchHome",
        "property_id": home.property_id,
        "listing_id": s.listing_id,
        "href": property_url(home, base_url),
        "permalink": property_url(home, base_url).rsplit("/", 1)[-1],
        "status": home.status,
        "mls_status": {"sold": "Sold", "off_market": "Off Market"}.get(home.status, "Pending" if home.is_pending else "Active"),
        "list_date": _iso(home.list_date),
        "pending_date": _iso(home.pending_date),
        "last_sold_date": _iso(home.sold_date),
        "last_sold_price": home.sold_price,
        "last_status_change_date": _iso(home.last_status_change),
        "last_update_date": _iso(home.last_update),
        "list_price": home.price,
        "list_price_min": None,
        "list_price_max": None,
        "price_per_sqft": int(home.price / s.sqft) if s.sqft else None,
        "tags": None,
        "open_houses": None,
        "details": None,
        "pet_policy": None,
        "units": None,
        "flags": {"is_contingent": None, "is_pending": home.is_pending or None, "is_new_construction": None},
        "description": {
            "type": s.prop_type,
            "sqft": s.sqft,
            "beds": s.beds,
            "baths_full": s.baths_full,
            "baths_half": s.baths_half,
            "lot_sqft": s.lot_sqft,
            "year_built": s.year_built,
            "garage": None,
            "name": None,
            "stories": None,
            "text": None,
        },
        "source": {"id": s.mls, "listing_id": s.mls_id},
        "hoa": None,
        "location": {
            "address": {
                "street_direction": s.street_direction,
                "street_number": s.street_number,
                "street_name": s.street_name,
                "street_suffix": s.street_suffix,
                "line": home.line,
                "unit": s.unit,
                "city": s.city,
                "state_code": s.state,
                "postal_code": s.zipcode,
                "coordinate": {"lon": s.lon, "lat": s.lat},
            },
            "county": {"name": s.county, "fips_code": None} if s.county else None,
            "neighborhoods": None,
        },
        "tax_record": None,
        "primary_photo": None,
        "photos": None,
        "advertisers": None,
        "current_estimates": None,
    }
    if history:
        record["__typename"] = "Home"
        record["property_history"] = [
            {"date": _iso(e.at), "event_name": e.name, "price": e.price} for e in reversed(home.history)
        ]  # Realtor lists the newest first
    return record
