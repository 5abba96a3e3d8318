"""Cheating miners, for the local network only: each runs the real miner loop with a dishonest strategy, so
anyone can watch the validators catch it. Nothing in production imports this module.

    python -m resi.localnet.cheaters --strategy fabricate [the miner's flags]

Strategies (``docs/scoring.md`` names the rule that stops each):
- nothing: never uploads (register it without a process)
- wrong_nonce: a nonce of its own
- fabricate: 10% invented rows
- pad: 30% duplicates and address variants
- unassigned: scrapes zipcodes it was not given
- copy: re-uploads another miner's files later (``--victim-dir``)
- bomb: a parquet bomb
- stale: re-sends the previous epoch's listings
- sold: uploads the recently sold listings of its zipcodes (sold search), as sold
- sold_active: the same listings relabelled active
- unprovable: 10% invented rows with ids the source refuses, so that their refetches fail
- bias: every price 2% higher
- late: keeps its upload credentials and posts its files a second after the deadline
- dom_shift: every days-on-market one day more (a drift the old ±2-day tolerance let through)
- sqft_nudge: every area 1% larger (the old ±2% tolerance)
- zip_sqft: the sizes of its largest zipcodes made up, about 6% of its rows (a small dose of proven-false rows)
- wrong_page: every source_url another listing's page that ends in the row's own zipcode and id
- respell_copy: another miner's rows re-uploaded with every scraped_timestamp spelled another way

Hostile files (each aimed at the validator itself, not at the score):
- nested_metadata: a metadata.json of 60 KB of nested lists
- expanding_column: one 300 KB address, dictionary-encoded, on every row (gigabytes once written out)
- nan_values: every price NaN
- bad_utf8: city names that are not UTF-8
- impossible_times: scraped at second 99, listed on February 31
- huge_ids: listing ids of 300 KB
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from resi import constants as c
from resi import market
from resi.api.models import Assignment
from resi.constants import SCHEMA_VERSION
from resi.epochs import iso_z, parse_iso, utcnow
from resi.listings.files import (
    EpochFiles,
    EpochMetadata,
    ScraperInfo,
    build_epoch_files,
    read_metadata,
    sha256_hex,
)
from resi.listings.schema import LISTING_SCHEMA, READ_SCHEMA
from resi.miner.checkpoint import UPLOADED, Checkpoint
from resi.miner.strategy import Honest, PackageInfo
from resi.scraping.pipeline import clean_records
from resi.storage import StorageError, upload_post

STRATEGIES = (
    "nothing",
    "wrong_nonce",
    "fabricate",
    "pad",
    "unassigned",
    "copy",
    "bomb",
    "stale",
    "sold",
    "sold_active",
    "unprovable",
    "bias",
    "late",
    "dom_shift",
    "sqft_nudge",
    "zip_sqft",
    "wrong_page",
    "respell_copy",
    "nested_metadata",
    "expanding_column",
    "nan_values",
    "bad_utf8",
    "impossible_times",
    "huge_ids",
)


def _files(rows: pa.Table, assignment: Assignment, info: PackageInfo, **overrides) -> EpochFiles:
    values = {"hotkey": info.hotkey, "epoch_id": assignment.epoch_id, "nonce": assignment.nonce}
    values.update(overrides)
    return build_epoch_files(
        rows,
        scraper_name=info.scraper_name,
        scraper_version=info.scraper_version,
        started_at=info.started_at,
        finished_at=utcnow(),
        **values,
    )


class WrongNonce(Honest):
    name = "wrong_nonce"

    def package(self, rows, assignment, info):
        return _files(rows, assignment, info, nonce="0" * 16) if rows.num_rows else None


class Fabricate(Honest):
    """Real rows plus 10% invented ones: plausible values, well-formed URLs, ids the source never had."""

    name = "fabricate"
    share = 0.10

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        rng = random.Random(assignment.epoch_id)
        fakes = []
        for i in range(max(1, round(len(real) * self.share))):
            base = dict(rng.choice(real))
            fake_id = f"1{base['zipcode']}9{rng.randint(10**9, 10**10 - 1)}"  # well formed, never issued
            origin = base["source_url"].split("/realestateandhomes-detail/")[0]
            base.update(
                listing_id=fake_id,
                address=f"{9000 + i} Invented Way, {base['city']}, {base['state']} {base['zipcode']}",
                price=round(base["price"] * rng.uniform(0.8, 1.2), -2),
                mls_id=f"FAKE{rng.randint(10**6, 10**7)}",
                source_url=f"{origin}/realestateandhomes-detail/{9000 + i}-Invented-Way_{base['city'].replace(' ', '-')}_"
                f"{base['state']}_{base['zipcode']}_M{fake_id}",
            )
            fakes.append(base)
        table = pa.Table.from_pylist(real + fakes, schema=READ_SCHEMA)
        return _files(table, assignment, info)


class Pad(Honest):
    """Real rows plus 15% exact duplicates and 15% address variants under new ids."""

    name = "pad"

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        n = max(1, round(len(real) * 0.15))
        variants = []
        for row in real[:n]:
            street, rest = row["address"].split(",", 1)
            variants.append(
                dict(
                    row,
                    listing_id=row["listing_id"] + "7",
                    address=street.upper() + " ," + rest,
                    source_url=row["source_url"] + "7",
                )
            )
        table = pa.Table.from_pylist(real + real[-n:] + variants, schema=READ_SCHEMA)
        return _files(table, assignment, info)


class Unassigned(Honest):
    """Scrapes as many zipcodes as it was given, just not those."""

    name = "unassigned"

    def zipcodes(self, assignment):
        assigned = {z.zipcode for z in assignment.zipcodes}
        state = assignment.zipcodes[0].state if assignment.zipcodes else None
        pool = sorted(z for z, info in market.catalog().items() if z not in assigned and info.state == state)
        return random.Random(assignment.epoch_id).sample(pool, min(len(pool), len(assigned)))


class Bomb(Honest):
    """A parquet of two million identical rows: a few KB on the wire, gigabytes if decoded."""

    name = "bomb"

    def package(self, rows, assignment, info):
        if rows.num_rows == 0:
            return None
        return _files(rows.take(pa.array([0] * 2_000_000)), assignment, info)


@dataclass
class Copy(Honest):
    """Waits for another miner's files of the epoch, then uploads them, later, under its own hotkey."""

    victim_dir: Path = Path(".")
    name: str = "copy"

    def zipcodes(self, assignment):
        return []  # scrapes nothing

    def package(self, rows, assignment, info):
        """Waits (until the deadline) for the victim's upload to be verified by the victim itself, so that the
        copy lands after the original however busy the machine is, then takes the victim's saved files."""
        folder = self.victim_dir / "epochs" / assignment.epoch_id
        victim = Checkpoint(self.victim_dir / "checkpoint.db", readonly=True)
        while utcnow() < assignment.submission_deadline:
            record = victim.epoch(assignment.epoch_id) if victim.path.exists() else None
            if record is not None and record.state == UPLOADED and (folder / "metadata.json").exists():
                break
            time.sleep(0.2)
        else:
            return None
        time.sleep(1.1)  # S3 keeps whole seconds: a later second, not a tie
        meta = read_metadata((folder / "metadata.json").read_bytes())
        parquet = (folder / "listings.parquet").read_bytes()
        meta = meta.model_copy(update={"hotkey": info.hotkey})
        return EpochFiles(parquet, meta)


