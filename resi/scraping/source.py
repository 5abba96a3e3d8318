"""What a listing source is: search one zipcode for its current listings, fetch one listing again by id.

Sources return raw records in their own shape; each source names the normalizer that turns a record
into a schema row (or a counted drop), and may name a faster one that does the same to many records at once.
There is no fake source in production code: data comes from a source or not at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from resi.listings.schema import READ_SCHEMA


class SourceError(Exception):
    """A request to the source failed after its retries; ``retryable`` says whether trying later may help."""

    retryable = True


class SourceBlocked(SourceError):
    """The source refused us (403: blocked, e.g. a WAF); a proxy or a pause is needed."""


class SourceRefused(SourceError):
    """The source refused this request for what it asks (a 4xx such as 400 for a malformed id): asking
    again will not help, and it says nothing about the source's health."""

    retryable = False


@dataclass
class SearchResult:
    zipcode: str
    records: list[dict] = field(default_factory=list)
    total: int = 0
    """What the source says the zipcode holds."""
    requests: int = 0


class Drop(Exception):
    """A record that cannot become a row; ``reason`` is a short stable code (counted, never guessed around)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


Normalizer = Callable[[dict, datetime], dict]
"""``(record, scraped_at) -> row`` of the listing schema, or raises :class:`Drop`. A record may carry
``_observed_at`` (unix seconds, set by the source's transport): when the source answered with it."""

TableNormalizer = Callable[[Sequence, datetime, Counter], pa.Table]
"""``(records, scraped_at, drops) -> rows``: a :data:`Normalizer` of many records at once, with exactly its
rows in the records' order (:data:`READ_SCHEMA`) and its drop counts, only faster."""


def normalize_each(
    records: Sequence, normalize: Normalizer, scraped_at: datetime, drops: Counter, chunk: int = 4096
) -> tuple[pa.Table, list[int]]:
    """``records`` normalized one at a time: the rows (:data:`READ_SCHEMA`) and the position of each row's
    record; ``drops`` counts the others by reason. Rows become arrow columns a chunk at a time, so row dicts
    die young (cheap for the garbage collector)."""
    batches: list[pa.RecordBatch] = []
    rows: list[dict] = []
    positions: list[int] = []

    def flush() -> None:
        if rows:
            batches.append(
                pa.RecordBatch.from_arrays(
                    [pa.array([row[f.name] for row in rows], f.type) for f in READ_SCHEMA], schema=READ_SCHEMA
                )
            )
            rows.clear()

    for position, record in enumerate(records):
        try:
            rows.append(normalize(record, scraped_at))
        except Drop as drop:
            drops[drop.reason] += 1
            continue
        positions.append(position)
        if len(rows) >= chunk:
            flush()
    flush()
    return pa.Table.from_batches(batches, schema=READ_SCHEMA), positions


FactsExtractor = Callable[[dict, datetime], dict]
"""``(record, observed_at) -> facts``: what the source says about one listing's life (static fields, status
and price now, dated events), the format ``resi/validation/history.py`` reads; raises :class:`Drop`."""


class ListingSource(Protocol):
    name: str
    version: str
    origin: str
    """Scheme and host of the source's listing pages (what a row's ``source_url`` must start with)."""
    normalize: Normalizer
    normalize_table: TableNormalizer | None
    """The same as ``normalize`` for many records at once, when the source has a faster way."""
    facts: FactsExtractor

    async def search(self, zipcode: str) -> SearchResult:
        """Every current listing of ``zipcode`` (active and pending)."""
        ...

    async def fetch(self, listing_id: str) -> dict | None:
        """One listing by the source's id with its history, whatever its status now; None if the source has no
        such listing; :class:`SourceRefused` when it refuses the request itself."""
        ...

    def owns_url(self, url: str) -> bool:
        """Whether ``url`` is a listing page of this source."""
        ...
