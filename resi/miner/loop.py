"""The miner's loop: follow the epochs, scrape each assignment, upload before the deadline, report.

One epoch: record the assignment, report ``IN_PROGRESS``, scrape the zipcodes not yet finished (each
finished zipcode is checkpointed at once), retry failed ones until the upload time (deadline minus a
margin), upload what there is, report ``COMPLETED`` (everything), ``TIMEOUT`` (time ran out: partial data,
or none) or ``FAILED`` (a fatal error, with its reason). A restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from loguru import logger

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.api.models import Assignment
from resi.clock import Clock, SystemClock, pause
from resi.epochs import UTC, iso_z
from resi.miner.checkpoint import SCRAPING, UPLOADED, Checkpoint, EpochRecord
from resi.miner.strategy import Honest, PackageInfo, Strategy
from resi.miner.upload import Uploader, UploadFailed
from resi.monitor.metrics import MinerMetrics
from resi.monitor.watchdog import Heartbeat
from resi.scraping.pipeline import Pipeline, ZipcodeOutcome, dedupe
from resi.scraping.source import ListingSource


@dataclass(frozen=True)
class MinerConfig:
    data_dir: Path
    concurrency: int = 4
    upload_margin: float = 900.0
    """Seconds before the deadline at which the miner stops scraping and uploads what it has."""
    poll_interval: float = 60.0
    retention_days: float = 7.0
    zipcode_retry_pause: float = 30.0


def too_late(assignment: Assignment, now: datetime, upload_margin: float) -> str | None:
    """What to say when an epoch not started yet is past its upload time (None while there is time)."""
    upload_at = assignment.submission_deadline - timedelta(seconds=upload_margin)
    if now < upload_at:
        return None
    return (
        f"too late for epoch {assignment.epoch_id}: its upload time {upload_at:%H:%M} UTC has passed; next "
        f"epoch at {assignment.epoch_end:%H:%M} UTC"
    )


class Miner:
    def __init__(
        self,
        hotkey: str,
        api: ResiApiClient,
        source: ListingSource,
        checkpoint: Checkpoint,
        uploader: Uploader,
        config: MinerConfig,
        strategy: Strategy | None = None,
        metrics: MinerMetrics | None = None,
        heartbeat: Heartbeat | None = None,
        clock: Clock | None = None,
    ):
        self.hotkey = hotkey
        self.clock = clock or SystemClock()
        self.api = api
        self.source = source
        self.checkpoint = checkpoint
        self.uploader = uploader
        self.config = config
        self.strategy = strategy or Honest()
        self.metrics = metrics or MinerMetrics()
        self.heartbeat = heartbeat or Heartbeat()
        self.pipeline = Pipeline(source, concurrency=config.concurrency, zipcode_attempts=1)
        self._late_for: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: poll the assignment, work every epoch not yet reported, wait for the next."""
        self.prune()
        while not stop.is_set():
            self.heartbeat.beat("miner loop")
            wait = self.config.poll_interval
            try:
                assignment = await self.api.current_assignment()
                record = self.checkpoint.epoch(assignment.epoch_id)
                late = too_late(assignment, self.clock.now(), self.config.upload_margin) if record is None else None
                if late:
                    if self._late_for != assignment.epoch_id:
                        logger.warning(late)
                        self._late_for = assignment.epoch_id
                elif record is None or record.reported is None:
                    await self.run_epoch(assignment, stop)
                    self.prune()
                until_next = (assignment.epoch_end - self.clock.now()).total_seconds() + 1
                wait = max(1.0, min(wait, until_next))
            except ApiError as exc:
                logger.error(f"Resi API: {exc}; trying again in {wait:g} s")
            except Exception:  # never let one bad epoch end the miner
                logger.exception("unexpected error in the miner loop; continuing")
            await pause(stop, wait)

    async def run_epoch(self, assignment: Assignment, stop: asyncio.Event) -> str | None:
        """Work one epoch to its reported status (None if stopped before the end)."""
        record = self.checkpoint.start_epoch(assignment)
        assignment = record.assignment
        epoch_id = assignment.epoch_id
        logger.info(f"epoch {epoch_id}: {len(assignment.zipcodes)} zipcodes, deadline {iso_z(assignment.submission_deadline)}")
        status, reason = None, None
        if record.state == SCRAPING:
            await self._report(record, c.STATUS_IN_PROGRESS)
            await self.scrape(assignment, stop)
            if stop.is_set():
                return None
            status, reason = await self.deliver(record)
        record = self.checkpoint.known(epoch_id)
        if status is None:  # restarted after the upload, before the report
            status = c.STATUS_COMPLETED if self._all_done(record) else c.STATUS_TIMEOUT
        if record.reported != status:
            await self._report(record, status, reason)
        return status

    def _all_done(self, record: EpochRecord) -> bool:
        finished = self.checkpoint.finished_zipcodes(record.assignment.epoch_id)
        return all(z in finished for z in self.strategy.zipcodes(record.assignment))

    async def scrape(self, assignment: Assignment, stop: asyncio.Event) -> None:
        """Scrape every unfinished zipcode until all are done, the upload time comes, or ``stop``."""
        upload_at = assignment.submission_deadline - timedelta(seconds=self.config.upload_margin)
        epoch_id = assignment.epoch_id

        def save(outcome: ZipcodeOutcome) -> None:
            self.heartbeat.beat(f"zipcode {outcome.zipcode}")
            self.metrics.zipcodes.labels("ok" if outcome.ok else "failed").inc()
            if outcome.ok:
                self.checkpoint.save_zipcode(epoch_id, outcome.zipcode, outcome.rows, dict(outcome.drops))
                self.metrics.rows_scraped.inc(outcome.rows.num_rows)
            else:
                self.metrics.source_errors.labels(outcome.error_kind or "unavailable").inc()
                logger.warning(f"{outcome.zipcode}: {outcome.error}")

        while not stop.is_set():
            finished = self.checkpoint.finished_zipcodes(epoch_id)
            pending = [z for z in self.strategy.zipcodes(assignment) if z not in finished]
            left = (upload_at - self.clock.now()).total_seconds()
            if not pending or left <= 0:
                break
            work = asyncio.ensure_future(self.pipeline.run(pending, on_done=save))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({work, stopper}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if work not in done:
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                if not stop.is_set():
                    logger.warning(f"epoch {epoch_id}: upload time reached with zipcodes left to scrape")
                break
            if any(not o.ok for o in work.result()):
                await pause(stop, min(self.config.zipcode_retry_pause, max(0.0, left)))

    async def deliver(self, record: EpochRecord) -> tuple[str, str | None]:
        """Build and upload the epoch's files; the status to report and, unless COMPLETED, why."""
        assignment = record.assignment
        epoch_id = assignment.epoch_id
        duplicates: Counter = Counter()
        rows = dedupe(self.checkpoint.rows(epoch_id), duplicates)
        if duplicates:
            logger.info(f"epoch {epoch_id}: duplicates across zipcodes dropped: {dict(duplicates)}")
        all_done = self._all_done(record)
        info = PackageInfo(
            self.hotkey,
            self.source.name,
            self.source.version,
            datetime.fromtimestamp(record.created_at, UTC),
            self.config.data_dir,
        )
        files = await asyncio.to_thread(self.strategy.package, rows, assignment, info)
        if files is None:
            return (c.STATUS_FAILED if all_done else c.STATUS_TIMEOUT), "no listings were scraped"
        files.save(self.config.data_dir / "epochs" / epoch_id)
        try:
            verified = await self.uploader.upload(files, epoch_id, assignment.submission_deadline)
        except UploadFailed as exc:
            logger.error(f"epoch {epoch_id}: upload failed: {exc}")
            return (c.STATUS_FAILED if exc.fatal else c.STATUS_TIMEOUT), str(exc)
        self.checkpoint.set_uploaded(epoch_id, bool(verified))
        self.metrics.rows_uploaded.inc(rows.num_rows)
        self.metrics.uploaded_bytes.inc(len(files.parquet) + len(files.metadata_json))
        self.metrics.last_upload.set_to_current_time()
        if all_done:
            return c.STATUS_COMPLETED, None
        return c.STATUS_TIMEOUT, "the upload time came before every zipcode was scraped"

    async def _report(self, record: EpochRecord, status: str, reason: str | None = None) -> None:
        """Tell the API; a failure to report is logged, never fatal (the upload is what counts)."""
        epoch_id = record.assignment.epoch_id
        completions = self.checkpoint.completions(epoch_id)
        uploaded = self.checkpoint.known(epoch_id).state == UPLOADED
        try:
            await self.api.update_status(
                epoch_id,
                record.assignment.nonce,
                status,
                listings_scraped=sum(n for _, n, _ in completions),
                zipcodes_completed=[
                    {"zipcode": z, "listingsScraped": n, "completedAt": iso_z(datetime.fromtimestamp(t, UTC))}
                    for z, n, t in completions
                ],
                s3_upload_complete=uploaded,
                failure_reason=reason,
            )
        except ApiError as exc:
            if exc.retryable or status == c.STATUS_IN_PROGRESS:
                logger.warning(f"epoch {epoch_id}: status {status} not reported: {exc}")
                return
            logger.error(f"epoch {epoch_id}: the API refused status {status}: {exc}; not retrying")
            self.checkpoint.set_reported(epoch_id, f"{status} (refused)")
            return
        if status != c.STATUS_IN_PROGRESS:
            self.checkpoint.set_reported(epoch_id, status)
            self.metrics.epochs.labels(status).inc()
        logger.info(f"epoch {epoch_id}: reported {status}" + (f" ({reason})" if reason else ""))

    def prune(self) -> None:
        """Forget local epochs older than the retention period (checkpoint rows and files)."""
        cutoff = self.clock.now().timestamp() - self.config.retention_days * 86_400
        for epoch_id in self.checkpoint.prune(cutoff):
            folder = self.config.data_dir / "epochs" / epoch_id
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
            if folder.exists():
                folder.rmdir()
            logger.info(f"pruned local data of epoch {epoch_id}")
