"""The async Resi API client: every endpoint of both spec documents, signed, paced, retried, bounded.

- Each attempt signs a fresh commitment (timestamps are checked within ±300 s and replays are refused,
  so a retried request must not reuse the old signature). Timestamps never repeat for one commitment.
- Connection errors, timeouts and 5xx are retried with capped exponential backoff and full jitter; a 429
  waits for ``Retry-After`` / ``X-RateLimit-Reset``; calls are paced under the documented limits.
- S3 credentials are reused until ``credential_margin`` seconds before they expire.
- Every request has a timeout. Errors, in whichever shape the server sent them, raise :class:`ApiError`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from loguru import logger
from pydantic import BaseModel, ValidationError

from resi.api import limits as lim
from resi.api import signing
from resi.api.errors import ApiError, MalformedResponse
from resi.api.models import (
    Assignment,
    Health,
    MinerSpecificAccess,
    Stats,
    StatusResponse,
    UploadAccess,
    ValidatorAccess,
)
from resi.chain.keys import Signer
from resi.epochs import iso_z, utcnow

M = TypeVar("M", bound=BaseModel)
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class ResiApiClient:
    def __init__(
        self,
        base_url: str,
        signer: Signer | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_rate_wait: float = 300.0,
        credential_margin: float = 300.0,
        rate_limits: dict[str, lim.RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_wait = max_rate_wait
        self.credential_margin = credential_margin
        self._clock = clock
        self._sleep = sleep
        self._pacer = lim.Pacer(rate_limits or lim.DEFAULT_LIMITS, sleep=sleep)
        self._session: aiohttp.ClientSession | None = None
        self._last_ts: dict[str, int] = {}
        self._upload_access: UploadAccess | None = None
        self._validator_access: ValidatorAccess | None = None
        self.clock_offset = 0.0
        """Seconds the API's clock is ahead of this machine's (measured from responses' ``Date``)."""
        self._skew_logged = False

    # --- plumbing ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> ResiApiClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "resi-subnet46/1.0", "Accept": "application/json"})
        return self._session

    def require_signer(self) -> Signer:
        if self.signer is None:
            raise ApiError(None, ["this client has no hotkey to sign with"])
        return self.signer

    def _timestamp(self, commitment_key: str) -> int:
        """Now (the API's time), but never the same value twice for one commitment (a repeat would look
        like a replay)."""
        ts = max(int(self.now()), self._last_ts.get(commitment_key, 0) + 1)
        self._last_ts[commitment_key] = ts
        return ts

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def _rate_wait(self, headers: Any) -> float | None:
        """Seconds a 429 asks us to wait (``Retry-After`` or ``X-RateLimit-Reset``), if it says."""
        for name in ("Retry-After", "retry-after"):
            value = headers.get(name)
            if value is not None:
                try:
                    return max(0.0, float(value))
                except ValueError:
                    pass
        reset = headers.get("X-RateLimit-Reset")
        if reset is not None:
            try:
                return max(0.0, float(reset) - self.now())
            except ValueError:
                pass
        return None

    def now(self) -> float:
        """The API's time as this client knows it: the local clock corrected by the measured offset."""
        return self._clock() + self.clock_offset

    def _note_date(self, headers: Any) -> bool:
        """Measure the clock offset from a response's ``Date`` header (whole seconds); True when it moved by
        more than the header's precision (a request signed with the old one may be retried)."""
        value = headers.get("Date")
        if not value:
            return False
        try:
            server = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        measured = server + 0.5 - self._clock()  # the header truncates to the second
        offset = measured if abs(measured) >= 2 else 0.0
        moved = abs(offset - self.clock_offset) >= 2
        self.clock_offset = offset
        if abs(offset) > 30 and not self._skew_logged:
            self._skew_logged = True
            logger.warning(
                f"this machine's clock is {offset:+.0f} s off the Resi API's; signing with the API's "
                "time. Fix the clock: sudo timedatectl set-ntp true"
            )
        return moved

    async def _call(
        self,
        key: str,
        method: str,
        path: str,
        model: type[M],
        build: Callable[[], dict[str, Any]] | None = None,
        as_query: bool = False,
        max_wait: float | None = None,
    ) -> M:
        """One endpoint call with pacing, re-signing retries, 429 waits and a typed result. No rate-limit
        wait is longer than ``max_wait`` (default ``max_rate_wait``): past it, the 429 ApiError is raised."""
        endpoint = f"{method} {path}"
        bound = self.max_rate_wait if max_wait is None else min(max_wait, self.max_rate_wait)
        last: ApiError | None = None
        skew_retry = replay_retry = True
        for attempt in range(self.max_attempts):
            try:
                await self._pacer.acquire(key, max_wait=bound)
            except lim.WaitTooLong as exc:
                raise ApiError(
                    429,
                    [f"rate limit: the next call is allowed in {exc.seconds:.0f} s, over the {bound:g} s this caller waits"],
                    endpoint,
                    exc.seconds,
                ) from None
            sent = await self._send(key, method, path, build() if build is not None else None, as_query, endpoint)
            if isinstance(sent, ApiError):
                last = sent
            else:
                status, headers, body, moved = sent
                if status < 400:
                    if not isinstance(body, dict):
                        raise MalformedResponse(endpoint, "not a JSON object")
                    try:
                        return model.model_validate(body)
                    except ValidationError as exc:
                        raise MalformedResponse(endpoint, _first_error(exc)) from None
                last = ApiError.from_body(status, body, endpoint, self._rate_wait(headers) if status == 429 else None)
                if status == 400 and moved and skew_retry and build is not None:
                    skew_retry = False  # "Invalid timestamp" from a skewed clock: signed again with the API's time
                    continue
                if status == 401 and build is not None and replay_retry and _is_replay(last):
                    # A fresh signature refused as used: another client of this hotkey (a restart, a check run
                    # just before) signed the same second. The next signature takes the second after it.
                    replay_retry = False
                    continue
                if not last.retryable:
                    raise last
            if attempt + 1 >= self.max_attempts:
                break
            if last.status == 429:
                wait = last.retry_after if last.retry_after is not None else self._backoff(attempt + 2)
                if wait > bound:
                    raise last
                self._pacer.block_for(key, wait)
                logger.warning(f"{endpoint}: rate limited, waiting {wait:.1f} s")
            else:
                wait = self._backoff(attempt)
                logger.warning(f"{endpoint}: {last.messages[0]} (attempt {attempt + 1}), retrying in {wait:.1f} s")
                await self._sleep(wait)
        assert last is not None
        raise last

    async def _send(
        self, key: str, method: str, path: str, payload: dict[str, Any] | None, as_query: bool, endpoint: str
    ) -> tuple[int, Any, Any, bool] | ApiError:
        """One request: (status, headers, decoded body, whether the API's clock moved ours), or the transport
        error as an ApiError without a status. The API's rate-limit headers are noted for ``key``."""
        kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=self.timeout)}
        if payload is not None:
            kwargs["params" if as_query else "json"] = payload
        try:
            async with self._http().request(method, self.base_url + path, **kwargs) as resp:
                raw = await resp.content.read(MAX_RESPONSE_BYTES)
                status, headers = resp.status, resp.headers
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return ApiError(None, [f"{type(exc).__name__}: {exc}".rstrip(": ")], endpoint)
        moved = self._note_date(headers)
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        if remaining == "0" and reset is not None:
            try:
                self._pacer.block_for(key, float(reset) - self.now())
            except ValueError:
                pass
        return status, headers, _decode(raw), moved

    def _signed(self, template_key: str, commitment: Callable[[int], str], fields: Callable[[int, str], dict]):
        signer = self.require_signer()

        def build() -> dict[str, Any]:
            ts = self._timestamp(template_key)
            return fields(ts, signing.sign_commitment(signer, commitment(ts)))

        return build

    def _fresh(self, cached: datetime | None) -> bool:
        return cached is not None and cached.timestamp() - self.credential_margin > self.now()

    # --- public endpoints -------------------------------------------------------------------------------------

    async def healthcheck(self) -> Health:
        return await self._call("health", "GET", "/healthcheck", Health)

    async def stats(self) -> Stats:
        return await self._call(lim.STATS, "GET", "/api/v1/zipcode-assignments/stats", Stats)

    # --- miners ---------------------------------------------------------------------------------------------------

    async def current_assignment(self) -> Assignment:
        signer = self.require_signer()
        build = self._signed(
            "assignment",
            signing.assignment_current,
            lambda ts, sig: {"hotkey": signer.hotkey, "signature": sig, "timestamp": ts},
        )
        return await self._call(lim.ASSIGNMENT, "GET", "/api/v1/zipcode-assignments/current", Assignment, build, as_query=True)

    async def update_status(
        self,
        epoch_id: str,
        nonce: str,
        status: str,
        *,
        listings_scraped: int | None = None,
        zipcodes_completed: list[dict] | None = None,
        s3_upload_complete: bool = False,
        s3_upload_timestamp: datetime | None = None,
        failure_reason: str | None = None,
    ) -> StatusResponse:
        """Report progress; ``failure_reason`` (an extension field) says why a FAILED or TIMEOUT happened."""
        signer = self.require_signer()

        def fields(ts: int, sig: str) -> dict:
            body: dict[str, Any] = {
                "hotkey": signer.hotkey,
                "signature": sig,
                "timestamp": ts,
                "epochId": epoch_id,
                "nonce": nonce,
                "status": status,
                "s3UploadComplete": s3_upload_complete,
            }
            if listings_scraped is not None:
                body["listingsScraped"] = listings_scraped
            if zipcodes_completed:
                body["zipcodesCompleted"] = zipcodes_completed
            if s3_upload_complete:
                body["s3UploadTimestamp"] = iso_z(s3_upload_timestamp or utcnow())
            if failure_reason:
                body["failureReason"] = failure_reason[:500]
            return body

        build = self._signed(f"status:{epoch_id}", lambda ts: signing.miner_status(signer.hotkey, epoch_id, ts), fields)
        return await self._call(lim.STATUS, "POST", "/api/v1/zipcode-assignments/status", StatusResponse, build)

    async def miner_upload_access(self, expiry_seconds: int = 86_400, force: bool = False) -> UploadAccess:
        """Presigned POST credentials for ``data/hotkey={hotkey}/``, reused until shortly before they expire."""
        if not force and self._upload_access is not None and self._fresh(self._upload_access.expires_at):
            return self._upload_access
        signer = self.require_signer()
        build = self._signed(
            "folder",
            lambda ts: signing.miner_s3_access(signer.coldkey, signer.hotkey, ts),
            lambda ts, sig: {
                "coldkey": signer.coldkey,
                "hotkey": signer.hotkey,
                "timestamp": ts,
                "signature": sig,
                "expiry": ts + expiry_seconds,
            },
        )
        self._upload_access = await self._call(lim.FOLDER_ACCESS, "POST", "/get-folder-access", UploadAccess, build)
        return self._upload_access

    def forget_upload_access(self) -> None:
        """Drop cached upload credentials (after S3 refused them)."""
        self._upload_access = None

    # --- validators -----------------------------------------------------------------------------------------------

    async def epoch_assignment(self, epoch_id: str) -> Assignment:
        """The assignment of a (past) epoch, with its nonce: what every miner of that epoch had to deliver."""
        signer = self.require_signer()
        build = self._signed(
            f"epoch:{epoch_id}",
            lambda ts: signing.epoch_assignment(epoch_id, ts),
            lambda ts, sig: {"hotkey": signer.hotkey, "signature": sig, "timestamp": ts},
        )
        return await self._call(
            lim.EPOCH_ASSIGNMENT, "GET", f"/api/v1/zipcode-assignments/epoch/{epoch_id}", Assignment, build, as_query=True
        )

    async def validator_upload_access(
        self,
        epoch_id: str,
        purpose: str = "epoch_validation_results",
        estimated_mb: float = 25,
        retention_days: int = 90,
        max_wait: float | None = None,
    ) -> UploadAccess:
        """Credentials to upload an epoch's results; ``max_wait`` bounds any rate-limit wait (then 429)."""
        signer = self.require_signer()
        build = self._signed(
            "validator-upload",
            signing.validator_upload,
            lambda ts, sig: {
                "hotkey": signer.hotkey,
                "signature": sig,
                "timestamp": ts,
                "epochId": epoch_id,
                "purpose": purpose,
                "estimatedDataSizeMb": estimated_mb,
                "retentionDays": retention_days,
            },
        )
        return await self._call(
            lim.VALIDATOR_UPLOAD, "POST", "/api/v1/s3-access/validator-upload", UploadAccess, build, max_wait=max_wait
        )

    async def validator_access(self, force: bool = False) -> ValidatorAccess:
        """Presigned list URLs over every miner's data, reused until shortly before they expire."""
        if not force and self._validator_access is not None and self._fresh(self._validator_access.expiry):
            return self._validator_access
        signer = self.require_signer()
        build = self._signed(
            "validator-access",
            signing.validator_access,
            lambda ts, sig: {"hotkey": signer.hotkey, "signature": sig, "timestamp": ts},
        )
        self._validator_access = await self._call(lim.VALIDATOR_ACCESS, "POST", "/get-validator-access", ValidatorAccess, build)
        return self._validator_access

    async def miner_access(
        self, miner_hotkey: str, epoch_id: str | None = None, continuation_token: str | None = None
    ) -> MinerSpecificAccess:
        """Presigned list URL of one miner's folder; with ``epoch_id`` also that epoch's list and GET URLs."""
        signer = self.require_signer()

        def fields(ts: int, sig: str) -> dict:
            body: dict[str, Any] = {"hotkey": signer.hotkey, "signature": sig, "timestamp": ts, "miner_hotkey": miner_hotkey}
            if epoch_id:
                body["epoch_id"] = epoch_id
            if continuation_token:
                body["continuation_token"] = continuation_token
            return body

        build = self._signed(f"miner:{miner_hotkey}", lambda ts: signing.validator_miner_access(miner_hotkey, ts), fields)
        return await self._call(lim.MINER_ACCESS, "POST", "/get-miner-specific-access", MinerSpecificAccess, build)


def _is_replay(error: ApiError) -> bool:
    return any("already used" in message for message in error.messages)


def _decode(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return raw.decode("utf-8", "replace")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
