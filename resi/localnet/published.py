"""Epochs of validated listings as a validator publishes them, over a market that moves: for tests and
benchmarks of the consumers' side (``resi-data``), at any scale (a year of 4-hour epochs is 22 million rows).

Each epoch, of the listings on the market: 1% go pending, 4% of the pending are sold (shown as sold in that
epoch, gone from the next), 0.3% are withdrawn (gone), 1.5% cut their price by 1-8%, 0.2% raise it, and new
listings replace those gone; 0.02% of withdrawn listings come back. :class:`Epoch` keeps the truth each file
was written from, so tests can compute what the views must answer without SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from resi.api.signing import sign_manifest
from resi.constants import EPOCH_ID_FORMAT, EPOCH_LENGTH
from resi.listings.schema import LISTING_PAGES, PROPERTY_TYPES
from resi.listings.validated import (
    FOLDER,
    LISTINGS_FILE,
    LISTINGS_SCHEMA,
    MANIFEST_FILE,
    OBSERVATIONS_FILE,
    OBSERVATIONS_SCHEMA,
    TIME,
    manifest,
    parquet_bytes,
)

STATUSES = np.array(["active", "pending", "sold"])


@dataclass
class Epoch:
    epoch_id: str
    start: datetime
    ids: np.ndarray
    """Listing ids on the market this epoch (int64), with their zipcode, status code, price, list day below."""
    zipcode: np.ndarray
    status: np.ndarray
    price: np.ndarray
    listed_day: np.ndarray
    changed: np.ndarray
    """Per listing: whether its status or price changed during the epoch (two observations)."""
    before_status: np.ndarray
    before_price: np.ndarray


class Market:
    """A market of ``listings`` over ``zipcodes`` zipcodes that moves every epoch (deterministic by ``seed``)."""

    def __init__(
        self,
        listings: int = 10_000,
        zipcodes: int = 20,
        seed: int = 0,
        start: datetime = datetime(2025, 1, 1, tzinfo=timezone.utc),
    ):
        self.rng = np.random.default_rng(seed)
        self.zips = np.array([f"{19100 + i:05d}" for i in range(zipcodes)])
        self.target = listings
        self.next_id = 1_000_000
        self.start = start
        self.n = 0
        self.ids = np.empty(0, np.int64)
        self.zipcode = np.empty(0, np.int64)
        self.status = np.empty(0, np.int64)
        self.price = np.empty(0, np.float64)
        self.listed_day = np.empty(0, np.int64)
        self.withdrawn: list[tuple] = []
        self._add(listings)

    def _add(self, count: int) -> None:
        rng = self.rng
        day = int((self.start + self.n * EPOCH_LENGTH).timestamp() // 86_400)
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + count)])
        self.next_id += count
        self.zipcode = np.concatenate([self.zipcode, rng.integers(0, len(self.zips), count)])
        self.status = np.concatenate([self.status, np.zeros(count, np.int64)])
        self.price = np.concatenate([self.price, np.round(rng.lognormal(12.8, 0.5, count), -3)])
        self.listed_day = np.concatenate([self.listed_day, day - rng.integers(0, 120, count)])

    def epochs(self, count: int) -> Iterator[Epoch]:
        for _ in range(count):
            yield self.step()

    def step(self) -> Epoch:
        """The next epoch: the market moves during it; the epoch shows each listing's state at its end."""
        rng, n = self.rng, len(self.ids)
        sold_before = self.status == 2
        keep = ~sold_before  # sold in the previous epoch: gone now
        withdraw = (self.status == 0) & (rng.random(n) < 0.003)
        for i in np.flatnonzero(withdraw & keep)[:50]:
            self.withdrawn.append((self.ids[i], self.zipcode[i], self.price[i], self.listed_day[i]))
        keep &= ~withdraw
        for name in ("ids", "zipcode", "status", "price", "listed_day"):
            setattr(self, name, getattr(self, name)[keep])
        back = [w for w in self.withdrawn if rng.random() < 0.0002 * 50]
        for w in back:
            self.withdrawn.remove(w)
            self.ids = np.append(self.ids, w[0])
            self.zipcode = np.append(self.zipcode, w[1])
            self.status = np.append(self.status, 0)
            self.price = np.append(self.price, w[2])
            self.listed_day = np.append(self.listed_day, w[3])
        self._add(max(0, self.target - len(self.ids)))
        n = len(self.ids)
        before_status, before_price = self.status.copy(), self.price.copy()
        r = rng.random(n)
        self.status = np.where((self.status == 0) & (r < 0.01), 1, self.status)
        self.status = np.where((before_status == 1) & (r < 0.04), 2, self.status)
        cut = (self.status == 0) & (rng.random(n) < 0.015)
        raise_ = (self.status == 0) & ~cut & (rng.random(n) < 0.002)
        factor = np.where(cut, 1 - rng.uniform(0.01, 0.08, n), np.where(raise_, 1 + rng.uniform(0.01, 0.05, n), 1))
        self.price = np.round(self.price * factor, -2)
        start = self.start + self.n * EPOCH_LENGTH
        self.n += 1
        changed = (self.status != before_status) | (self.price != before_price)
        order = np.argsort(self.ids)
        return Epoch(
            start.strftime(EPOCH_ID_FORMAT),
            start,
            self.ids[order],
            self.zips[self.zipcode[order]],
            self.status[order],
            self.price[order],
            self.listed_day[order],
            changed[order],
            before_status[order],
            before_price[order],
        )