@dataclass
class RespellCopy(Copy):
    """Another miner's rows under its own hotkey, every ``scraped_timestamp`` spelled another way
    (``...T17:00:00.537Z`` -> ``...T17:00:00.537000+00:00``): another file, other strings, the same instants."""

    name: str = "respell_copy"

    def package(self, rows, assignment, info):
        copied = super().package(rows, assignment, info)
        if copied is None:
            return None
        table = pq.read_table(pa.BufferReader(copied.parquet))
        stamps = [
            s[:-1] + ("000+00:00" if "." in s else ".000000+00:00") if s and s.endswith("Z") else s
            for s in table["scraped_timestamp"].to_pylist()
        ]
        at = table.schema.get_field_index("scraped_timestamp")
        return _files(table.set_column(at, "scraped_timestamp", pa.array(stamps, pa.string())), assignment, info)


class Stale(Honest):
    """Scrapes every epoch but uploads the previous epoch's listings (nothing in its first epoch)."""

    name = "stale"

    def package(self, rows, assignment, info):
        checkpoint = Checkpoint(info.data_dir / "checkpoint.db")
        previous = [e for e in _epochs(checkpoint) if e < assignment.epoch_id]
        if not previous:
            return None
        old = checkpoint.rows(previous[-1])
        if old.num_rows == 0:
            return None
        return _files(old, assignment, info)


