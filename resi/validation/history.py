"""What the source's facts prove about one row: its listing's dated history replayed to the row's scrape time.

Facts are what a source says about a listing (``ListingSource.facts``, e.g. ``realtor_facts``), plain data::

    {"listing_id": str, "observed_at": unix seconds, "static": {field: value, ...},
     "status": "active" | "pending" | "sold" | "off_market", "price": float | None,
     "events": [[earliest, latest, kind, value], ...]}

``kind`` is ``listed`` (value: the list price, or None), ``price`` (value: the new price) or ``status`` (value: the
new status). An event happened at some instant in ``[earliest, latest)``: the source's own precision (a whole day
for a date, a second for a timestamp). Where the events do not explain the status or price the source shows now,
the change is placed somewhere between the last event of its kind and the answer: the source does not say when.

A row is *proven* when its static fields equal the source's and some course of events consistent with the facts
gives, at the row's ``scraped_timestamp``, exactly its status, price, list date and days on market. There is no
tolerance beyond the source's precision: a price the listing never had at that time is not the listing's price,
however close. A listing is *stale* when it had been sold or taken off the market before the epoch began and was
not listed again before the row's scrape: it was not one of the epoch's current listings.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, NamedTuple

from resi.epochs import parse_iso

DAY = 86_400.0
STATIC_FIELDS = (
    "listing_id",
    "zipcode",
    "address",
    "city",
    "state",
    "bedrooms",
    "bathrooms",
    "sqft",
    "property_type",
    "mls_id",
    "latitude",
    "longitude",
    "source_url",
)
"""Compared exactly: the same source, read by the same normalizer, gives the same values (``source_url``: the
listing's own page at the source, in the canonical spelling)."""
TIMED_FIELDS = ("listing_status", "price", "listing_date", "days_on_market")
"""Proven against the listing's dated history at the row's scrape time: the status and price it had then, the
date it was listed, and days on market derived from that date and the scrape time (to the sale when sold)."""
STATEMENT_FIELDS = ("scraped_timestamp",)
"""The miner's own statement, checked for consistency: UTC, inside the epoch, not after its file landed, and
the moment at which every timed field must be proven."""
CURRENT = ("active", "pending")
ENDED = ("sold", "off_market")

BAD, UNPROVEN = "bad", "unproven"
"""Verdict kinds: the facts contradict the row / the facts do not show the row's values (a later look may)."""


class State(NamedTuple):
    status: str | None
    price: float | None
    listed: tuple[float, float] | None
    """When the listing was (last) listed."""
    since: tuple[float, float] | None
    """When its status began."""


_NOTHING = State(None, None, None, None)

Event = list[Any]
"""``[earliest, latest, kind, value]``: a fact's event between two moments (kind ``listed``, ``price``, ``status``)."""
Row = dict[str, Any]
Facts = dict[str, Any]


def _apply(state: State, event: Event) -> State:
    earliest, latest, kind, value = event
    if kind == "listed":
        price = value if value is not None else state.price
        return State("active", price, (earliest, latest), (earliest, latest))
    if kind == "price":
        return state._replace(price=value)
    if value == state.status:
        return state
    return state._replace(status=value, since=(earliest, latest))


def states_at(events: list[Event], moment: float) -> set[State]:
    """Every state the listing may have had at ``moment``: events certainly before it applied, events that may
    be before or after it branched."""
    states = {_NOTHING}
    for event in events:
        if event[0] > moment:
            break
        moved = {_apply(s, event) for s in states}
        states = moved if event[1] <= moment else states | moved
    return states


def timeline(facts: Facts) -> list[Event]:
    """The facts' events in order, with the current status and price placed where the events leave them
    unexplained (between the last event of their kind and the answer)."""
    events = sorted(facts.get("events") or [], key=lambda e: (e[0], e[1]))
    final = states_at(events, math.inf)
    observed = float(facts["observed_at"])
    extra = []
    for field, kinds in (("status", ("status", "listed")), ("price", ("price", "listed"))):
        now = facts.get(field)
        if now is None or any(getattr(s, field) == now for s in final):
            continue
        last = max((e[0] for e in events if e[2] in kinds), default=-math.inf)
        extra.append([min(last, observed), observed, field, now])
    return sorted(events + extra, key=lambda e: (e[0], e[1])) if extra else events


def is_stale(events: list[Event], epoch_start: float, moment: float) -> bool:
    """Sold or off the market since before the epoch began, and not listed again by ``moment``."""
    at_start = states_at(events, epoch_start)
    if any(s.status not in ENDED for s in at_start):
        return False
    return not any(
        e[0] <= moment and e[1] > epoch_start and (e[2] == "listed" or (e[2] == "status" and e[3] in CURRENT)) for e in events
    )


def _utc_dates(span: tuple[float, float]) -> tuple[str, str]:
    first = datetime.fromtimestamp(span[0], timezone.utc).date().isoformat()
    last = datetime.fromtimestamp(max(span[0], span[1] - 1e-6), timezone.utc).date().isoformat()
    return first, last


def _floor(days: float) -> float:
    """``math.floor`` that leaves an unbounded span unbounded (a status the source dates nowhere)."""
    return math.floor(days) if math.isfinite(days) else days


def dates_fit(state: State, row: Row, moment: float) -> bool:
    """Whether the row's list date and days on market are the ones this state gives at ``moment`` (to the
    precision of the source's times; days on market run to the sale for sold rows, as rows count them)."""
    if state.listed is None:
        return row["listing_date"] is None and row["days_on_market"] is None
    if row["listing_date"] is None or row["days_on_market"] is None:
        return False
    first, last = _utc_dates(state.listed)
    if not first <= row["listing_date"] <= last:
        return False
    end = state.since if row["listing_status"] == "sold" and state.since else (moment, moment)
    low, high = _floor((end[0] - state.listed[1]) / DAY), _floor((end[1] - state.listed[0]) / DAY)
    return bool(low <= row["days_on_market"] <= high)


def scrape_time(row: Row) -> float:
    return parse_iso(row["scraped_timestamp"]).timestamp()


def judge_claim(row: Row, facts: Facts, epoch_start: float, events: list[Event] | None = None) -> tuple[str, str] | None:
    """None when ``facts`` prove ``row``; else ``(BAD, reason)`` when they contradict it (a static field differs:
    ``mismatch:<field>``; ``stale``) or ``(UNPROVEN, field)`` when they do not show the row's value of a field that
    changes with time (``listing_status``, ``price``, ``days_on_market``) at its scrape time.

    ``events``: ``timeline(facts)``, when the caller already has it.
    """
    static = facts["static"]
    for name in STATIC_FIELDS:
        if row[name] != static.get(name):
            return BAD, f"mismatch:{name}"
    events = timeline(facts) if events is None else events
    moment = scrape_time(row)
    if is_stale(events, epoch_start, moment):
        return BAD, "stale"
    candidates = [s for s in states_at(events, moment) if s.status == row["listing_status"]]
    if not candidates:
        return UNPROVEN, "listing_status"
    candidates = [s for s in candidates if s.price == row["price"]]
    if not candidates:
        return UNPROVEN, "price"
    if not any(dates_fit(s, row, moment) for s in candidates):
        return UNPROVEN, "days_on_market"
    return None
