"""The scraping pipeline: search -> normalize -> validate -> dedupe -> write.

Per zipcode, with bounded concurrency across zipcodes. A record that cannot become a plausible row is
dropped with a counted reason; rows are deduplicated by listing id, then by address + zipcode. A zipcode
whose search fails is retried a few times with backoff and otherwise reported as failed: the rest goes on.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from resi.arrays import tally
from resi.epochs import utcnow
from resi.listings.checks import table_problems
from resi.listings.schema import READ_SCHEMA, address_key
from resi.scraping.source import Drop, ListingSource, Normalizer, SourceBlocked, SourceError


@dataclass
class ZipcodeOutcome:
    zipcode: str
    rows: pa.Table = field(default_factory=READ_SCHEMA.empty_table)
    drops: Counter = field(default_factory=Counter)
    records: int = 0
    requests: int = 0
    error: str | None = None
    finished_at: datetime | None = None
    facts: dict[str, dict] = field(default_factory=dict)
    """Listing id -> the source's facts, for the kept rows (only when the pipeline keeps facts: validators)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def clean_records(records: Iterable[dict], normalize: Normalizer, scraped_at: datetime, zipcode: str | None,
                  drops: Counter, chunk: int = 4096) -> pa.Table:
    """Normalize and validate: the plausible rows (of ``zipcode``, when given); ``drops`` counts the rest.

    Rows become arrow columns a chunk at a time, so row dicts die young (cheap for the garbage collector).
    """
    batches = []
    rows: list[dict] = []

    def flush() -> None:
        if rows:
            columns = [[row[name] for row in rows] for name in READ_SCHEMA.names]
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(col, f.type) for col, f in zip(columns, READ_SCHEMA)], schema=READ_SCHEMA))
            rows.clear()

    for record in records:
        try:
            row = normalize(record, scraped_at)
        except Drop as drop:
            drops[drop.reason] += 1
            continue
        if zipcode is not None and row["zipcode"] != zipcode:
            drops["outside_zipcode"] += 1
            continue
        rows.append(row)
        if len(rows) >= chunk:
            flush()
    flush()
    return drop_implausible(pa.Table.from_batches(batches, schema=READ_SCHEMA), drops)


def drop_implausible(table: pa.Table, drops: Counter) -> pa.Table:
    """The rows without a plausibility problem; ``drops`` counts the others by problem."""
    problems = table_problems(table)
    for problem, rows in tally(problems).items():
        drops[f"invalid:{problem}"] += rows
    return table.filter(pc.is_null(problems))


def dedupe(table: pa.Table, drops: Counter) -> pa.Table:
    """First row of each listing id and of each address + zipcode; ``drops`` counts the duplicates."""
    seen_ids: set[str] = set()
    seen_addresses: set[str] = set()
    keep = []
    for listing_id, address, zipcode in zip(table["listing_id"].to_pylist(), table["address"].to_pylist(),
                                            table["zipcode"].to_pylist()):
        if listing_id in seen_ids:
            drops["duplicate_id"] += 1
            keep.append(False)
            continue
        key = address_key(address, zipcode)
        if key in seen_addresses:
            drops["duplicate_address"] += 1
            keep.append(False)
            continue
        seen_ids.add(listing_id)
        seen_addresses.add(key)
        keep.append(True)
    return table.filter(pa.array(keep, pa.bool_())) if not all(keep) else table


def _facts_of(records: list[dict], extract, observed: datetime, keep: set[str]) -> dict[str, dict]:
    out = {}
    for record in records:
        try:
            facts = extract(record, observed)
        except Drop:
            continue
        if facts["listing_id"] in keep:
            out.setdefault(facts["listing_id"], facts)
    return out


class Progress:
    """One updating line on a terminal; plain log lines otherwise (pm2 logs) or when ``quiet``."""

    def __init__(self, total: int, quiet: bool = False):
        self.total = total
        self.done = self.rows = self.failed = 0
        self.started = time.monotonic()
        self.live = not quiet and sys.stderr.isatty()

    def update(self, outcome: ZipcodeOutcome) -> None:
        self.done += 1
        self.rows += outcome.rows.num_rows
        self.failed += 0 if outcome.ok else 1
        rate = self.rows / max(1e-6, time.monotonic() - self.started)
        line = (f"zipcodes {self.done}/{self.total} ({self.failed} failed)  rows {self.rows}  {rate:.0f} rows/s  "
                f"last {outcome.zipcode}: {outcome.rows.num_rows} rows" + (f" FAILED {outcome.error}" if outcome.error else ""))
        if self.live:
            sys.stderr.write("\r\033[K" + line + ("\n" if self.done == self.total else ""))
            sys.stderr.flush()
        else:
            logger.info(line)


class Pipeline:
    def __init__(self, source: ListingSource, concurrency: int = 4, zipcode_attempts: int = 3,
                 retry_pause: float = 5.0, keep_facts: bool = False):
        self.source = source
        self.concurrency = max(1, concurrency)
        self.zipcode_attempts = max(1, zipcode_attempts)
        self.retry_pause = retry_pause
        self.keep_facts = keep_facts

    async def scrape_zipcode(self, zipcode: str) -> ZipcodeOutcome:
        """Search, normalize, validate and dedupe one zipcode (retrying the search on source errors)."""
        outcome = ZipcodeOutcome(zipcode)
        for attempt in range(self.zipcode_attempts):
            try:
                result = await self.source.search(zipcode)
            except SourceError as exc:
                outcome.error = str(exc)
                if isinstance(exc, SourceBlocked) or attempt + 1 == self.zipcode_attempts:
                    break
                await asyncio.sleep(self.retry_pause * (attempt + 1) * random.uniform(0.5, 1.0))
                continue
            outcome.error = None
            outcome.records, outcome.requests = len(result.records), result.requests
            scraped_at = utcnow()
            rows = clean_records(result.records, self.source.normalize, scraped_at, zipcode, outcome.drops)
            outcome.rows = dedupe(rows, outcome.drops)
            if self.keep_facts:
                outcome.facts = _facts_of(result.records, self.source.facts, scraped_at,
                                          set(outcome.rows["listing_id"].to_pylist()))
            break
        outcome.finished_at = utcnow()
        return outcome

    async def run(
        self,
        zipcodes: list[str],
        on_done: Callable[[ZipcodeOutcome], Awaitable[None] | None] | None = None,
        quiet: bool = False,
    ) -> list[ZipcodeOutcome]:
        """Every zipcode, ``concurrency`` at a time; ``on_done`` sees each outcome as it finishes."""
        semaphore = asyncio.Semaphore(self.concurrency)
        progress = Progress(len(zipcodes), quiet)

        async def one(zipcode: str) -> ZipcodeOutcome:
            async with semaphore:
                outcome = await self.scrape_zipcode(zipcode)
            progress.update(outcome)
            if on_done is not None:
                maybe = on_done(outcome)
                if asyncio.iscoroutine(maybe):
                    await maybe
            return outcome

        return list(await asyncio.gather(*(one(z) for z in zipcodes)))
