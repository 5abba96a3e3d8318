"""A generated epoch with a crowd of miners: the validator's benchmark and its equivalence tests judge it.

One epoch of the local listing world (its real 4-hour drift): an assignment of about ``rows`` listings, the
validator's snapshot after the deadline, what the source answers for any listing id afterwards (the refetch),
and per miner a ``listings.parquet`` + ``metadata.json`` written with the project's own writer. Most miners are
honest (each with its own scrape time, so no two share a row fingerprint); every 16th fabricates a tenth of its
rows, every 24th pads with duplicates, every 32nd copies the file of the miner before it and every 32nd + 8
copies most of its rows. Everything is a pure function of the seed and the miner's index.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from resi import market
from resi.epochs import UTC, iso_z
from resi.listings.files import build_epoch_files
from resi.listings.schema import LISTING_SCHEMA
from resi.listings.upload import Submission
from resi.localnet.world import ListingWorld, WorldConfig, to_realtor
from resi.scraping.normalize import normalize_realtor, realtor_facts
from resi.validation.params import EpochContext
from resi.validation.truth import Snapshot

ORIGIN = "https://www.realtor.com"
START = datetime(2026, 3, 2, 16, tzinfo=UTC)
EPOCH = timedelta(hours=4)


def kind_of(index: int) -> str:
    """What miner ``index`` does: ``honest``, ``fabricate``, ``pad``, ``copy`` (the whole file of the miner
    before it) or ``partial_copy`` (most of its rows)."""
    if index % 32 == 7:
        return "copy"
    if index % 32 == 15:
        return "partial_copy"
    if index % 16 == 5:
        return "fabricate"
    if index % 24 == 11:
        return "pad"
    return "honest"


@dataclass
class Epoch:
    ctx: EpochContext
    snapshot: Snapshot
    answers: dict[str, dict | None]
    """Listing id -> what the source answers when asked again after the deadline (None: no such listing)."""
    rows: pa.Table
    """The listings of the assignment as a scrape one hour into the epoch sees them."""
    scraped: datetime

    def refetch(self, ids: list[str]) -> dict[str, dict | None]:
        return {i: self.answers.get(i) for i in ids}


def make_epoch(rows: int = 10_000, seed: str = "bench") -> Epoch:
    world = ListingWorld(WorldConfig(seed=seed, scale=1.0))
    start, deadline = START, START + EPOCH
    scraped = start + timedelta(hours=1)
    expected: dict[str, int] = {}
    records: list[dict] = []
    for zipcode in sorted(market.catalog()):
        homes = world.current(zipcode, start.timestamp())
        if not homes:
            continue
        expected[zipcode] = len(homes)
        records += [to_realtor(h, ORIGIN) for h in world.current(zipcode, scraped.timestamp())]
        if sum(expected.values()) >= rows:
            break
    table = pa.Table.from_pylist([normalize_realtor(r, scraped) for r in records], schema=LISTING_SCHEMA)
    observed = deadline + timedelta(minutes=10)
    facts: dict[str, dict] = {}
    counts: dict[str, int | None] = {}
    for zipcode in expected:
        homes = world.current(zipcode, observed.timestamp())
        counts[zipcode] = len(homes)
        for home in homes:
            fact = realtor_facts(to_realtor(home, ORIGIN), observed)
            facts[fact["listing_id"]] = fact
    answers: dict[str, dict | None] = {}
    for listing_id in table["listing_id"].to_pylist():
        found = world.home(listing_id, observed.timestamp())
        answers[listing_id] = None if found is None else realtor_facts(to_realtor(found, ORIGIN, history=True), observed)
    ctx = EpochContext(
        epoch_id=start.strftime("%Y-%m-%dT%H-%M-%S"),
        nonce="bench-nonce",
        start=start,
        deadline=deadline,
        expected=expected,
        tolerance_percent=10,
        source_origin=ORIGIN,
    )
    return Epoch(ctx, Snapshot(facts, counts), answers, table, scraped)


def _with(table: pa.Table, name: str, values: list) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def _stamped(table: pa.Table, moment: datetime) -> pa.Table:
    return _with(table, "scraped_timestamp", [iso_z(moment)] * table.num_rows)


def _fabricated(table: pa.Table, rng: random.Random, share: float) -> pa.Table:
    """A share of the rows with ids (and matching page URLs) of listings that do not exist."""
    ids = table["listing_id"].to_pylist()
    urls = table["source_url"].to_pylist()
    for i in rng.sample(range(len(ids)), int(len(ids) * share)):
        fake = str(rng.randrange(10**16, 10**17))
        urls[i] = urls[i].rsplit("_M", 1)[0] + "_M" + fake
        ids[i] = fake
    return _with(_with(table, "listing_id", ids), "source_url", urls)


def _padded(table: pa.Table, rng: random.Random, share: float) -> pa.Table:
    """Extra rows: the same listings again, half of them under another id with the address spelled otherwise."""
    picks = pa.array(sorted(rng.sample(range(table.num_rows), int(table.num_rows * share))))
    extra = table.take(picks)
    respelled = [i % 2 == 1 for i in range(extra.num_rows)]
    addresses = [a.upper().replace(" ST,", " STREET,") if r else a for a, r in zip(extra["address"].to_pylist(), respelled)]
    extra = _with(extra, "address", addresses)
    fakes = _fabricated(extra.filter(pa.array(respelled)), rng, 1.0)
    return pa.concat_tables([table, extra.filter(pc.invert(pa.array(respelled))), fakes])


def miner_table(epoch: Epoch, index: int) -> pa.Table:
    """The rows miner ``index`` uploads."""
    rng = random.Random(f"miner-{index}")
    kind = kind_of(index)
    if kind in ("copy", "partial_copy"):
        victim = miner_table(epoch, index - 1)
        if kind == "copy":
            return victim
        own = _stamped(epoch.rows, epoch.scraped + timedelta(milliseconds=index + 1))
        keep = int(victim.num_rows * 0.7)
        return pa.concat_tables([victim.slice(0, keep), own.slice(keep)])
    table = _stamped(epoch.rows, epoch.scraped + timedelta(milliseconds=index + 1))
    if kind == "fabricate":
        table = _fabricated(table, rng, 0.1)
    elif kind == "pad":
        table = _padded(table, rng, 0.05)
    order = pc.sort_indices(table["listing_id"]) if index % 2 else None  # miners write in different orders
    return table.take(order) if order is not None else table


def submission(epoch: Epoch, index: int) -> Submission:
    """Miner ``index``'s upload as the validator downloads it (landed ``index`` seconds apart, in order)."""
    files = build_epoch_files(
        miner_table(epoch, index),
        hotkey=f"hotkey-{index:04d}",
        epoch_id=epoch.ctx.epoch_id,
        nonce=epoch.ctx.nonce,
        scraper_name="population",
        scraper_version="1",
        started_at=epoch.ctx.start,
        finished_at=epoch.scraped,
    )
    return submission_from_files(epoch, index, files.parquet, files.metadata_json)


def landed(epoch: Epoch, index: int) -> datetime:
    """When miner ``index``'s files landed (``index`` seconds apart, in order)."""
    return epoch.scraped + timedelta(minutes=30, seconds=index)


def submission_from_files(epoch: Epoch, index: int, listings: bytes, metadata: bytes) -> Submission:
    return Submission(f"hotkey-{index:04d}", index, listings, metadata, landed(epoch, index), landed(epoch, index))
