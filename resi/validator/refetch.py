"""The source asked again for the listings a sample picked: one epoch's answers, shared by every miner, kept
in the validator's state (a restart asks nothing twice), and a canary that tells a source that is down from
one that refuses what it was asked."""

from __future__ import annotations

import asyncio

from loguru import logger

from resi.clock import Clock
from resi.scraping.source import Drop, ListingSource, SourceError, SourceRefused
from resi.validation.truth import REFUSED, UNANSWERED, Snapshot
from resi.validator.state import ValidatorState


class Refetcher:
    """One epoch's refetches. Called with listing ids, it answers each: facts, None (no such listing), REFUSED
    (the source refused that request while it answers a listing it has) or UNANSWERED (the source was down:
    asked again on the next call)."""

    def __init__(
        self, source: ListingSource, state: ValidatorState, epoch_id: str, snapshot: Snapshot, concurrency: int, clock: Clock
    ):
        self.source = source
        self.state = state
        self.epoch_id = epoch_id
        self.snapshot = snapshot
        self.concurrency = concurrency
        self.clock = clock
        self.answers: dict[str, dict | str | None] = state.refetched(epoch_id)
        """Every answer of the epoch so far (listing id -> outcome), UNANSWERED ones excepted."""

    async def __call__(self, ids: list[str]) -> dict:
        missing = [i for i in ids if i not in self.answers]
        semaphore = asyncio.Semaphore(self.concurrency)
        failed: list[str] = []
        answers: dict[str, dict | str | None] = {}

        async def one(listing_id: str) -> None:
            async with semaphore:
                try:
                    record = await self.source.fetch(listing_id)
                except SourceRefused:
                    answers[listing_id] = REFUSED
                    return
                except SourceError:
                    failed.append(listing_id)
                    return
                try:
                    answers[listing_id] = None if record is None else self.source.facts(record, self.clock.now())
                except Drop:  # the source's answer for this id does not describe a listing
                    answers[listing_id] = REFUSED

        await asyncio.gather(*(one(i) for i in missing))
        if failed:
            source_up = await self.source_answers()
            for listing_id in failed:
                answers[listing_id] = REFUSED if source_up else UNANSWERED
            if not source_up:
                logger.warning(f"epoch {self.epoch_id}: the listing source is not answering ({len(failed)} refetches)")
        answered = {listing_id: outcome for listing_id, outcome in answers.items() if outcome != UNANSWERED}
        if answered:
            self.state.save_refetches(self.epoch_id, answered)
            self.answers.update(answered)
        return {i: self.answers.get(i, answers.get(i, UNANSWERED)) for i in ids}

    async def source_answers(self) -> bool:
        """Whether the source answers a request for a listing it is known to have (the canary): if so, a
        refetch that failed failed because of what it asked for."""
        canary = min(self.snapshot.facts, default=None)
        if canary is None:
            return False
        try:
            await self.source.fetch(canary)
        except SourceError:
            return False
        return True
