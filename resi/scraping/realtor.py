"""The Realtor.com source, built on homeharvest.

homeharvest brings the queries, the location look-up and the pagination; this module swaps its transport
(``_graphql_post``) for one that has a timeout, a request-rate cap, a proxy, retries with backoff on 429
(honouring ``Retry-After``), 5xx, timeouts and broken bodies, and that refuses answers of the wrong shape
instead of reading them as "no listings". A 4xx other than 403 and 429 is the site refusing that request
(:class:`SourceRefused`, not retried). Every record is stamped with ``_observed_at``, the moment its answer
arrived, which becomes its scrape time. Its blocking calls run in worker threads, off the event loop.
The production base URL is Realtor.com's; ``base_url`` points the same code at the local listing site.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from importlib.metadata import version as package_version
from urllib.parse import urlsplit

import requests
from homeharvest.core.scrapers import DEFAULT_HEADERS, ScraperInput
from homeharvest.core.scrapers.models import ListingType, ReturnType
from homeharvest.core.scrapers.realtor import RealtorScraper
from homeharvest.core.scrapers.realtor.queries import HOMES_DATA
from loguru import logger

from resi.scraping.normalize import normalize_realtor, realtor_facts
from resi.scraping.realtor_table import realtor_table
from resi.scraping.source import (
    FactsExtractor,
    Normalizer,
    SearchResult,
    SourceBlocked,
    SourceError,
    SourceRefused,
    TableNormalizer,
)

REALTOR_GRAPHQL = RealtorScraper.SEARCH_GQL_URL
_HOME_QUERY = (
    "query GetHomeDetails($property_id: ID!) { home(property_id: $property_id) "
    + HOMES_DATA.rstrip().removesuffix("}")
    + " property_history { date event_name price } } }"
)


class RateCap:
    """At most ``rate`` requests per second across threads (evenly spaced)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def _shape_problem(operation: str, body: object) -> str | None:
    """Why ``body`` is not a usable answer to ``operation`` (None when it is)."""
    if not isinstance(body, dict):
        return "not a JSON object"
    data = body.get("data")
    if body.get("errors") and not data:
        return f"errors: {str(body['errors'])[:200]}"
    if not isinstance(data, dict):
        return "no data"
    if operation == "GetHomeSearch":
        search = data.get("homeSearch")
        if (
            not isinstance(search, dict)
            or not isinstance(search.get("results"), list)
            or not isinstance(search.get("total"), int)
        ):
            return "homeSearch without results/total"
    elif operation == "Search_suggestions":
        suggestions = data.get("search_suggestions")
        if not isinstance(suggestions, dict) or not isinstance(suggestions.get("geo_results", []), list):
            return "search_suggestions without geo_results"
    elif operation == "GetHomeDetails" and "home" not in data:
        return "no home"
    return None