def _epochs(checkpoint: Checkpoint) -> list[str]:
    with sqlite3.connect(checkpoint.path) as db:
        return sorted(r[0] for r in db.execute("SELECT DISTINCT epoch_id FROM zipcodes"))


class Sold(Honest):
    """Scrapes nothing current: uploads the listings of its zipcodes sold in the last day (Realtor's sold
    search), as sold. Real listings with real values; just not the epoch's current ones."""

    name = "sold"
    relabel = False

    def __init__(self, source):
        self.source = source

    def zipcodes(self, assignment):
        return []

    def package(self, rows, assignment, info):
        drops: Counter = Counter()
        tables = []
        for z in assignment.zipcodes:
            result = self.source._search(z.zipcode, 1)
            tables.append(
                clean_records(result.records, self.source.normalize, utcnow(), z.zipcode, drops, self.source.normalize_table)
            )
        table = pa.concat_tables(tables) if tables else READ_SCHEMA.empty_table()
        if table.num_rows == 0:
            return None
        if self.relabel:
            out = []
            for row in table.to_pylist():
                listed = datetime.fromisoformat(row["listing_date"]) if row["listing_date"] else None
                scraped = parse_iso(row["scraped_timestamp"])
                dom = (scraped.date() - listed.date()).days if listed else None
                out.append(dict(row, listing_status="active", days_on_market=dom))
            table = pa.Table.from_pylist(out, schema=READ_SCHEMA)
        return _files(table, assignment, info)


class SoldActive(Sold):
    name = "sold_active"
    relabel = True


class Unprovable(Honest):
    """Real rows plus 10% invented ones whose ids are of the row rule's form but not of the site's: the site
    refuses to look them up, so a validator can never prove them false by a "not found"."""

    name = "unprovable"

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        if not real:
            return None
        rng = random.Random(assignment.epoch_id + info.hotkey)
        fakes = []
        for i in range(max(1, round(len(real) * 0.10))):
            base = dict(rng.choice(real))
            fake_id = str(rng.randint(10**11, 10**12 - 1))  # 12 digits: a Realtor-like id the site never issues
            origin = base["source_url"].split("/realestateandhomes-detail/")[0]
            base.update(
                listing_id=fake_id,
                address=f"{7000 + i} Hidden Ln, {base['city']}, {base['state']} {base['zipcode']}",
                source_url=f"{origin}/realestateandhomes-detail/{7000 + i}-Hidden-Ln_{base['city'].replace(' ', '-')}_"
                f"{base['state']}_{base['zipcode']}_M{fake_id}",
            )
            fakes.append(base)
        return _files(pa.Table.from_pylist(real + fakes, schema=READ_SCHEMA), assignment, info)


def _edited(name: str, edit):
    class Edited(Honest):
        def package(self, rows, assignment, info):
            if rows.num_rows == 0:
                return None
            return _files(pa.Table.from_pylist([edit(r) for r in rows.to_pylist()], schema=READ_SCHEMA), assignment, info)

    Edited.name = name
    return Edited


Bias = _edited("bias", lambda r: dict(r, price=round(r["price"] * 1.02, 2)))
DomShift = _edited(
    "dom_shift", lambda r: dict(r, days_on_market=None if r["days_on_market"] is None else r["days_on_market"] + 1)
)
SqftNudge = _edited("sqft_nudge", lambda r: dict(r, sqft=None if r["sqft"] is None else round(r["sqft"] * 1.01)))


class ZipSqft(Honest):
    """Sizes made up in its largest zipcodes, just past 5% of its rows: a few percent of rows, each aimed at
    one market, where every other value is true."""

    name = "zip_sqft"
    share = 0.06

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        if not real:
            return None
        counts = Counter(r["zipcode"] for r in real)
        target, falsified = set(), 0
        for zipcode, n in counts.most_common():
            if falsified >= self.share * len(real):
                break
            target.add(zipcode)
            falsified += n
        out = [dict(r, sqft=(r["sqft"] or 1000) + 250) if r["zipcode"] in target else r for r in real]
        return _files(pa.Table.from_pylist(out, schema=READ_SCHEMA), assignment, info)