def tables(epoch: Epoch) -> tuple[pa.Table, pa.Table]:
    """The epoch's two published tables, as a validator writes them (sorted)."""
    n = len(epoch.ids)
    first = int(epoch.start.timestamp() * 1e6) + 3_600_000_000
    last = first + np.where(epoch.changed, 2 * 3_600_000_000, 0)
    ids = epoch.ids.astype(str)
    number = (epoch.ids % 9000 + 1).astype(str)
    listed = pa.array(epoch.listed_day.astype(np.int32), pa.int32()).cast(pa.date32())
    now_day = int(epoch.start.timestamp() // 86_400)
    listings = pa.table(
        {
            "address": pa.array(np.char.add(np.char.add(number, " Market St, Philadelphia, PA "), epoch.zipcode)),
            "zipcode": pa.array(epoch.zipcode),
            "price": pa.array(epoch.price),
            "bedrooms": pa.array(epoch.ids % 5 + 1),
            "bathrooms": pa.array((epoch.ids % 4 + 2) / 2.0),
            "sqft": pa.array(epoch.ids % 3000 + 600),
            "listing_date": listed.cast(pa.string()),
            "property_type": pa.array(np.array(PROPERTY_TYPES)[epoch.ids % 4]),
            "listing_status": pa.array(STATUSES[epoch.status]),
            "days_on_market": pa.array(now_day - epoch.listed_day),
            "mls_id": pa.array(np.char.add("PA", ids)),
            "source_url": pa.array(
                np.char.add(
                    np.char.add(
                        np.char.add(f"https://www.realtor.com{LISTING_PAGES}", number),
                        np.char.add("-Market-St_Philadelphia_PA_", epoch.zipcode),
                    ),
                    np.char.add("_M", ids),
                )
            ),
            "listing_id": pa.array(ids),
            "city": pa.array(["Philadelphia"] * n),
            "state": pa.array(["PA"] * n),
            "latitude": pa.array(39.9 + (epoch.ids % 100) / 1000.0),
            "longitude": pa.array(-75.1 - (epoch.ids % 100) / 1000.0),
            "epoch_id": pa.array([epoch.epoch_id] * n),
            "proof": pa.array(["snapshot"] * n),
            "miners_proving": pa.array(np.full(n, 3, np.int32)),
            "miners_delivering": pa.array(np.full(n, 3, np.int32)),
            "first_proven_at": pa.array(np.full(n, first, np.int64), TIME),
            "last_proven_at": pa.array(last, TIME),
        },
        schema=LISTINGS_SCHEMA,
    ).sort_by([("zipcode", "ascending"), ("listing_id", "ascending")])
    changed = np.flatnonzero(epoch.changed)
    obs_ids = np.concatenate([ids, ids[changed]])
    obs_time = np.concatenate([np.full(n, first, np.int64), np.full(len(changed), first + 2 * 3_600_000_000)])
    obs_status = np.concatenate([epoch.before_status, epoch.status[changed]])
    obs_price = np.concatenate([epoch.before_price, epoch.price[changed]])
    observations = pa.table(
        {
            "epoch_id": pa.array([epoch.epoch_id] * len(obs_ids)),
            "listing_id": pa.array(obs_ids),
            "scraped_at": pa.array(obs_time, TIME),
            "listing_status": pa.array(STATUSES[obs_status]),
            "price": pa.array(obs_price),
        },
        schema=OBSERVATIONS_SCHEMA,
    ).sort_by([("listing_id", "ascending"), ("scraped_at", "ascending"), ("listing_status", "ascending"), ("price", "ascending")])
    return listings, observations


def publish(epoch: Epoch, signer, root: Path, expected: dict[str, int] | None = None) -> Path:
    """Write the epoch as ``signer`` publishes it in the bucket's layout under ``root``; the folder."""
    listings, observations = tables(epoch)
    files = {LISTINGS_FILE: parquet_bytes(listings), OBSERVATIONS_FILE: parquet_bytes(observations)}
    counts = expected or {z: int(c) for z, c in zip(*np.unique(epoch.zipcode, return_counts=True))}
    signed = sign_manifest(signer, manifest(epoch.epoch_id, 1, "0x" + "00" * 32, listings, files, "generated", counts))
    folder = root / "validators" / signer.hotkey / epoch.epoch_id / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST_FILE).write_text(json.dumps(signed, sort_keys=True))
    return folder
