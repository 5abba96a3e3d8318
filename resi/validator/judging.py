"""Judging an epoch's submissions as they arrive, several miners at a time (one per judging child), into
results, copy-detection uploads and the count of refetches the source left unanswered. The validator's loop
and the benchmark (``scripts/bench_validator.py``) run this same code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger

from resi.listings.upload import Submission
from resi.validation.copies import Upload
from resi.validation.dataset import EpochDataset
from resi.validation.evaluate import EpochInputs, MinerResult, Prepared, finish_with_truth


class Judge(Protocol):
    async def prepare(self, sub: Submission) -> Prepared: ...


@dataclass
class Judged:
    results: list[MinerResult] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    """What copy detection needs of every upload that passed (fingerprints: compact arrays)."""
    unanswered: int = 0


Observer = Callable[[Submission, MinerResult, float], None]
"""Told of each miner judged: its submission, its result (before copies) and the seconds it took."""


async def judge_all(
    subs: AsyncIterator[Submission],
    judge: Judge,
    refetch: Callable[[list[str]], Awaitable[dict]],
    inputs: EpochInputs,
    workers: int,
    observe: Observer | None = None,
    dataset: EpochDataset | None = None,
) -> Judged:
    """Every submission through ``judge`` (at most ``workers`` at once), its sample through ``refetch``, then
    ``finish``; whatever one miner's judging does costs that miner only. ``dataset``: where each judged miner's
    proven rows are folded (its evidence is dropped as soon as it is)."""
    judged = Judged()
    running: set[asyncio.Task] = set()
    ctx = inputs.ctx

    async def one(sub: Submission) -> None:
        began = time.monotonic()
        prepared = await judge.prepare(sub)
        refetched = await refetch(prepared.sample)
        truth = None
        try:
            result, truth = finish_with_truth(prepared, refetched, ctx, inputs.snapshot.counts, inputs.params)
        except Exception as exc:  # whatever the child answered, it costs this miner only
            logger.exception(f"epoch {ctx.epoch_id}: uid {sub.uid}: scoring failed")
            result = MinerResult(
                sub.uid, sub.hotkey, gate="judging_failed", gate_detail=type(exc).__name__, reasons={"judging_failed": 1}
            )
        judged.unanswered += result.sample_unanswered
        judged.results.append(result)
        if dataset is not None and prepared.evidence is not None and result.gate is None:
            try:
                dataset.add(sub.hotkey, prepared.evidence, truth.confirmed if truth else ())
            except Exception:  # the dataset loses this miner's rows; its score stands
                logger.exception(f"epoch {ctx.epoch_id}: uid {sub.uid}: its proven rows could not be folded")
        landed, sha256 = sub.listings_modified, prepared.sha256
        if prepared.passed and result.gate is None and landed is not None and sha256 is not None:
            judged.uploads.append(Upload(sub.hotkey, landed, sha256, prepared.prints))
        logger.info(
            f"epoch {ctx.epoch_id}: uid {sub.uid} score {result.score:.4f} "
            f"({result.gate or 'ok'}; {result.rows_valid}/{result.rows_uploaded} valid rows)"
        )
        if observe is not None:
            observe(sub, result, time.monotonic() - began)

    try:
        async for sub in subs:
            running.add(asyncio.create_task(one(sub)))
            if len(running) >= workers:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        if running:
            done, running = await asyncio.wait(running)
            for task in done:
                task.result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    judged.results.sort(key=lambda r: r.uid)
    return judged
