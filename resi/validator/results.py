"""``validation_results.json``: written for every counted epoch, uploaded beside validation.

The upload's rate limit (5 per hour per validator on the real API) must never hold up validation: uploads run in
their own task from a bounded queue, and a wait for the limit's window is only taken when the window opens
before the next epoch is due; otherwise the upload is left for then (logged) and offered again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from loguru import logger

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.epochs import iso_z, utcnow
from resi.storage import StorageError, upload_post
from resi.validation.params import ValidationParams
from resi.validator.state import ValidatorState


class ResultsPublisher:
    def __init__(self, api: ResiApiClient, state: ValidatorState, folder: Path, hotkey: str,
                 params: ValidationParams, queue_size: int = 8, max_attempts: int = 3):
        self.api = api
        self.state = state
        self.folder = folder
        self.hotkey = hotkey
        self.params = params
        self.max_attempts = max_attempts
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._queued: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._not_before = 0.0
        """Monotonic time before which the API's upload limit is known to be used up."""

    def path(self, epoch_id: str) -> Path:
        return self.folder / f"{epoch_id}.json"

    def write(self, record: dict) -> Path:
        """Write the results document of a counted epoch (atomically)."""
        document = {
            "epoch_id": record["epoch_id"], "validator": self.hotkey, "block": record["block"],
            "block_hash": record["block_hash"],
            "params": {k: v for k, v in self.params.__dict__.items() if k != "limits"},
            "weights": record["weights"], "miners": record["results"],
            "written_at": iso_z(utcnow()),
        }
        path = self.path(record["epoch_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2))
        tmp.replace(path)
        return path

    def offer(self, epoch_id: str) -> None:
        """Queue an upload unless it is queued, done, given up, or the queue is full (offered again later)."""
        if epoch_id in self._queued or self._attempts.get(epoch_id, 0) >= self.max_attempts \
                or time.monotonic() < self._not_before:
            return
        try:
            self._queue.put_nowait(epoch_id)
        except asyncio.QueueFull:
            return
        self._queued.add(epoch_id)

    async def run(self, stop: asyncio.Event, patience: Callable[[], float]) -> None:
        """Upload queued results until ``stop``; ``patience()``: seconds a rate-limit wait may take now (until
        the next epoch is due)."""
        while not stop.is_set():
            getter = asyncio.ensure_future(self._queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                return
            epoch_id = getter.result()
            self._queued.discard(epoch_id)
            try:
                await self.upload(epoch_id, max(0.0, patience()))
            except Exception:  # never let one upload end the task
                logger.exception(f"epoch {epoch_id}: uploading the results failed unexpectedly")

    async def upload(self, epoch_id: str, max_wait: float) -> bool:
        path = self.path(epoch_id)
        if not path.exists():
            return False
        try:
            access = await self.api.validator_upload_access(epoch_id, max_wait=max_wait)
        except ApiError as exc:
            if exc.status == 429:
                wait = exc.retry_after or 60.0
                self._not_before = time.monotonic() + wait
                logger.warning(f"epoch {epoch_id}: results upload waits for the API's limit to reset (in "
                               f"{wait:.0f} s, after the next epoch is due); offered again then")
                return False
            return self._failed(epoch_id, exc)
        try:
            async with aiohttp.ClientSession() as session:
                await upload_post(session, access.url, access.fields, access.folder + c.VALIDATION_RESULTS_FILE,
                                  path.read_bytes())
        except StorageError as exc:
            return self._failed(epoch_id, exc)
        self.state.mark(epoch_id, results_uploaded=True)
        logger.info(f"epoch {epoch_id}: results uploaded to {access.folder}{c.VALIDATION_RESULTS_FILE}")
        return True

    def _failed(self, epoch_id: str, exc: Exception) -> bool:
        self._attempts[epoch_id] = self._attempts.get(epoch_id, 0) + 1
        left = self.max_attempts - self._attempts[epoch_id]
        logger.warning(f"epoch {epoch_id}: results not uploaded ({exc}); kept at {self.path(epoch_id)}"
                       + (f", {left} more attempts" if left > 0 else ", not trying again"))
        return False
