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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from resi.arrays import contiguous, tally, to_numpy
from resi.epochs import utcnow
from resi.listings.checks import table_problems
from resi.listings.schema import READ_SCHEMA, address_groups, address_keys
from resi.scraping.source import (
    Drop,
    ListingSource,
    Normalizer,
    SourceBlocked,
    SourceError,
    SourceRefused,
    TableNormalizer,
    normalize_each,
)


@dataclass
class ZipcodeOutcome:
    zipcode: str
    rows: pa.Table = field(default_factory=READ_SCHEMA.empty_table)
    drops: Counter = field(default_factory=Counter)
    records: int = 0
    requests: int = 0
    error: str | None = None
    error_kind: str | None = None
    """``blocked`` (403: a proxy or a pause is needed), ``refused`` (4xx for this request) or ``unavailable``."""
    finished_at: datetime | None = None
    facts: dict[str, dict] = field(default_factory=dict)
    """Listing id -> the source's facts, for the kept rows (only when the pipeline keeps facts: validators)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def clean_records(
    records: Iterable[dict],
    normalize: Normalizer,
    scraped_at: datetime,
    zipcode: str | None,
    drops: Counter,
    normalize_table: TableNormalizer | None = None,
) -> pa.Table:
    """Normalize and validate: the plausible rows (of ``zipcode``, when given); ``drops`` counts the rest.
    ``normalize_table``, when given, is the same normalizer for many records at once (the source's fast path)."""
    records = records if isinstance(records, list) else list(records)
    if normalize_table is not None:
        table = normalize_table(records, scraped_at, drops)
    else:
        table = normalize_each(records, normalize, scraped_at, drops)[0]
    if zipcode is not None:
        inside = pc.fill_null(pc.equal(table["zipcode"], zipcode), False)
        outside = table.num_rows - pc.sum(inside).as_py() if table.num_rows else 0
        if outside:
            drops["outside_zipcode"] += outside
            table = table.filter(inside)
    return drop_implausible(table, drops)


def drop_implausible(table: pa.Table, drops: Counter) -> pa.Table:
    """The rows without a plausibility problem; ``drops`` counts the others by problem."""
    problems = table_problems(table)
    for problem, rows in tally(problems).items():
        drops[f"invalid:{problem}"] += rows
    return table.filter(pc.is_null(problems))


def dedupe(table: pa.Table, drops: Counter) -> pa.Table:
    """The rows whose listing id and address + zipcode (``address_key``) no row kept before them has;
    ``drops`` counts the others (``duplicate_id`` first, then ``duplicate_address``).

    At once: while no row is the first of its id without being the first of its address (or the other way
    round), the rows kept are exactly the first of each id, and every other one is a duplicate id (a
    duplicate's id was first seen on a row that was first of both, so kept). Otherwise the rows are walked in
    order, on integer codes."""
    n = table.num_rows
    if n == 0:
        return table
    ids = _codes(table["listing_id"])
    keys = _address_codes(table["address"], table["zipcode"])
    first_id, first_key = _firsts(ids), _firsts(keys)
    if not (first_id ^ first_key).any():
        keep = first_id
        if not keep.all():
            drops["duplicate_id"] += int(n - keep.sum())
    else:
        keep = np.zeros(n, bool)
        seen_ids, seen_keys = bytearray(int(ids.max()) + 1), bytearray(int(keys.max()) + 1)
        for row, (listing, key) in enumerate(zip(ids.tolist(), keys.tolist())):
            if seen_ids[listing]:
                drops["duplicate_id"] += 1
            elif seen_keys[key]:
                drops["duplicate_address"] += 1
            else:
                seen_ids[listing] = seen_keys[key] = 1
                keep[row] = True
    return table if keep.all() else table.filter(pa.array(keep))


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer per row, equal where the values are (null is one value)."""
    return to_numpy(pc.dictionary_encode(contiguous(values), null_encoding="encode").indices)


def _address_codes(addresses: pa.ChunkedArray, zipcodes: pa.ChunkedArray) -> np.ndarray:
    """:func:`_codes` of the address keys, computing keys only for the rows that share an address group
    (equal keys are always in one group, so a row alone in its group has a key no other row has)."""
    groups = _codes(address_groups(addresses, zipcodes))
    shared = np.flatnonzero(np.bincount(groups)[groups] > 1)
    if len(shared):
        at = pa.array(shared)
        groups = groups.copy()  # arrow's buffer is read-only
        groups[shared] = _codes(address_keys(addresses.take(at), zipcodes.take(at))) + int(groups.max()) + 1
    return groups


def _firsts(codes: np.ndarray) -> np.ndarray:
    """Whether each row is the first with its code."""
    first = np.zeros(len(codes), bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return first


def _facts_of(records: list[dict], extract, observed: datetime, keep: set[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
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
        line = (
            f"zipcodes {self.done}/{self.total} ({self.failed} failed)  rows {self.rows}  {rate:.0f} rows/s  "
            f"last {outcome.zipcode}: {outcome.rows.num_rows} rows" + (f" FAILED {outcome.error}" if outcome.error else "")
        )
        if self.live:
            sys.stderr.write("\r\033[K" + line + ("\n" if self.done == self.total else ""))
            sys.stderr.flush()
        else:
            logger.info(line)


class Pipeline:
    def __init__(
        self,
        source: ListingSource,
        concurrency: int = 4,
        zipcode_attempts: int = 3,
        retry_pause: float = 5.0,
        keep_facts: bool = False,
    ):
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
                outcome.error_kind = (
                    "blocked"
                    if isinstance(exc, SourceBlocked)
                    else "refused"
                    if isinstance(exc, SourceRefused)
                    else "unavailable"
                )
                if isinstance(exc, SourceBlocked) or attempt + 1 == self.zipcode_attempts:
                    break
                await asyncio.sleep(self.retry_pause * (attempt + 1) * random.uniform(0.5, 1.0))
                continue
            outcome.error = outcome.error_kind = None
            outcome.records, outcome.requests = len(result.records), result.requests
            scraped_at = utcnow()
            rows = clean_records(
                result.records, self.source.normalize, scraped_at, zipcode, outcome.drops, self.source.normalize_table
            )
            outcome.rows = dedupe(rows, outcome.drops)
            if self.keep_facts:
                outcome.facts = _facts_of(
                    result.records, self.source.facts, scraped_at, set(outcome.rows["listing_id"].to_pylist())
                )
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
