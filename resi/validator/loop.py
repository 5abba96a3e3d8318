"""The validator's loop: after each epoch's deadline (plus a grace period), once per epoch, also across
restarts: fix the epoch's inputs, take its own snapshot of the assigned zipcodes, fetch and judge every
miner (in a sandboxed child process), fold the scores into the EMA, keep and upload
``validation_results.json``. Beside the loop: the weights follow the EMA on the chain's cadence
(:mod:`resi.validator.weights`), and the results upload waits out its rate limit; neither holds the loop up.

An outage (S3, the API, the chain or the listing source cannot be reached) is never a miner's fault: the
attempt stops, nothing is committed, and the epoch is validated again later within ``max_lag``. An attempt
that ends without a clean outcome (an unexpected error, the validator killed in the middle) counts; after
``max_attempts`` of them in a row the epoch is skipped, so no input can stop the validator for good.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from loguru import logger

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.api.models import Assignment
from resi.chain.base import Chain, ChainError
from resi.clock import Clock, SystemClock, pause
from resi.epochs import epoch_id as format_epoch_id
from resi.epochs import parse_iso
from resi.listings.upload import Submission
from resi.monitor.metrics import ValidatorMetrics
from resi.monitor.watchdog import Heartbeat
from resi.scraping.pipeline import Pipeline
from resi.scraping.source import ListingSource, SourceError
from resi.storage import StorageError, list_objects
from resi.validation.copies import find_copies
from resi.validation.dataset import EpochDataset
from resi.validation.evaluate import EpochInputs, MinerResult, apply_copies, take_roles
from resi.validation.params import EpochContext, ValidationParams
from resi.validation.scoring import update_ema, weights
from resi.validation.truth import Snapshot
from resi.validation.verdict import verdict
from resi.validator.downloads import DownloadLimits, Outage, submissions
from resi.validator.judging import judge_all
from resi.validator.refetch import Refetcher
from resi.validator.results import ResultsPublisher
from resi.validator.sandbox import Sandbox, SandboxLimits, SandboxPool
from resi.validator.schedule import BEFORE_FIRST_RUN, plan
from resi.validator.state import ValidatorState
from resi.validator.weights import WeightKeeper

OUTAGES = (Outage, ApiError, ChainError, SourceError)
"""What stops an attempt without it being anyone's fault: retried later."""


@dataclass(frozen=True)
class ValidatorConfig:
    data_dir: Path
    grace: float = 600.0
    """Seconds after an epoch's deadline before it is validated (uploads settle, the seed block exists)."""
    max_lag: float | None = None
    """An epoch older than this (seconds after its deadline) is skipped: its listings have moved on.
    Default: one epoch length."""
    download_concurrency: int = 8
    refetch_concurrency: int = 4
    poll_interval: float = 60.0
    max_attempts: int = 5
    """Attempts in a row at one epoch that end without a clean outcome before it is skipped."""
    snapshot_failure_share: float = 0.1
    """Share of the assigned zipcodes whose scrape may fail for the snapshot to be used."""
    limits: DownloadLimits = DownloadLimits()
    sandbox: SandboxLimits = SandboxLimits()
    params: ValidationParams = field(default_factory=ValidationParams)
    keep_epochs: int = 42
    """Epochs of validated listings kept in ``<data_dir>/validated/`` (0: all); 42 is a week of 4-hour epochs."""


