"""What a listing source is: search one zipcode for its current listings, fetch one listing again by id.

Sources return raw records in their own shape; each source names the normalizer that turns a record
into a schema row (or a counted drop). There is no fake source in production code: data comes from a
source or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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

FactsExtractor = Callable[[dict, datetime], dict]
"""``(record, observed_at) -> facts``: what the source says about one listing's life (static fields, status
and price now, dated events), the format ``resi/validation/history.py`` reads; raises :class:`Drop`."""


class ListingSource(Protocol):
    name: str
    version: str
    origin: str
    """Scheme and host of the source's listing pages (what a row's ``source_url`` must start with)."""
    normalize: Normalizer
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
