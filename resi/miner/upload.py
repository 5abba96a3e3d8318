"""Uploading an epoch's two files through the presigned POST, until it works or the deadline passes.

Credentials come from the API (reused while valid); a refusal that means they went stale (403, an expired
policy) renews them. S3 outages are waited out with capped backoff. ``listings.parquet`` goes first and
``metadata.json`` last, so a validator never sees metadata without its data. Afterwards the miner's list
URL shows that both objects are there with the right sizes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime

import aiohttp
from loguru import logger

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.epochs import utcnow
from resi.listings.files import EpochFiles
from resi.storage import StorageError, list_objects, upload_post


class UploadFailed(Exception):
    """The files could not be uploaded; ``fatal`` when trying again cannot help."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


class Uploader:
    def __init__(
        self,
        api: ResiApiClient,
        hotkey: str,
        backoff_cap: float = 30.0,
        timeout: float = 120.0,
        on_retry: Callable[[], None] = lambda: None,
    ):
        """``on_retry``: called for each attempt that failed and is tried again (the miner's metrics)."""
        self.api = api
        self.hotkey = hotkey
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.on_retry = on_retry

    async def upload(self, files: EpochFiles, epoch_id: str, deadline: datetime) -> bool:
        """Upload both files before ``deadline``; whether their presence could be verified."""
        prefix = c.miner_epoch_prefix(self.hotkey, epoch_id)
        attempt = 0
        async with aiohttp.ClientSession() as session:
            while True:
                problem: str
                try:
                    access = await self.api.miner_upload_access()
                    if not prefix.startswith(access.folder):  # credentials of another epoch: ask again
                        raise StorageError(f"the API's folder {access.folder!r} does not hold {prefix!r}", status=403)
                    for name, data in ((c.LISTINGS_FILE, files.parquet), (c.METADATA_FILE, files.metadata_json)):
                        await upload_post(session, access.url, access.fields, prefix + name, data, timeout=self.timeout)
                    logger.info(f"uploaded {len(files.parquet)} + {len(files.metadata_json)} bytes to {prefix}")
                    return await self._verify(session, access.list_url, prefix, files)
                except StorageError as exc:
                    if exc.code == "EntityTooLarge":
                        raise UploadFailed(f"S3 refused the file as too large: {exc}", fatal=True) from None
                    if exc.status in (400, 403):
                        self.api.forget_upload_access()  # expired or refused policy: ask for a new one
                    problem = str(exc)
                except ApiError as exc:
                    if not exc.retryable:
                        raise UploadFailed(f"upload credentials refused: {exc}", fatal=exc.status in (401, 403)) from None
                    problem = str(exc)
                attempt += 1
                wait = random.uniform(0.5, 1.0) * min(self.backoff_cap, 2**attempt)
                left = (deadline - utcnow()).total_seconds()
                if left <= wait:
                    raise UploadFailed(f"deadline reached while uploading: {problem}")
                logger.warning(f"upload attempt {attempt} failed ({problem}); retrying in {wait:.1f} s")
                self.on_retry()
                await asyncio.sleep(wait)

    async def _verify(self, session: aiohttp.ClientSession, list_url: str | None, prefix: str, files: EpochFiles) -> bool:
        if not list_url:
            logger.warning("the API gave no list URL: upload not verified")
            return False
        try:
            listing = await list_objects(session, list_url)
        except StorageError as exc:
            logger.warning(f"could not list the upload to verify it: {exc}")
            return False
        sizes = {o.key: o.size for o in listing.objects}
        expected = {prefix + c.LISTINGS_FILE: len(files.parquet), prefix + c.METADATA_FILE: len(files.metadata_json)}
        if all(sizes.get(k) == v for k, v in expected.items()):
            return True
        if not listing.complete:
            logger.warning("the folder lists more than one page: upload not verified")
            return False
        raise UploadFailed(f"uploaded objects missing or of the wrong size: {sorted(expected)}")
