"""One epoch in plain data, for the validation tests: its context and parameters, honest listing rows and an
upload of them, and what the source says about each row (its facts and a snapshot)."""

from __future__ import annotations

from datetime import datetime, timedelta

from resi.epochs import UTC, iso_z
from resi.listings.files import build_epoch_files, table_from_rows
from resi.listings.upload import Submission
from resi.validation.history import STATIC_FIELDS
from resi.validation.params import EpochContext, ValidationParams
from resi.validation.snapshot_index import SnapshotIndex, compare
from resi.validation.truth import Snapshot

START = datetime(2025, 10, 1, 16, tzinfo=UTC)
DEADLINE = START + timedelta(hours=4)
ORIGIN = "https://www.realtor.com"
CTX = EpochContext("2025-10-01T16-00-00", "nonce1", START, DEADLINE, {"08540": 5, "19103": 5}, 10, ORIGIN)
P = ValidationParams()
SCRAPED = iso_z(START + timedelta(hours=1))


def row(i: int, zipcode: str = "08540", **changes) -> dict:
    base = {
        "address": f"{i} Oak St, Princeton, NJ {zipcode}",
        "zipcode": zipcode,
        "price": 500_000.0 + i,
        "bedrooms": 3,
        "bathrooms": 2.5,
        "sqft": 1800,
        "listing_date": "2025-09-01",
        "property_type": "house",
        "listing_status": "active",
        "days_on_market": 30,
        "mls_id": f"NJ{i}",
        "source_url": f"{ORIGIN}/realestateandhomes-detail/{i}-Oak-St_Princeton_NJ_{zipcode}_M{1000 + i}",
        "scraped_timestamp": SCRAPED,
        "listing_id": str(1000 + i),
        "city": "Princeton",
        "state": "NJ",
        "latitude": 40.35,
        "longitude": -74.66,
    }
    base.update(changes)
    return base


def honest_rows(n_per_zip: int = 5) -> list[dict]:
    return [row(i) for i in range(n_per_zip)] + [row(100 + i, "19103") for i in range(n_per_zip)]


def submission(
    rows: list[dict], hotkey="hk1", nonce="nonce1", epoch="2025-10-01T16-00-00", modified=None, tamper=None, meta_hotkey=None
) -> Submission:
    files = build_epoch_files(
        table_from_rows(rows),
        hotkey=meta_hotkey or hotkey,
        epoch_id=epoch,
        nonce=nonce,
        scraper_name="t",
        scraper_version="1",
        started_at=START,
        finished_at=START,
    )
    parquet, meta = files.parquet, files.metadata_json
    if tamper:
        parquet, meta = tamper(parquet, meta)
    at = modified or START + timedelta(hours=2)
    return Submission(hotkey, 1, parquet, meta, at, at)


LISTED = datetime(2025, 9, 1, 12, tzinfo=UTC).timestamp()
"""Every test listing was listed then: at the default scrape time (17:00 on Oct 1) it is 30 days old."""
AFTER = (DEADLINE + timedelta(minutes=10)).timestamp()
T = (START + timedelta(hours=1)).timestamp()
H = 3600.0


def facts(r: dict, *, status=None, price=None, events=None, observed=AFTER) -> dict:
    """What the source says about ``r``'s listing (by default: it agrees, listed on Sep 1 at ``r``'s price)."""
    return {
        "listing_id": r["listing_id"],
        "observed_at": observed,
        "static": {k: r[k] for k in STATIC_FIELDS},
        "status": status or r["listing_status"],
        "price": r["price"] if price is None else price,
        "events": [[LISTED, LISTED + 1, "listed", r["price"]]] if events is None else events,
    }


def snap(rows, **overrides) -> Snapshot:
    return Snapshot({r["listing_id"]: facts(r, **overrides) for r in rows}, {"08540": 5, "19103": 5})


SNAP = snap(honest_rows())


def split_by_snapshot(valid: dict[str, dict], snapshot: Snapshot, epoch_start: float = START.timestamp()):
    """The validator's comparison of these rows with the snapshot (a table against the epoch's index)."""
    index = SnapshotIndex.build(snapshot, epoch_start, DEADLINE.timestamp())
    return compare(table_from_rows(list(valid.values())), index)[:2]
