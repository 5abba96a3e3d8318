"""``validation_results.json`` and the epoch's validated listings: written for every counted epoch, uploaded
beside validation, through one upload credential per epoch (``validators/<hotkey>/<epoch>/``: the results and
``validated/`` with the two Parquet files and the signed manifest, the manifest last).

The upload's rate limit (5 per hour per validator on the real API) must never hold up validation: uploads run in
their own task from a bounded queue, and a wait for the limit's window is only taken when the window opens
before the next epoch is due; otherwise the upload is left for then (logged) and offered again.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiohttp
import pyarrow as pa
from loguru import logger

from resi import __version__
from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.api.signing import sign_manifest
from resi.epochs import UTC, iso_z, utcnow
from resi.listings.validated import FOLDER as VALIDATED_FOLDER
from resi.listings.validated import LISTINGS_FILE, MANIFEST_FILE, OBSERVATIONS_FILE, manifest, parquet_bytes
from resi.monitor.metrics import ValidatorMetrics
from resi.storage import StorageError, upload_post
from resi.validation.params import ValidationParams
from resi.validator.state import ValidatorState

NOTHING_EARNED = "no uid had earned anything"
"""The ``why`` of a results file's empty weights when no uid had earned anything (readers test for it)."""


class ResultsPublisher:
    def __init__(
        self,
        api: ResiApiClient,
        state: ValidatorState,
        folder: Path,
        hotkey: str,
        params: ValidationParams,
        queue_size: int = 8,
        max_attempts: int = 3,
        validated: Path | None = None,
        keep_epochs: int = 0,
        metrics: ValidatorMetrics | None = None,
    ):
        self.api = api
        self.state = state
        self.folder = folder
        self.hotkey = hotkey
        self.params = params
        self.validated = validated or folder.parent / "validated"
        """``<epoch>/`` folders of validated listings, the newest ``keep_epochs`` kept (0: all)."""
        self.keep_epochs = keep_epochs
        self.metrics = metrics
        self.max_attempts = max_attempts
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._queued: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._not_before = 0.0
        """Monotonic time before which the API's upload limit is known to be used up."""

    def path(self, epoch_id: str) -> Path:
        return self.folder / f"{epoch_id}.json"

    def write(self, record: dict) -> Path:
        """Write the results document of a counted epoch (atomically). Its ``weights`` are the vector that went
        on chain after the epoch's EMA (``set_at``, ``block``), and each miner's ``weight`` is its share in it;
        when none went (nothing earned, or the next epoch's EMA was set first) they are empty with ``why``."""
        sent = record.get("on_chain")
        if sent is not None:
            set_at = record.get("weights_set_at")
            weights = {
                "uids": sent["uids"],
                "weights": sent["weights"],
                "block": sent["block"],
                "set_at": iso_z(datetime.fromtimestamp(set_at, UTC)) if set_at else None,
            }
        else:
            earned = bool((record.get("weights") or {}).get("uids"))
            weights = {
                "uids": [],
                "weights": [],
                "block": None,
                "set_at": None,
                "why": "a later epoch's EMA went on chain first" if earned else NOTHING_EARNED,
            }
        share = dict(zip(weights["uids"], weights["weights"]))
        document = {
            "epoch_id": record["epoch_id"],
            "validator": self.hotkey,
            "block": record["block"],
            "block_hash": record["block_hash"],
            "params": {k: v for k, v in self.params.__dict__.items() if k != "limits"},
            "weights": weights,
            "miners": [dict(m, weight=share.get(m["uid"], 0.0)) for m in record["results"]],
            "written_at": iso_z(utcnow()),
        }
        path = self.path(record["epoch_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2))
        tmp.replace(path)
        return path

    def validated_folder(self, epoch_id: str) -> Path:
        return self.validated / epoch_id

    def write_validated(
        self, epoch_id: str, block: int, block_hash: str, expected: dict[str, int], listings: pa.Table, observations: pa.Table
    ) -> dict:
        """Write the epoch's validated listings and their signed manifest (atomically: a folder appears whole or
        not at all; the same verdicts give the same file bytes), then drop folders beyond ``keep_epochs``."""
        files = {LISTINGS_FILE: parquet_bytes(listings), OBSERVATIONS_FILE: parquet_bytes(observations)}
        signed = sign_manifest(
            self.api.require_signer(), manifest(epoch_id, block, block_hash, listings, files, __version__, expected)
        )
        folder = self.validated_folder(epoch_id)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST_FILE).write_text(json.dumps(signed, indent=2, sort_keys=True))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.replace(folder)
        if self.metrics is not None:
            self.metrics.published_rows.inc(listings.num_rows)
        logger.info(
            f"epoch {epoch_id}: {listings.num_rows} validated listings in {len(signed['zipcodes'])} zipcodes written to {folder}"
        )
        self._prune()
        return signed

    def _prune(self) -> None:
        if self.keep_epochs <= 0 or not self.validated.is_dir():
            return
        epochs = sorted(p for p in self.validated.iterdir() if p.is_dir() and not p.name.endswith(".tmp"))
        for old in epochs[: -self.keep_epochs]:
            shutil.rmtree(old, ignore_errors=True)

    def _files(self, epoch_id: str) -> list[tuple[str, Path]]:
        """(key under the epoch's folder, local path) of what an upload sends, the manifest after its files and
        the results last."""
        folder = self.validated_folder(epoch_id)
        names = (LISTINGS_FILE, OBSERVATIONS_FILE, MANIFEST_FILE) if (folder / MANIFEST_FILE).exists() else ()
        return [(f"{VALIDATED_FOLDER}/{name}", folder / name) for name in names] + [
            (c.VALIDATION_RESULTS_FILE, self.path(epoch_id))
        ]

    def offer(self, epoch_id: str) -> None:
        """Queue an upload unless it is queued, done, given up, or the queue is full (offered again later)."""
        if (
            epoch_id in self._queued
            or self._attempts.get(epoch_id, 0) >= self.max_attempts
            or time.monotonic() < self._not_before
        ):
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
                logger.warning(
                    f"epoch {epoch_id}: results upload waits for the API's limit to reset (in "
                    f"{wait:.0f} s, after the next epoch is due); offered again then"
                )
                return False
            return self._failed(epoch_id, exc)
        try:
            async with aiohttp.ClientSession() as session:
                for key, local in self._files(epoch_id):
                    await upload_post(session, access.url, access.fields, access.folder + key, local.read_bytes())
        except (StorageError, OSError) as exc:
            return self._failed(epoch_id, exc)
        self.state.mark(epoch_id, results_uploaded=True)
        logger.info(f"epoch {epoch_id}: results and validated listings uploaded to {access.folder}")
        return True

    def _failed(self, epoch_id: str, exc: Exception) -> bool:
        if self.metrics is not None:
            self.metrics.upload_failures.inc()
        self._attempts[epoch_id] = self._attempts.get(epoch_id, 0) + 1
        left = self.max_attempts - self._attempts[epoch_id]
        logger.warning(
            f"epoch {epoch_id}: results not uploaded ({exc}); kept at {self.path(epoch_id)}"
            + (f", {left} more attempts" if left > 0 else ", not trying again")
        )
        return False