class _Scraper(RealtorScraper):
    """homeharvest's RealtorScraper with this project's transport."""

    # Retries happen per request in _graphql_post; tenacity's retry around the location look-up would
    # multiply them.
    handle_location = RealtorScraper.handle_location.__wrapped__

    def __init__(self, scraper_input: ScraperInput, source: RealtorSource):
        super().__init__(scraper_input)
        self.SEARCH_GQL_URL = source.url
        self._source = source
        self._session = requests.Session()
        self.requests = 0

    def _graphql_post(self, query: str, variables: dict, operation_name: str) -> dict:
        src = self._source
        payload = json.dumps(
            {"operationName": operation_name, "query": self._minify_query(query), "variables": variables}, separators=(",", ":")
        )
        problem: str | None = "no attempt"
        for attempt in range(src.max_attempts):
            if src.closed.is_set():
                raise SourceError(f"{operation_name}: source closed (shutting down)")
            if attempt:
                delay = src.backoff(attempt, problem or "")
                time.sleep(delay)
            src.cap.wait()
            self.requests += 1
            try:
                resp = self._session.post(
                    self.SEARCH_GQL_URL, headers=DEFAULT_HEADERS, data=payload, proxies=self.proxies, timeout=src.timeout
                )
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
                continue
            if resp.status_code == 403:
                raise SourceBlocked(f"{operation_name}: 403 Forbidden (blocked: use a proxy or slow down)")
            if resp.status_code == 429:
                problem = f"429 retry-after={resp.headers.get('Retry-After', '')}"
                continue
            if resp.status_code >= 500:
                problem = f"HTTP {resp.status_code}"
                continue
            if resp.status_code != 200:
                raise SourceRefused(f"{operation_name}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                body = resp.json()
            except ValueError:
                problem = "body is not JSON (truncated?)"
                continue
            problem = _shape_problem(operation_name, body)
            if problem is None:
                _stamp(operation_name, body, time.time())
                return body
        raise SourceError(f"{operation_name} failed after {src.max_attempts} attempts: {problem}")


def _stamp(operation: str, body: dict, at: float) -> None:
    """Mark every record of an answer with the moment it arrived (its scrape time)."""
    data = body["data"]
    if operation == "GetHomeSearch":
        records = data["homeSearch"]["results"]
    elif operation == "GetHomeDetails":
        records = [data.get("home")]
    else:
        return
    for record in records:
        if isinstance(record, dict):
            record["_observed_at"] = at


class RealtorSource:
    name = "realtor-homeharvest"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        proxy: str | None = None,
        timeout: float = 20.0,
        max_rps: float = 4.0,
        max_attempts: int = 6,
        backoff_cap: float = 20.0,
    ):
        """``base_url``: the site's origin (``https://www.realtor.com`` when None) or a full GraphQL URL."""
        if base_url and "/frontdoor/graphql" not in base_url:
            base_url = base_url.rstrip("/") + "/frontdoor/graphql"
        self.url = base_url or REALTOR_GRAPHQL
        parts = urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.proxy = proxy
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_cap = backoff_cap
        self.cap = RateCap(max_rps)
        self.version = f"homeharvest-{package_version('homeharvest')}"
        self.normalize: Normalizer = normalize_realtor
        self.normalize_table: TableNormalizer | None = realtor_table
        self.facts: FactsExtractor = realtor_facts
        self.closed = threading.Event()

    def close(self) -> None:
        """Make requests in flight give up at their next attempt (used at shutdown)."""
        self.closed.set()

    def backoff(self, attempt: int, problem: str) -> float:
        """Seconds before retry ``attempt``: Retry-After when the site gave one, else capped exponential + jitter."""
        if problem.startswith("429 retry-after="):
            try:
                return min(self.backoff_cap, float(problem.split("=", 1)[1]))
            except ValueError:
                pass
        return random.uniform(0.5, 1.0) * min(self.backoff_cap, 0.25 * 2**attempt)

    def _input(self, location: str, sold_within_days: int | None = None) -> ScraperInput:
        kind = ListingType.SOLD if sold_within_days else ListingType.FOR_SALE
        return ScraperInput(
            location=location,
            listing_type=kind,
            return_type=ReturnType.raw,
            proxy=self.proxy,
            limit=10_000,
            parallel=False,
            extra_property_data=False,
            last_x_days=sold_within_days,
        )

    def _search(self, zipcode: str, sold_within_days: int | None = None) -> SearchResult:
        scraper = _Scraper(self._input(zipcode, sold_within_days), self)
        try:
            records = scraper.search()
        except SourceError:
            raise
        except Exception as exc:  # homeharvest parsing a shape it did not expect
            raise SourceError(f"search {zipcode}: {type(exc).__name__}: {exc}") from None
        records = [r for r in records if isinstance(r, dict)]
        logger.debug(f"{zipcode}: {len(records)} records in {scraper.requests} requests")
        return SearchResult(zipcode=zipcode, records=records, total=len(records), requests=scraper.requests)

    def _fetch(self, listing_id: str) -> dict | None:
        scraper = _Scraper(self._input(listing_id), self)
        body = scraper._graphql_post(_HOME_QUERY, {"property_id": listing_id}, "GetHomeDetails")
        home = body["data"].get("home")
        return home if isinstance(home, dict) else None

    async def search(self, zipcode: str) -> SearchResult:
        return await asyncio.to_thread(self._search, zipcode)

    async def search_sold(self, zipcode: str, days: int) -> SearchResult:
        """The listings of ``zipcode`` sold in the last ``days`` days (homeharvest's ``listing_type="sold"``)."""
        return await asyncio.to_thread(self._search, zipcode, days)

    async def fetch(self, listing_id: str) -> dict | None:
        return await asyncio.to_thread(self._fetch, listing_id)

    def owns_url(self, url: str) -> bool:
        return isinstance(url, str) and url.startswith(self.origin + "/realestateandhomes-detail/")