class WrongPage(Honest):
    """Every ``source_url`` a well-formed listing page that ends in the row's own ``_<zipcode>_M<id>``, but
    with the slug of another listing of the zipcode: the row checks' shape is met, the page is not this
    listing's."""

    name = "wrong_page"

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        if not real:
            return None
        out = []
        for i, row in enumerate(real):
            other = real[(i + 1) % len(real)]
            page, _ = other["source_url"].rsplit("_M", 1)
            page = page[: -len(other["zipcode"])] + row["zipcode"]
            if other["listing_id"] == row["listing_id"]:
                page = page.replace("/realestateandhomes-detail/", "/realestateandhomes-detail/0-", 1)
            out.append(dict(row, source_url=f"{page}_M{row['listing_id']}"))
        return _files(pa.Table.from_pylist(out, schema=READ_SCHEMA), assignment, info)


class Late(Honest):
    """Takes its upload credentials before the deadline, waits, and posts its files a second after it: the
    presigned policy expires at the deadline, so S3 refuses (and the gate would call anything that landed
    in the deadline's second late)."""

    name = "late"

    def __init__(self, api_url: str, signer):
        self.api_url = api_url
        self.signer = signer

    def package(self, rows, assignment, info):
        if rows.num_rows == 0:
            return None
        files = _files(rows, assignment, info)
        asyncio.run(self._post_late(files, assignment))
        return None  # nothing for the honest upload path: the epoch is over

    async def _post_late(self, files: EpochFiles, assignment: Assignment) -> None:
        from resi.api.client import ResiApiClient

        async with ResiApiClient(self.api_url, self.signer) as api, aiohttp.ClientSession() as session:
            access = await api.miner_upload_access(force=True)
            await asyncio.sleep(max(0.0, (assignment.submission_deadline - utcnow()).total_seconds() + 1.0))
            prefix = c.miner_epoch_prefix(info_hotkey := self.signer.hotkey, assignment.epoch_id)
            for name, data in ((c.LISTINGS_FILE, files.parquet), (c.METADATA_FILE, files.metadata_json)):
                try:
                    await upload_post(session, access.url, access.fields, prefix + name, data)
                    logger.warning(f"late upload of {name} for {info_hotkey} was ACCEPTED by S3")
                except StorageError as exc:
                    logger.info(f"late upload of {name} refused by S3, as it should be: {exc}")


def _raw_files(table: pa.Table, assignment: Assignment, info: PackageInfo, metadata: bytes | None = None) -> EpochFiles:
    """Files around an arbitrary arrow table (any types, any encoding), with metadata that is right about it."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    counts = Counter(str(z) for z in table["zipcode"].to_pylist())
    meta = EpochMetadata(
        hotkey=info.hotkey,
        epoch_id=assignment.epoch_id,
        nonce=assignment.nonce,
        schema_version=SCHEMA_VERSION,
        row_count=table.num_rows,
        zipcode_counts=dict(counts),
        parquet_sha256=sha256_hex(data),
        scraper=ScraperInfo(name="hostile", version="1"),
        started_at=iso_z(info.started_at),
        finished_at=iso_z(utcnow()),
    )
    if metadata is not None:
        return _Prebuilt(data, meta, metadata)
    return EpochFiles(data, meta)


@dataclass(frozen=True)
class _Prebuilt(EpochFiles):
    raw_metadata: bytes = b""

    @property
    def metadata_json(self) -> bytes:
        return self.raw_metadata


class Hostile(Honest):
    """Real rows, then one column (or the metadata) made hostile to the reader."""

    name = "hostile"

    def package(self, rows, assignment, info):
        if rows.num_rows == 0:
            return None
        return self.hostile(rows.cast(LISTING_SCHEMA), assignment, info)

    def hostile(self, rows, assignment, info):
        """The package made hostile: each kind of hostile upload says how."""
        raise NotImplementedError


class NestedMetadata(Hostile):
    name = "nested_metadata"

    def hostile(self, rows, assignment, info):
        return _raw_files(rows, assignment, info, metadata=b"[" * 30_000 + b"]" * 30_000)


class ExpandingColumn(Hostile):
    """20,000 rows whose address is one 300 KB value, dictionary-encoded: a file of a few KB, 6 GB once every
    row's address is written out."""

    name = "expanding_column"

    def hostile(self, rows, assignment, info):
        n = 20_000
        rows = rows.take(pa.array([i % rows.num_rows for i in range(n)]))
        big = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array(["9 " + "x" * 300_000]))
        return _raw_files(rows.set_column(rows.schema.get_field_index("address"), "address", big), assignment, info)


