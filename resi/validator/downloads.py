"""Fetching miners' epoch folders through presigned URLs, with bounded concurrency, byte caps and deadlines.

Each miner gets its own time budget: a slow or huge miner times out (and scores 0 for the epoch) without
holding up the others; an outage of S3 or the API is told apart from a miner's own failure by a probe.
``submissions`` yields them one at a time, downloading at most ``concurrency`` ahead, so memory holds the miner
being evaluated plus the few in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from loguru import logger

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.listings.upload import Submission
from resi.storage import ObjectTooLarge, StorageError, download, list_objects


@dataclass(frozen=True)
class DownloadLimits:
    max_listings_bytes: int = 64 * 1024 * 1024
    max_metadata_bytes: int = 1024 * 1024
    per_miner_timeout: float = 180.0
    attempts: int = 3


async def fetch_submission(
    api: ResiApiClient, session: aiohttp.ClientSession, uid: int, hotkey: str, epoch_id: str, limits: DownloadLimits
) -> Submission:
    """What ``hotkey`` uploaded for ``epoch_id`` (the reason code in ``fetch_error`` when it cannot be read)."""
    access = await api.miner_access(hotkey, epoch_id)
    if not access.epoch_list_url or not access.epoch_prefix:
        raise ApiError(None, ["the API gave no epoch list URL (it lacks the epoch_id extension)"])

    async def renew(token: str) -> str:
        url = (await api.miner_access(hotkey, epoch_id, continuation_token=token)).epoch_list_url
        if not url:
            raise ApiError(None, ["the API gave no epoch list URL for the next page"])
        return url

    listing = await list_objects(session, access.epoch_list_url, renew=renew, max_pages=5)
    objects = {o.key: o for o in listing.objects}
    lkey, mkey = access.epoch_prefix + c.LISTINGS_FILE, access.epoch_prefix + c.METADATA_FILE
    listed, meta = objects.get(lkey), objects.get(mkey)
    if listed is None and meta is None:
        return Submission(hotkey, uid)
    caps = {c.LISTINGS_FILE: limits.max_listings_bytes, c.METADATA_FILE: limits.max_metadata_bytes}
    for name, obj in ((c.LISTINGS_FILE, listed), (c.METADATA_FILE, meta)):
        if obj is not None and obj.size > caps[name]:
            return Submission(hotkey, uid, fetch_error="file_too_large")
    bodies: dict[str, bytes | None] = {}
    for name, obj in ((c.LISTINGS_FILE, listed), (c.METADATA_FILE, meta)):
        if obj is None:
            bodies[name] = None
            continue
        try:
            bodies[name] = await download(session, access.files[name], caps[name])
        except ObjectTooLarge:
            return Submission(hotkey, uid, fetch_error="file_too_large")
    return Submission(
        hotkey,
        uid,
        listings=bodies[c.LISTINGS_FILE],
        metadata=bodies[c.METADATA_FILE],
        listings_modified=listed.last_modified if listed else None,
        metadata_modified=meta.last_modified if meta else None,
    )


async def _fetch_bounded(
    api: ResiApiClient, session: aiohttp.ClientSession, uid: int, hotkey: str, epoch_id: str, limits: DownloadLimits
) -> Submission:
    last = "download_failed"
    for attempt in range(limits.attempts):
        try:
            return await asyncio.wait_for(
                fetch_submission(api, session, uid, hotkey, epoch_id, limits), timeout=limits.per_miner_timeout
            )
        except asyncio.TimeoutError:
            logger.warning(f"uid {uid}: download took over {limits.per_miner_timeout:g} s")
            return Submission(hotkey, uid, fetch_error="download_timeout")
        except (StorageError, ApiError) as exc:
            last = "download_failed"
            logger.warning(f"uid {uid}: download attempt {attempt + 1} failed: {exc}")
            await asyncio.sleep(min(10.0, 2.0**attempt))
    return Submission(hotkey, uid, fetch_error=last)


FAILURES = ("download_failed", "download_timeout")


class Outage(Exception):
    """S3 or the API could not be reached: not a miner's fault. The epoch is validated again later."""


async def submissions(
    api: ResiApiClient,
    miners: list[tuple[int, str]],
    epoch_id: str,
    limits: DownloadLimits,
    concurrency: int,
    reachable: Callable[[], Awaitable[bool]],
) -> AsyncIterator[Submission]:
    """Every miner's submission, as downloads finish; never more than ``concurrency`` downloaded ahead.

    When a miner's download fails or times out, ``reachable()`` asks S3 and the API something that must work:
    if they do not answer, the validator is the one cut off, and :class:`Outage` ends the iteration (nothing is
    judged on it). If they answer, the miner's download is tried once more (an outage may have ended in
    between): only a miner whose own files still fail while S3 and the API answer gets ``download_failed``."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    semaphore = asyncio.Semaphore(max(1, concurrency))
    done = object()

    async with aiohttp.ClientSession() as session:

        async def one(uid: int, hotkey: str) -> None:
            async with semaphore:
                sub = await _fetch_bounded(api, session, uid, hotkey, epoch_id, limits)
                for retry in (True, False):
                    if sub.fetch_error not in FAILURES:
                        break
                    if not await reachable():
                        raise Outage(f"S3 or the API is unreachable (uid {uid}: {sub.fetch_error})")
                    if retry:  # they answer now: perhaps they were back just in time; the miner's files get a try
                        sub = await _fetch_bounded(api, session, uid, hotkey, epoch_id, limits)
                await queue.put(sub)

        async def all_of_them() -> None:
            try:
                await asyncio.gather(*(one(uid, hk) for uid, hk in miners))
            except Exception as exc:  # handed to the consumer, which raises it
                await queue.put(exc)
                return
            await queue.put(done)

        producer = asyncio.create_task(all_of_them())
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
