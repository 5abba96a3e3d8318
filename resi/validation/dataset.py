"""The epoch's validated listings, folded miner by miner: memory grows with the listings, not with miners x rows.

Each judged miner gives its *evidence* (:func:`evidence`): per valid row the listing id, the scrape instant,
the time-varying values and whether the snapshot proved the row; the parent adds which sampled rows the
refetch confirmed. :class:`EpochDataset` keeps per listing: the first and last proven scrape, the latest
proven state, whether any proof was the snapshot's, and every distinct proven (status, price) with the first
time it was proven; per miner only the listings it proved and delivered (int32 positions), so that copies can
be left out of the counts once copy detection has run. Only proven rows enter: nothing extrapolated,
unproven or proven false. The result does not depend on the order miners are added in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, to_numpy
from resi.listings.schema import LISTING_SCHEMA, LISTING_STATUSES
from resi.listings.validated import LISTINGS_SCHEMA, OBSERVATIONS_SCHEMA, TIME
from resi.moments import instants

EVIDENCE_SCHEMA = pa.schema(
    [
        pa.field("listing_id", pa.string()),
        pa.field("scraped_us", pa.int64()),
        pa.field("status", pa.int8()),
        pa.field("price", pa.float64()),
        pa.field("listed_day", pa.int32()),
        pa.field("days_on_market", pa.int32()),
        pa.field("proven", pa.bool_()),
    ]
)
"""What one miner's judging gives the dataset: one row per valid row of its file, its values as numbers
(``status``: position in ``LISTING_STATUSES``; ``listed_day``: days since 1970; -1 where there is none)."""

_STATUS = pa.array(LISTING_STATUSES, pa.string())
_NONE = -1
_MAX = np.iinfo(np.int64).max
_MIN = np.iinfo(np.int64).min


def evidence(valid: pa.Table, proven: np.ndarray) -> pa.Table:
    """The dataset's evidence of one miner's valid rows (distinct listing ids); ``proven``: per row, whether
    the snapshot proved it."""
    micros, known = instants(valid["scraped_timestamp"])
    status = pc.fill_null(pc.index_in(valid["listing_status"], value_set=_STATUS), _NONE)
    listed = pc.fill_null(pc.cast(pc.cast(valid["listing_date"], pa.date32()), pa.int32()), _NONE)
    return pa.table(
        {
            "listing_id": contiguous(valid["listing_id"]),
            "scraped_us": pa.array(micros, pa.int64()),
            "status": contiguous(pc.cast(status, pa.int8())),
            "price": contiguous(valid["price"]),
            "listed_day": contiguous(listed),
            "days_on_market": contiguous(pc.cast(pc.fill_null(valid["days_on_market"], _NONE), pa.int32())),
            "proven": pa.array(np.asarray(proven, bool) & known),
        },
        schema=EVIDENCE_SCHEMA,
    )


def _grow(array: np.ndarray, size: int, fill: Any) -> np.ndarray:
    """``array`` with room for ``size`` rows (doubling), new rows filled with ``fill``."""
    if len(array) >= size:
        return array
    grown = np.full((max(size, 2 * len(array), 1024), *array.shape[1:]), fill, array.dtype)
    grown[: len(array)] = array
    return grown


def _typed(values: list[Any], typ: pa.DataType) -> pa.Array:
    """A column of proven values: equal in Python to the row's typed value (``3.0 == 3``), written as the
    schema's type."""
    if pa.types.is_integer(typ):
        values = [None if v is None else int(v) for v in values]
    elif pa.types.is_floating(typ):
        values = [None if v is None else float(v) for v in values]
    return pa.array(values, typ)