class NanValues(Hostile):
    name = "nan_values"

    def hostile(self, rows, assignment, info):
        nan = pa.array([float("nan")] * rows.num_rows, pa.float64())
        return _raw_files(rows.set_column(rows.schema.get_field_index("price"), "price", nan), assignment, info)


class BadUtf8(Hostile):
    name = "bad_utf8"

    def hostile(self, rows, assignment, info):
        bad = pa.array([b"Princ\xff\xfeton"] * rows.num_rows, pa.binary()).view(pa.string())
        return _raw_files(rows.set_column(rows.schema.get_field_index("city"), "city", bad), assignment, info)


class ImpossibleTimes(Hostile):
    name = "impossible_times"

    def hostile(self, rows, assignment, info):
        out = [
            dict(
                r,
                scraped_timestamp=r["scraped_timestamp"][:17] + "99.000Z",
                listing_date=r["listing_date"][:5] + "02-31" if r["listing_date"] else "2025-02-31",
            )
            for r in rows.to_pylist()
        ]
        return _raw_files(pa.Table.from_pylist(out, schema=LISTING_SCHEMA), assignment, info)


class HugeIds(Hostile):
    name = "huge_ids"

    def hostile(self, rows, assignment, info):
        out = [dict(r, listing_id="1" + str(i) * 300_000) for i, r in enumerate(rows.to_pylist()[:20])]
        return _raw_files(pa.Table.from_pylist(out, schema=LISTING_SCHEMA), assignment, info)


def strategy(name: str, victim_dir: Path | None = None, miner_argv: list[str] | None = None):
    """The strategy ``name``; some need the miner's own flags (its source, its API and keys)."""
    table = {
        "wrong_nonce": WrongNonce,
        "fabricate": Fabricate,
        "pad": Pad,
        "unassigned": Unassigned,
        "bomb": Bomb,
        "stale": Stale,
        "unprovable": Unprovable,
        "bias": Bias,
        "dom_shift": DomShift,
        "sqft_nudge": SqftNudge,
        "zip_sqft": ZipSqft,
        "wrong_page": WrongPage,
        "nested_metadata": NestedMetadata,
        "expanding_column": ExpandingColumn,
        "nan_values": NanValues,
        "bad_utf8": BadUtf8,
        "impossible_times": ImpossibleTimes,
        "huge_ids": HugeIds,
    }
    if name in ("copy", "respell_copy"):
        return (Copy if name == "copy" else RespellCopy)(victim_dir=victim_dir or Path("."))
    if name in ("sold", "sold_active", "late"):
        from resi.chain.keys import load_signer
        from resi.miner.cli import build_parser
        from resi.scraping.flags import source_from_args

        args = build_parser().parse_args(miner_argv or [])
        if name == "late":
            return Late(args.api_url, load_signer(args.wallet_name, args.wallet_hotkey, args.wallet_path))
        return (Sold if name == "sold" else SoldActive)(source_from_args(args))
    if name not in table:
        raise SystemExit(f"unknown strategy {name!r}; one of {', '.join(s for s in STRATEGIES if s != 'nothing')}")
    return table[name]()


def main(argv: list[str] | None = None) -> int:
    from resi.miner.cli import main as miner_main

    argv = list(sys.argv[1:] if argv is None else argv)
    name = victim = None
    for flag in ("--strategy", "--victim-dir"):
        if flag in argv:
            i = argv.index(flag)
            value = argv[i + 1]
            del argv[i : i + 2]
            if flag == "--strategy":
                name = value
            else:
                victim = Path(value)
    if name is None:
        print(__doc__)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return miner_main(argv, strategy=strategy(name, victim, argv))


if __name__ == "__main__":
    sys.exit(main())
