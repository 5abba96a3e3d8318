"""What the reference server's handlers share: settings, state, chain view, presigner, epoch source."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from loguru import logger

from resi import constants as c
from resi.api.limits import DEFAULT_LIMITS, RateLimit
from resi.api.server import assignments as asg
from resi.api.server.state import StateStore
from resi.chain.base import Chain, ChainError, Metagraph, Neuron
from resi.epochs import Epoch, epoch_at, epoch_from_id, utcnow
from resi.market import count_range
from resi.monitor.metrics import ApiMetrics
from resi.storage.presigner import S3Presigner


@dataclass
class ServerConfig:
    state_dir: Path
    netuid: int = c.NETUID
    epoch_length: timedelta = c.EPOCH_LENGTH
    target_listings: int = c.TARGET_LISTINGS
    tolerance_percent: float = c.TOLERANCE_PERCENT
    listings_scale: float = 1.0
    cooldown: timedelta = c.ZIPCODE_COOLDOWN
    states: frozenset[str] | None = None
    data_bucket: str = "resi-sn46-data"
    validator_bucket: str = "resi-sn46-validated"
    region: str = "us-east-1"
    max_upload_bytes: int = c.MAX_UPLOAD_BYTES
    upload_ttl: timedelta = c.EPOCH_LENGTH
    read_ttl: timedelta = timedelta(hours=3)
    status_grace: timedelta = timedelta(minutes=30)
    """How long after an epoch ends its miners may still report TIMEOUT or FAILED for it."""
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    metagraph_ttl: float = 60.0
    metagraph_min_refresh: float = 2.0
    max_body_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    """Seconds a connection has to send a complete request head (then it is closed: slow clients)."""
    clock_offset: float = 0.0
    """Seconds this server's clock is off (rehearsal of a skewed clock: its ``Date`` header and the timestamp
    check use it)."""

    @property
    def selection(self) -> asg.SelectionParams:
        return asg.SelectionParams(self.target_listings, self.tolerance_percent, self.listings_scale, self.states)

    def expected_range(self) -> tuple[int, int]:
        return count_range(self.listings_scale)


class MetagraphCache:
    """The metagraph, refreshed every ``ttl`` seconds, and sooner (at most every ``min_refresh`` s) when a
    hotkey is not found, so that a key registered a moment ago is accepted without a long wait."""

    def __init__(self, chain: Chain, ttl: float, min_refresh: float):
        self.chain = chain
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.graph: Metagraph | None = None
        self.fetched_at = 0.0

    async def _refresh(self) -> Metagraph:
        self.graph = graph = await self.chain.metagraph()
        self.fetched_at = time.monotonic()
        return graph

    async def get(self) -> Metagraph:
        if self.graph is None or time.monotonic() - self.fetched_at > self.ttl:
            return await self._refresh()
        return self.graph

    async def neuron(self, hotkey: str) -> Neuron | None:
        graph = await self.get()
        found = graph.by_hotkey(hotkey)
        if found is None and time.monotonic() - self.fetched_at > self.min_refresh:
            try:
                found = (await self._refresh()).by_hotkey(hotkey)
            except ChainError as exc:
                logger.warning(f"metagraph refresh failed: {exc}")
        return found


class ServerContext:
    def __init__(
        self,
        config: ServerConfig,
        store: StateStore,
        chain: Chain,
        presigner: S3Presigner,
        secret: bytes,
        metrics: ApiMetrics | None = None,
    ):
        self.config = config
        self.metrics = metrics or ApiMetrics()
        self.store = store
        self.metagraph = MetagraphCache(chain, config.metagraph_ttl, config.metagraph_min_refresh)
        self.presigner = presigner
        self._secret = secret
        self.started = time.time()
        self.requests = 0
        self.errors = 0
        self.charged = 0
        self.store_failed_at: float | None = None
        """When a request last found the state store unable to read or write (monotonic seconds)."""
        self._assignment_json: tuple[str, bytes] | None = None

    def now(self) -> float:
        """This server's clock (unix seconds)."""
        return time.time() + self.config.clock_offset

    def store_ok(self, within: float = 60.0) -> bool:
        """The store takes a write now, and no request found it failing in the last ``within`` seconds."""
        try:
            self.store.ping()
        except Exception:
            self.store_failed_at = time.monotonic()
            return False
        return self.store_failed_at is None or time.monotonic() - self.store_failed_at > within

    def current_epoch(self) -> Epoch:
        return epoch_at(utcnow(), self.config.epoch_length)

    def parse_epoch(self, epoch_id: str) -> Epoch:
        return epoch_from_id(epoch_id, self.config.epoch_length)

    def assignment_json(self, epoch: Epoch) -> bytes:
        """The epoch's assignment as the response body (serialized once per epoch)."""
        if self._assignment_json is None or self._assignment_json[0] != epoch.id:
            self._assignment_json = (epoch.id, json.dumps(self.epoch_record(epoch)["assignment"]).encode())
        return self._assignment_json[1]

    def epoch_record(self, epoch: Epoch) -> dict:
        """The stored epoch (nonce + assignment), created on first use; a restart returns the same."""
        stored = self.store.epoch(epoch.id)
        if stored is not None:
            return stored
        nonce = asg.nonce_for(self._secret, epoch.id)
        seed = asg.selection_seed(self._secret, epoch.id)
        since, before = asg.cooldown_window(epoch, self.config.cooldown)
        zips = asg.select_zipcodes(seed, self.config.selection, self.store.recently_assigned(since, before))
        assignment = asg.build_assignment(epoch, nonce, seed, zips, self.config.selection)
        logger.info(f"epoch {epoch.id}: {len(zips)} zipcodes, {assignment['metadata']['totalExpectedListings']} expected")
        return self.store.insert_epoch(epoch.id, epoch.start.timestamp(), epoch.end.timestamp(), nonce, assignment)


CTX: web.AppKey[ServerContext] = web.AppKey("ctx", ServerContext)
