"""The truth check's first step for a whole table at once: every valid row against the snapshot, as a join on
``listing_id`` with compute kernels.

The index is built once per epoch (in the judging child). A listing whose dated history does not move during the
epoch's window (no event bound between the epoch's start and one second past its deadline, so the same set of
possible states all over it; static fields that the schema's types hold exactly) is *simple*: for every row of it
the verdict of ``history.judge_claim`` reduces to comparisons of columns (static fields and staleness per
listing; status, price, list date and days on market against each of its possible states). Rows of the other
listings, and rows whose scrape time the kernels do not read exactly as ``parse_iso`` does, go through
``judge_claim`` itself. ``resi.validation.reference.split_by_snapshot``
is the row-by-row definition; tests hold this to it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, tally, to_numpy
from resi.listings.schema import LISTING_SCHEMA
from resi.moments import iso_micros
from resi.validation.history import (
    BAD,
    DAY,
    STATIC_FIELDS,
    Facts,
    State,
    _utc_dates,
    is_stale,
    judge_claim,
    states_at,
    timeline,
)
from resi.validation.truth import Snapshot, TruthResult

_NAN = float("nan")


def _holds(value: object, typ: pa.DataType) -> bool:
    """Whether a column of ``typ`` holds ``value`` exactly, so that equality in arrow is equality in Python
    (strings as UTF-8, integers within float64's exact range, no NaN, no bool)."""
    if value is None:
        return True
    if pa.types.is_string(typ):
        if not isinstance(value, str):
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**53 and (pa.types.is_integer(typ) or pa.types.is_floating(typ))
    return isinstance(value, float) and pa.types.is_floating(typ) and not math.isnan(value)


MAX_STATES = 64
"""A listing with more possible states than this at one moment goes through ``judge_claim``."""


def _steady_states(facts: Facts, low: float, high: float, epoch_start: float) -> tuple[list[State], bool] | None:
    """(states, stale) when the listing's history gives the same states all over ``[low, high]``, else None."""
    events = timeline(facts)
    bounds = [bound for event in events for bound in event[:2]]
    if any(math.isnan(bound) or low < bound <= high for bound in bounds):
        return None
    states = states_at(events, low)
    if not 0 < len(states) <= MAX_STATES:
        return None
    return sorted(states, key=repr), is_stale(events, epoch_start, low)


@dataclass(frozen=True)
class SnapshotIndex:
    snapshot: Snapshot
    ids: pa.Array
    """Every listing id of the snapshot; position ``i`` is listing ``i`` below."""
    simple: np.ndarray
    """Per listing: whether its rows are judged by the kernels."""
    static: pa.Table
    """The static fields of every listing, typed as the schema (nulls for listings that are not simple)."""
    stale: np.ndarray
    first_state: np.ndarray
    """Per listing: where its possible states begin in the state arrays below (``state_count`` of them)."""
    state_count: np.ndarray
    status: pa.Array
    price: pa.Array
    listed: np.ndarray
    """(states, 2) float: when the state's listing was listed (NaN when it was not)."""
    since: np.ndarray
    """(states, 2) float: when its status began (NaN when unknown)."""
    first_date: pa.Array
    last_date: pa.Array
    """The UTC dates the listing date may be (null when the state was never listed)."""
    epoch_start: float
    window: tuple[float, float]
    """The scrape times over which the simple listings keep their one state."""

    @classmethod
    def build(cls, snapshot: Snapshot, epoch_start: float, deadline: float) -> SnapshotIndex:
        """The index of ``snapshot`` for rows scraped in ``[epoch_start, deadline]`` (to the second)."""
        names = list(snapshot.facts)
        n = len(names)
        types = {name: LISTING_SCHEMA.field(name).type for name in STATIC_FIELDS}
        static = {name: [None] * n for name in STATIC_FIELDS}
        simple, stale = np.zeros(n, bool), np.zeros(n, bool)
        first_state, state_count = np.zeros(n, np.int64), np.zeros(n, np.int64)
        status: list[str | None] = []
        price: list[float | None] = []
        listed: list[tuple[float, float]] = []
        since: list[tuple[float, float]] = []
        first: list[str | None] = []
        last: list[str | None] = []
        window = (epoch_start, deadline + 1.0)
        for i, listing_id in enumerate(names):
            facts = snapshot.facts[listing_id]
            try:
                values = facts["static"]
                if not all(_holds(values.get(name), types[name]) for name in STATIC_FIELDS):
                    continue
                found = _steady_states(facts, *window, epoch_start)
                if found is None or not all(_holds(s.price, pa.float64()) and _holds(s.status, pa.string()) for s in found[0]):
                    continue
                dates = [_utc_dates(s.listed) if s.listed is not None else (None, None) for s in found[0]]
            except Exception:  # facts the kernels cannot read: judge_claim judges them (as it always would)
                continue
            simple[i], stale[i] = True, found[1]
            first_state[i], state_count[i] = len(status), len(found[0])
            for name in STATIC_FIELDS:
                static[name][i] = values.get(name)
            for state, (day_one, day_last) in zip(found[0], dates):
                status.append(state.status)
                price.append(state.price)
                listed.append(state.listed or (_NAN, _NAN))
                since.append(state.since or (_NAN, _NAN))
                first.append(day_one)
                last.append(day_last)
        return cls(
            snapshot,
            pa.array(names, pa.string()),
            simple,
            pa.table({name: pa.array(static[name], types[name]) for name in STATIC_FIELDS}),
            stale,
            first_state,
            state_count,
            pa.array(status, pa.string()),
            pa.array(price, pa.float64()),
            np.array(listed, np.float64).reshape(-1, 2),
            np.array(since, np.float64).reshape(-1, 2),
            pa.array(first, pa.string()),
            pa.array(last, pa.string()),
            epoch_start,
            window,
        )


def _same(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Python's ``a == b`` per row, None equal to None."""
    equal = pc.fill_null(pc.equal(a, b), False)
    return to_numpy(pc.or_(equal, pc.and_(pc.is_null(a), pc.is_null(b))))


def scrape_moments(stamps: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, readable): ``parse_iso(stamp).timestamp()`` of the timestamps :func:`resi.moments.iso_micros`
    reads, within 285 years of 1970 (beyond, int -> float rounds where Python's int / int does not). Rows
    that are not readable must be judged by ``parse_iso`` itself."""
    encoded = pc.dictionary_encode(contiguous(stamps))  # a page's rows share their time: read each time once
    micros, readable = iso_micros(encoded.dictionary)
    readable &= np.abs(micros) < 2**53
    at = to_numpy(pc.fill_null(encoded.indices, -1)).astype(np.int64)  # null: -1, the appended "unreadable"
    return np.append(micros / 1e6, 0.0)[at], np.append(readable, False)[at]


def compare(rows: pa.Table, index: SnapshotIndex) -> tuple[TruthResult, list[str], np.ndarray]:
    """``reference.split_by_snapshot`` of ``rows`` (valid rows with distinct listing ids) at once: the result,
    the pool's ids and, per row, whether the snapshot proved it."""
    rows = rows.combine_chunks()
    n = rows.num_rows
    result = TruthResult(valid=n)
    where = to_numpy(pc.fill_null(pc.index_in(rows["listing_id"], value_set=index.ids), -1)).astype(np.int64)
    found = where >= 0
    moments, readable = scrape_moments(rows["scraped_timestamp"])
    fast = found & readable & (moments >= index.window[0]) & (moments <= index.window[1])
    fast[fast] = index.simple[where[fast]]
    # 0: proven; 1..: a reason (BAD or UNPROVEN) from the table below; the definition's order of checks
    reasons = [f"mismatch:{name}" for name in STATIC_FIELDS] + ["stale", "listing_status", "price", "days_on_market"]
    code = np.zeros(n, np.int16)
    rows_at = np.flatnonzero(fast)
    if len(rows_at):
        code[rows_at] = _codes(rows.take(pa.array(rows_at)), index, where[rows_at], moments[rows_at])
    bad_codes = len(STATIC_FIELDS) + 1
    outcome: list[tuple[int, str, str]] = []  # (row, kind, reason) of the rows the kernels leave to judge_claim
    slow = np.flatnonzero(found & ~fast)
    if len(slow):
        for i, row in zip(slow, rows.take(pa.array(slow)).to_pylist()):
            verdict = judge_claim(row, index.snapshot.facts[row["listing_id"]], index.epoch_start)
            outcome.append((int(i), *verdict) if verdict else (int(i), "", ""))
    zipcodes = rows["zipcode"]
    listing_ids = rows["listing_id"]
    proven = (code == 0) & fast
    snapshot_bad = fast & (code > 0) & (code <= bad_codes)
    differs = fast & (code > bad_codes)
    for code_value in np.unique(code[snapshot_bad | differs]):
        name = reasons[code_value - 1]
        count = int(np.count_nonzero(fast & (code == code_value)))
        if code_value <= bad_codes:
            result.bad[name] += count
            result.snapshot_bad += count
        else:
            result.pooled[f"differs:{name}"] += count
    pool = ~found | differs
    for at, kind, reason in outcome:
        if not kind:
            proven[at] = True
        elif kind == BAD:
            result.bad[reason] += 1
            result.snapshot_bad += 1
        else:
            pool[at] = True
            result.pooled[f"differs:{reason}"] += 1
    missing = int(np.count_nonzero(~found))
    if missing:
        result.pooled["not_in_snapshot"] += missing
    result.matched_by_zip = tally(zipcodes.filter(pa.array(proven)))
    result.pool_by_zip = tally(zipcodes.filter(pa.array(pool)))
    result.pooled = Counter(dict(sorted(result.pooled.items())))
    return result, listing_ids.filter(pa.array(pool)).to_pylist(), proven


def _codes(rows: pa.Table, index: SnapshotIndex, at: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Per row of simple listings: 0 when proven, else 1 + the position of its reason (see ``compare``)."""
    take = pa.array(at)
    code = np.zeros(rows.num_rows, np.int16)
    open_ = np.ones(rows.num_rows, bool)

    def flag(number: int, bad: np.ndarray) -> None:
        hit = open_ & bad
        code[hit] = number
        open_[hit] = False

    for number, name in enumerate(STATIC_FIELDS, start=1):
        flag(number, ~_same(rows[name], index.static[name].take(take)))
    number = len(STATIC_FIELDS)
    flag(number + 1, index.stale[at])
    # every (row, possible state of its listing) pair; a row keeps the states that agree so far
    counts = index.state_count[at]
    pair_row = np.repeat(np.arange(len(at)), counts)
    pair_state = np.repeat(index.first_state[at] - np.cumsum(counts) + counts, counts) + np.arange(len(pair_row))
    row_take, state_take = pa.array(pair_row), pa.array(pair_state)
    status = rows["listing_status"].take(row_take)
    status_ok = _same(status, index.status.take(state_take))
    price_ok = status_ok & _same(rows["price"].take(row_take), index.price.take(state_take))
    dated = rows.select(["listing_date", "days_on_market"]).take(row_take)
    dates_ok = price_ok & _dates_fit(dated, index, pair_state, moments[pair_row], status)

    def any_per_row(ok: np.ndarray) -> np.ndarray:
        return np.bincount(pair_row[ok], minlength=len(at)) > 0

    flag(number + 2, ~any_per_row(status_ok))
    flag(number + 3, ~any_per_row(price_ok))
    flag(number + 4, ~any_per_row(dates_ok))
    return code


def _dates_fit(rows: pa.Table, index: SnapshotIndex, at: np.ndarray, moments: np.ndarray, status: pa.Array) -> np.ndarray:
    """``history.dates_fit`` per (row, state at ``at``)."""
    listed, since = index.listed[at], index.since[at]
    has_listed = ~np.isnan(listed[:, 0])
    date, days = rows["listing_date"], rows["days_on_market"]
    no_dates = to_numpy(pc.and_(pc.is_null(date), pc.is_null(days)))
    both = to_numpy(pc.and_(pc.is_valid(date), pc.is_valid(days)))
    take = pa.array(at)
    in_range = to_numpy(
        pc.fill_null(
            pc.and_(pc.less_equal(index.first_date.take(take), date), pc.less_equal(date, index.last_date.take(take))), False
        )
    )
    sold = to_numpy(pc.equal(status, "sold")) & ~np.isnan(since[:, 0])
    end0 = np.where(sold, since[:, 0], moments)
    end1 = np.where(sold, since[:, 1], moments)
    with np.errstate(invalid="ignore"):
        low = np.floor((end0 - listed[:, 1]) / DAY)
        high = np.floor((end1 - listed[:, 0]) / DAY)
    count = to_numpy(pc.fill_null(days, 0)).astype(np.int64)
    fits = both & in_range & (low <= count) & (count <= high)
    return np.where(has_listed, fits, no_dates)