@dataclass
class EpochDataset:
    epoch_id: str
    batch_rows: int = 100_000
    """Evidence rows gathered before they are folded in one go (one hash join per batch, not per miner)."""
    _names: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    """Every listing id seen, in order of first appearance: position ``i`` is listing ``i`` below."""
    _first: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Per listing: the earliest proven scrape (microseconds)."""
    _last: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    """Per listing: the scrape of its latest proven state (microseconds)."""
    _state: np.ndarray = field(default_factory=lambda: np.empty((0, 4), np.float64))
    """Per listing, its latest proven state: status code, price, list day, days on market (-1: none). Of two
    states proven at the same instant the greater (column by column) is kept: the same result in any order."""
    _snapshot: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    """Per listing: whether some row of it was proven by the snapshot (else by a refetch)."""
    _proving: dict[str, np.ndarray] = field(default_factory=dict)
    _delivering: dict[str, np.ndarray] = field(default_factory=dict)
    _observed: list[np.ndarray] = field(default_factory=list)
    """(listing, status code, price, scrape) rows, reduced to the first of each (listing, status, price)."""
    _batch: list[tuple[str, pa.Table, np.ndarray]] = field(default_factory=list)
    """Miners added and not folded yet: (hotkey, evidence, refetch-confirmed per row)."""
    _batch_rows: int = 0

    def add(self, hotkey: str, rows: pa.Table, confirmed: Iterable[str] = ()) -> None:
        """One miner's evidence (:data:`EVIDENCE_SCHEMA`, distinct listing ids) and the ids of its sampled rows
        the refetch confirmed; each miner once per epoch. Folded a batch of miners at a time."""
        if not rows.schema.equals(EVIDENCE_SCHEMA):
            raise ValueError("evidence of another schema")
        confirmed = sorted(set(confirmed))
        refetched = (
            to_numpy(pc.is_in(rows["listing_id"], pa.array(confirmed, pa.string())))
            if confirmed
            else np.zeros(rows.num_rows, bool)
        )
        self._batch.append((hotkey, rows, refetched.astype(bool)))
        self._batch_rows += rows.num_rows
        if self._batch_rows >= self.batch_rows:
            self._fold()

    def _fold(self) -> None:
        """Fold the batch: hash aggregations over its rows, then per-listing arrays only."""
        if not self._batch:
            return
        batch, self._batch, self._batch_rows = self._batch, [], 0
        table = pa.concat_tables([rows for _, rows, _ in batch]).combine_chunks()
        ids = table["listing_id"].chunk(0) if table.num_rows else pa.array([], pa.string())
        at = self._positions(ids)
        proven = to_numpy(table["proven"]) | np.concatenate([refetched for _, _, refetched in batch])
        bounds = np.cumsum([0] + [rows.num_rows for _, rows, _ in batch])
        at32 = at.astype(np.int32)
        for (hotkey, _, _), low, high in zip(batch, bounds[:-1], bounds[1:]):
            self._delivering[hotkey] = at32[low:high].copy()
            self._proving[hotkey] = at32[low:high][proven[low:high]]
        if not proven.any():
            return
        rows = (
            table.select(["scraped_us", "status", "price", "listed_day", "days_on_market", "proven"])
            .append_column("at", pa.array(at))
            .filter(pa.array(proven))
        )
        per = rows.group_by("at").aggregate([("scraped_us", "min"), ("scraped_us", "max"), ("proven", "any")])
        where = to_numpy(per["at"])
        self._first[where] = np.minimum(self._first[where], to_numpy(per["scraped_us_min"]))
        self._snapshot[where] |= to_numpy(per["proven_any"]).astype(bool)
        # each listing's latest row of the batch (the greatest state among rows of its latest instant) ...
        latest = np.full(len(self._names), _MIN)
        latest[where] = to_numpy(per["scraped_us_max"])
        scraped = to_numpy(rows["scraped_us"])
        candidates = rows.filter(pa.array(scraped == latest[to_numpy(rows["at"])]))
        state = np.column_stack(
            [to_numpy(candidates[name]).astype(np.float64) for name in ("status", "price", "listed_day", "days_on_market")]
        )
        at_c = to_numpy(candidates["at"])
        order = np.lexsort((*state.T[::-1], at_c))
        last_of_each = order[np.r_[at_c[order][1:] != at_c[order][:-1], True]]
        where, state, scraped = at_c[last_of_each], state[last_of_each], latest[at_c[last_of_each]]
        # ... kept when it is later than the listing's state so far, or as late and greater
        current, last = self._state[where], self._last[where]
        take = scraped > last
        undecided = scraped == last
        for k in range(state.shape[1]):
            take |= undecided & (state[:, k] > current[:, k])
            undecided &= state[:, k] == current[:, k]
        self._state[where[take]] = state[take]
        self._last[where[take]] = scraped[take]
        first_seen = rows.group_by(["at", "status", "price"]).aggregate([("scraped_us", "min")])
        self._observed.append(
            np.column_stack(
                [to_numpy(first_seen[name]).astype(np.float64) for name in ("at", "status", "price", "scraped_us_min")]
            )
        )
        self._reduce()

    def _positions(self, ids: pa.Array) -> np.ndarray:
        """The position of each of ``ids``, new ones appended in order of first appearance (hash joins)."""
        known = len(self._names)
        at = to_numpy(pc.fill_null(pc.index_in(ids, value_set=self._names), -1)).astype(np.int64)
        new = at < 0
        if new.any():
            fresh = pc.unique(ids.filter(pa.array(new)))
            self._names = pa.concat_arrays([self._names, fresh])
            at[new] = known + to_numpy(pc.index_in(ids.filter(pa.array(new)), value_set=fresh)).astype(np.int64)
        n = len(self._names)
        self._first, self._last = _grow(self._first, n, _MAX), _grow(self._last, n, _MIN)
        self._state, self._snapshot = _grow(self._state, n, _NONE), _grow(self._snapshot, n, False)
        return at

    def _reduce(self) -> None:
        """Keep one row per (listing, status, price): the first time it was proven (a hash aggregation)."""
        if len(self._observed) < 2:
            return
        rows = np.concatenate(self._observed)
        table = pa.table({"at": rows[:, 0], "status": rows[:, 1], "price": rows[:, 2], "scraped": rows[:, 3]})
        first = table.group_by(["at", "status", "price"]).aggregate([("scraped", "min")])
        self._observed = [np.column_stack([to_numpy(first[name]) for name in ("at", "status", "price", "scraped_min")])]

    def build(self, copies: Iterable[str], static: Callable[[str, bool], dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
        """(listings, observations) as published (:mod:`resi.listings.validated`), sorted. ``copies``: hotkeys
        whose upload is a copy (not counted as proving or delivering); ``static(listing_id, by_snapshot)``: the
        listing's static fields as the proof saw them (the snapshot's, or the refetch's)."""
        self._fold()
        left_out = set(copies)
        n = len(self._names)
        names = np.array(self._names.to_pylist(), object)
        proving = np.zeros(n, np.int64)
        delivering = np.zeros(n, np.int64)
        for hotkey, at in self._proving.items():
            if hotkey not in left_out:
                proving += np.bincount(at, minlength=n)
        for hotkey, at in self._delivering.items():
            if hotkey not in left_out:
                delivering += np.bincount(at, minlength=n)
        proven = np.flatnonzero(self._first[:n] != _MAX)
        observed = self._observed[0] if self._observed else np.empty((0, 4))
        observations = pa.table(
            {
                "epoch_id": pa.array([self.epoch_id] * len(observed), pa.string()),
                "listing_id": pa.array(names[observed[:, 0].astype(np.int64)].tolist(), pa.string()),
                "scraped_at": pa.array(observed[:, 3].astype(np.int64), TIME),
                "listing_status": _STATUS.take(pa.array(observed[:, 1].astype(np.int64))),
                "price": pa.array(observed[:, 2], pa.float64()),
            },
            schema=OBSERVATIONS_SCHEMA,
        )
        observations = observations.sort_by(
            [("listing_id", "ascending"), ("scraped_at", "ascending"), ("listing_status", "ascending"), ("price", "ascending")]
        )
        state = self._state[proven]
        columns: dict[str, list[Any]] = {f.name: [] for f in LISTING_SCHEMA if f.name != "scraped_timestamp"}
        statics = [static(names[i], bool(self._snapshot[i])) for i in proven]
        for name in columns:
            if name in ("listing_status", "price", "listing_date", "days_on_market"):
                continue
            columns[name] = [values.get(name) for values in statics]
        columns["listing_status"] = _STATUS.take(pa.array(state[:, 0].astype(np.int64))).to_pylist()
        columns["price"] = state[:, 1].tolist()
        dates = state[:, 2].astype(np.int64)
        columns["listing_date"] = pa.array(dates, pa.int32()).cast(pa.date32()).cast(pa.string()).to_pylist()
        columns["listing_date"] = [None if d == _NONE else v for d, v in zip(dates, columns["listing_date"])]
        columns["days_on_market"] = [None if d == _NONE else int(d) for d in state[:, 3]]
        table = pa.table(
            {
                **{name: _typed(values, LISTINGS_SCHEMA.field(name).type) for name, values in columns.items()},
                "epoch_id": pa.array([self.epoch_id] * len(proven), pa.string()),
                "proof": pa.array(["snapshot" if self._snapshot[i] else "refetch" for i in proven], pa.string()),
                "miners_proving": pa.array(proving[proven], pa.int32()),
                "miners_delivering": pa.array(delivering[proven], pa.int32()),
                "first_proven_at": pa.array(self._first[proven], TIME),
                "last_proven_at": pa.array(self._last[proven], TIME),
            },
            schema=LISTINGS_SCHEMA,
        )
        return table.sort_by([("zipcode", "ascending"), ("listing_id", "ascending")]), observations