class Validator:
    def __init__(
        self,
        hotkey: str,
        api: ResiApiClient,
        chain: Chain,
        source: ListingSource,
        state: ValidatorState,
        config: ValidatorConfig,
        sandbox: Sandbox | SandboxPool | None = None,
        keeper: WeightKeeper | None = None,
        metrics: ValidatorMetrics | None = None,
        heartbeat: Heartbeat | None = None,
        clock: Clock | None = None,
    ):
        self.hotkey = hotkey
        self.clock = clock or SystemClock()
        self.api = api
        self.chain = chain
        self.source = source
        self.state = state
        self.config = config
        self.sandbox = sandbox or SandboxPool(config.sandbox)
        self.metrics = metrics or ValidatorMetrics()
        self.results = ResultsPublisher(
            api,
            state,
            config.data_dir / "results",
            hotkey,
            config.params,
            validated=config.data_dir / "validated",
            keep_epochs=config.keep_epochs,
            metrics=self.metrics,
        )
        self.keeper = keeper or WeightKeeper(chain, state, hotkey, c.WEIGHTS_VERSION_KEY)
        self.heartbeat = heartbeat or Heartbeat()
        self._seen: set[str] = set()
        self._schedule: tuple[datetime, datetime] | None = None

    # --- scheduling -----------------------------------------------------------------------------------------------

    async def _epochs(self) -> tuple[str, datetime, datetime]:
        """(previous epoch id, its end, the current epoch's end), from the API's public statistics once per
        epoch: in between, the schedule is known."""
        if self._schedule is None or self.clock.now() >= self._schedule[1]:
            stats = (await self.api.stats()).model_dump()
            try:
                current = stats["epochStatus"]["currentEpoch"]
                self._schedule = (parse_iso(current["startTime"]), parse_iso(current["endTime"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ApiError(None, [f"stats without a current epoch: {exc!r}"]) from None
        start, end = self._schedule
        return format_epoch_id(start - (end - start)), start, end

    async def run(self, stop: asyncio.Event) -> None:
        uploads = asyncio.create_task(self.results.run(stop, self._until_next_epoch))
        keeper = asyncio.create_task(self.keeper.run(stop))
        try:
            while not stop.is_set():
                self.heartbeat.beat("validator loop")
                wait = self.config.poll_interval
                try:
                    wait = min(wait, await self.step())
                except Outage as exc:
                    logger.error(f"validator: {exc}; validating again in {wait:g} s")
                except OUTAGES as exc:
                    logger.error(f"validator: {exc}; trying again in {wait:g} s")
                except Exception:
                    logger.exception("unexpected error in the validator loop; continuing")
                await pause(stop, max(1.0, wait))
        finally:
            uploads.cancel()
            keeper.cancel()
            await asyncio.gather(uploads, keeper, return_exceptions=True)
            await self.sandbox.close()

    def _max_lag(self, epoch_length: timedelta) -> float:
        return self.config.max_lag or epoch_length.total_seconds()

    def _until_next_epoch(self) -> float:
        if self._schedule is None:
            return 0.0
        due = self._schedule[1] + timedelta(seconds=self.config.grace)
        return (due - self.clock.now()).total_seconds()

    async def step(self) -> float:
        """One pass: settle what is done, finish or start what is due; seconds until something is due."""
        await self.settle()
        for epoch_id in self.state.unfinished():  # killed mid-epoch, or an outage stopped it: finish it now
            logger.info(f"epoch {epoch_id}: resuming an unfinished validation")
            if await self.process(epoch_id) is None and not self.state.finished(epoch_id):
                return self.config.poll_interval
        _, current_start, current_end = await self._epochs()
        now = self.clock.now()
        step = plan(
            now,
            current_start,
            current_end,
            self.config.grace,
            self.config.max_lag,
            self.state.first_run(now.timestamp()),
            self.state.finished,
            lambda epoch_id: self.state.epoch(epoch_id) is not None,
        )
        for epoch_id, why in step.skip:
            if why == BEFORE_FIRST_RUN:
                logger.info(f"epoch {epoch_id}: {why}; not validated")
            else:
                logger.warning(f"epoch {epoch_id}: too old to validate now; skipped")
            self._skip(epoch_id, why)
        if step.validate is None:
            return step.wait
        return 0.0 if await self.process(step.validate) is not None else self.config.poll_interval

    def _saw(self, epoch_id: str) -> None:
        """Count an ended epoch this validator looked at, once (validated, skipped, or still being tried)."""
        if epoch_id not in self._seen:
            self._seen.add(epoch_id)
            self.metrics.epochs_seen.inc()

    def _skip(self, epoch_id: str, detail: str) -> None:
        self._saw(epoch_id)
        self.state.skip(epoch_id, detail)
        self.metrics.epochs_skipped.inc()

    # --- one epoch ----------------------------------------------------------------------------------------------------

    async def process(self, epoch_id: str) -> list[MinerResult] | None:
        """Validate ``epoch_id`` end to end (idempotent: a finished epoch is never counted again). None when
        nothing was committed: an outage stopped it (raised), the source left part of the sample unanswered (it
        is validated again later; from three quarters of the allowed lag on, committed with only proven rows
        earning), or it was skipped."""
        self._saw(epoch_id)
        attempts = self.state.start_attempt(epoch_id)
        if attempts > self.config.max_attempts:
            logger.error(f"epoch {epoch_id}: {attempts - 1} attempts in a row ended without an outcome; skipped")
            self._skip(epoch_id, f"{attempts - 1} attempts ended without an outcome")
            self.state.end_attempt(epoch_id)
            return None
        try:
            results = await self._process(epoch_id)
        except OUTAGES:
            self.state.end_attempt(epoch_id)  # nobody's fault: does not count against the epoch
            raise
        self.state.end_attempt(epoch_id)
        return results

    async def _process(self, epoch_id: str) -> list[MinerResult] | None:
        try:
            assignment = await self.api.epoch_assignment(epoch_id)
        except ApiError as exc:
            if exc.status == 404:
                logger.info(f"epoch {epoch_id}: no assignment was made; nothing to validate")
                self._skip(epoch_id, "no assignment")
                return None
            raise
        lag = self._max_lag(assignment.epoch_end - assignment.epoch_start)
        if (self.clock.now() - assignment.submission_deadline).total_seconds() > lag:
            logger.warning(f"epoch {epoch_id}: not validated within {lag:g} s of its deadline; skipped")
            self._skip(epoch_id, "not validated within the allowed lag")
            return None
        record = await self._begin(assignment)
        ctx = EpochContext(
            epoch_id=epoch_id,
            nonce=assignment.nonce,
            start=assignment.epoch_start,
            deadline=assignment.submission_deadline,
            expected=assignment.expected(),
            tolerance_percent=assignment.tolerance_percent,
            source_origin=self.source.origin,
        )
        snapshot = await self._snapshot(assignment)
        params = self.config.params
        inputs = EpochInputs(ctx, params, snapshot, record["block_hash"])
        self.sandbox.set_epoch(inputs)
        members = {int(m[0]): (bool(m[2]), bool(m[3])) if len(m) >= 4 else (False, False) for m in record["metagraph"]}
        miners = [(int(m[0]), str(m[1])) for m in record["metagraph"]]
        logger.info(
            f"epoch {epoch_id}: validating {len(miners)} uids, seed block {record['block']}, snapshot of "
            f"{len(snapshot.facts)} listings"
        )
        subs = submissions(self.api, miners, epoch_id, self.config.limits, self.config.download_concurrency, self._reachable)
        dataset = EpochDataset(epoch_id)
        refetcher = Refetcher(self.source, self.state, epoch_id, snapshot, self.config.refetch_concurrency, self.clock)
        judged = await judge_all(subs, self.sandbox, refetcher, inputs, self.config.sandbox.workers, self._judged_one, dataset)
        results, unanswered = judged.results, judged.unanswered
        final = (self.clock.now() - assignment.submission_deadline).total_seconds() >= 0.75 * lag
        if unanswered and not final:
            logger.warning(
                f"epoch {epoch_id}: the listing source did not answer {unanswered} sampled refetches; "
                "validating the epoch again later"
            )
            return None
        copies = find_copies(judged.uploads, params.copy_overlap)
        apply_copies(results, copies)
        take_roles(results, members)
        refetched = refetcher.answers

        def static(listing_id: str, by_snapshot: bool) -> dict:
            facts = snapshot.facts[listing_id] if by_snapshot else refetched[listing_id]
            if not isinstance(facts, dict):  # only a listing the source confirmed comes here
                raise KeyError(f"no facts of {listing_id}")
            return dict(facts["static"])

        try:  # the product of the epoch; never a reason for its scores not to count
            self.results.write_validated(
                epoch_id, record["block"], record["block_hash"], ctx.expected, *dataset.build(copies, static)
            )
        except Exception:
            self.metrics.upload_failures.inc()
            logger.exception(f"epoch {epoch_id}: the validated listings could not be written; scores count anyway")
        scores = {uid: (hk, 0.0) for uid, hk in miners}
        scores.update({r.uid: (r.hotkey, r.score) for r in results})
        ema = update_ema(self.state.ema(), scores, params.ema_alpha)
        target = weights(ema)
        weight_of = dict(zip(*target))
        documents = [dict(r.as_dict(), ema=ema.get(r.uid, (r.hotkey, 0.0))[1], weight=weight_of.get(r.uid, 0.0)) for r in results]
        for document in documents:
            said = verdict(document, params)
            document["verdict"] = {"kind": said.kind, "words": said.words}
        if self.state.commit(epoch_id, documents, ema, target):
            self.metrics.judged(documents, ema)
        else:
            logger.info(f"epoch {epoch_id}: already counted")
        await self.settle()
        return results

    def _judged_one(self, sub: Submission, result: MinerResult, seconds: float) -> None:
        self.heartbeat.beat(f"judged uid {sub.uid}")
        self.metrics.miner_seconds.observe(seconds)
        self.metrics.downloaded_bytes.inc(len(sub.listings or b"") + len(sub.metadata or b""))

    async def _begin(self, assignment: Assignment) -> dict:
        """The epoch's fixed inputs: stored ones on a restart, else the metagraph and the seed block now."""
        record = self.state.epoch(assignment.epoch_id)
        if record is not None and record["block_hash"]:
            return record
        graph = await self.chain.metagraph()
        block = await self.chain.first_block_at(assignment.submission_deadline.timestamp() + 1)
        for _ in range(900):  # the seed block comes within a few block times of the deadline
            if await self.chain.block() >= block:
                break
            self.heartbeat.beat("waiting for the seed block")
            await asyncio.sleep(1)  # noqa: ASYNC110 - polling the chain head
        else:
            raise ChainError(f"block {block} did not arrive within 15 minutes")
        block_hash = await self.chain.block_hash(block)
        began = await self.chain.first_block_at(assignment.epoch_start.timestamp())
        members = [(n.uid, n.hotkey, n.validator_permit, n.registered_at >= began) for n in graph.neurons]
        return self.state.begin(assignment.epoch_id, block, block_hash, members)

    async def _snapshot(self, assignment: Assignment) -> Snapshot:
        """The validator's own scrape of the assigned zipcodes (taken once per epoch, kept across restarts).
        Never used empty: when more than ``snapshot_failure_share`` of the zipcodes could not be scraped it is
        not kept, and the attempt stops (SourceError)."""
        stored = self.state.snapshot(assignment.epoch_id)
        if stored is None:
            pipeline = Pipeline(self.source, concurrency=4, zipcode_attempts=3, retry_pause=5.0, keep_facts=True)
            outcomes = await pipeline.run(
                [z.zipcode for z in assignment.zipcodes],
                quiet=True,
                on_done=lambda o: self.heartbeat.beat(f"snapshot {o.zipcode}"),
            )
            failed = [o.zipcode for o in outcomes if not o.ok]
            if not outcomes or len(failed) > self.config.snapshot_failure_share * len(outcomes):
                raise SourceError(
                    f"the listing source failed {len(failed)} of {len(outcomes)} zipcodes of the "
                    f"snapshot ({outcomes[0].error if failed and outcomes else 'none assigned'})"
                )
            facts = {k: v for o in outcomes for k, v in o.facts.items()}
            counts = {o.zipcode: (o.rows.num_rows if o.ok else None) for o in outcomes}
            self.state.save_snapshot(assignment.epoch_id, facts, counts)
            stored = (facts, counts)
        facts, counts = stored
        return Snapshot(facts, counts)

    async def _reachable(self) -> bool:
        """Whether the API and S3 answer what must work (the validator's own access and the miners' list)."""
        try:
            access = await self.api.validator_access()
            url = next(u.list_all_miners for u in access.urls.values() if u.list_all_miners)
            async with aiohttp.ClientSession() as session:
                await list_objects(session, url, max_pages=1, timeout=15)
        except (ApiError, StorageError, StopIteration):
            return False
        return True

    # --- weights and results -------------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Give the weights a chance to follow a new EMA at once (when the chain's rate limit allows; else the
        :class:`~resi.validator.weights.WeightKeeper` does it on its cadence), write the results of recent
        counted epochs not written yet and offer the upload of those not uploaded yet."""
        await self.keeper.attempt()
        records = self.state.recent_done(5)
        for n, record in enumerate(records):
            if not self.results.path(record["epoch_id"]).exists():
                # written once its weights are known: set on chain, superseded by a newer epoch, or none earned
                if record["on_chain"] is None and n == 0 and (record["weights"] or {}).get("uids"):
                    continue
                self.results.write(record)
            if not record["results_uploaded"]:
                self.results.offer(record["epoch_id"])
