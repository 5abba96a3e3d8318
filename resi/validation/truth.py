"""The truth check: a row earns only when the validator has evidence that it is a real, current listing with
exactly these values.

1. Every valid row is compared with the validator's own scrape of the same zipcodes after the deadline (the
   snapshot, with the facts the search gave: list, pending and sale dates): ``snapshot_index.compare``, whose
   row-by-row definition is ``reference.split_by_snapshot``. A row whose static fields differ
   from the snapshot's is proven false. A row the snapshot proves (``history.judge_claim``) is credited.
2. The others form the *pool*: rows the snapshot lacks (sold, withdrawn or invented since) and rows whose
   status, price or days on market differ from what the snapshot shows at their scrape time (changed during
   the epoch, or biased). A committed random sample of the pool is fetched again by id, with the listing's
   history, and judged against it: confirmed, or bad (not found, refused for that row, contradicted, stale).
   The sample's seed is a hash of a block hash after the deadline, the miner's hotkey and its file's sha256:
   a miner cannot know it when it uploads, and cannot change it afterwards without changing the file.
3. When the sample is answered well enough (``min_answered_share`` of it: refetches that failed because the
   source was down do not count as answered), the unsampled pool rows are credited at the sample's confirmed
   rate, and the bad share is estimated from the answered sample. Otherwise only proven rows are credited.

Estimated proven-false share ``r = (proven false in the snapshot + b x pool) / valid rows``, with ``b`` the
proven-false share of the answered sample (of the whole sample when too little was answered: an outage never
counts against a miner). A row proven false never earns and costs ``false_penalty`` times its share: truth
factor ``1 - penalty x r``, floored at 0, and 0 when ``r`` exceeds the threshold (what the sample cannot bound).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from resi.validation.history import BAD, Facts, Row, judge_claim, timeline
from resi.validation.params import ValidationParams

REFUSED = "refused"
"""Refetch outcome: the source refused the request for this row while it answered others."""
UNANSWERED = "unanswered"
"""Refetch outcome: the source could not be asked (it was down); neither proof nor disproof."""


@dataclass(frozen=True)
class Snapshot:
    facts: dict[str, Facts]
    """Listing id -> what the validator's own scrape says about it."""
    counts: dict[str, int | None]
    """Zipcode -> listings found there; None when scraping that zipcode failed."""


def sample_seed(block_hash: str, hotkey: str, file_sha256: str) -> int:
    digest = hashlib.sha256(f"{block_hash}|{hotkey}|{file_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose_sample(ids: list[str], seed: int, k: int) -> list[str]:
    """``k`` of ``ids`` (all when fewer), the same for everyone who knows the seed."""
    ordered = sorted(set(ids))
    return ordered if len(ordered) <= k else sorted(random.Random(seed).sample(ordered, k))


@dataclass
class TruthResult:
    """The truth check of one miner: counts by zipcode and the sampled rows only (one miner's rows are never
    kept beyond its judging)."""

    matched_by_zip: Counter[str] = field(default_factory=Counter)
    """Zipcode -> rows the snapshot proves."""
    bad: Counter[str] = field(default_factory=Counter)
    """Reason -> rows proven false (in the snapshot or in the sample)."""
    snapshot_bad: int = 0
    valid: int = 0
    pool_by_zip: Counter[str] = field(default_factory=Counter)
    """Zipcode -> rows the snapshot could not prove."""
    pooled: Counter[str] = field(default_factory=Counter)
    """Why rows went to the pool: ``not_in_snapshot`` or ``differs:<field>``."""
    sample_rows: dict[str, Row] = field(default_factory=dict)
    """The sampled pool rows (listing id -> row), in sample order."""
    confirmed: set[str] = field(default_factory=set)
    sample_bad: int = 0
    unanswered: int = 0
    extrapolated: dict[str, float] = field(default_factory=dict)
    """Zipcode -> credit given to unsampled pool rows at the sample's confirmed rate."""
    estimated_rate: float = 0.0
    factor: float = 1.0

    @property
    def sample(self) -> list[str]:
        return list(self.sample_rows)

    @property
    def pool_size(self) -> int:
        return sum(self.pool_by_zip.values())

    @property
    def proven(self) -> int:
        return sum(self.matched_by_zip.values()) + len(self.confirmed)

    def credited(self) -> dict[str, float]:
        """Zipcode -> credited rows: proven ones plus what the sample lets extrapolate."""
        out: dict[str, float] = dict(self.matched_by_zip)
        for listing_id in self.confirmed:
            zipcode = self.sample_rows[listing_id]["zipcode"]
            out[zipcode] = out.get(zipcode, 0) + 1
        for zipcode, credit in self.extrapolated.items():
            out[zipcode] = out.get(zipcode, 0) + credit
        return out


def truth_factor(false_share: float, params: ValidationParams) -> float:
    """0 above the threshold; else each proven-false row costs ``false_penalty`` times its share."""
    if false_share > params.fabrication_threshold:
        return 0.0
    return max(0.0, 1.0 - params.false_penalty * false_share)


def refetch_verdict(row: Row, outcome: Facts | str | None, epoch_start: float) -> str | None:
    """Why a refetched pool row is bad (None when the source confirms it); ``outcome`` is not UNANSWERED."""
    if outcome is None:
        return "not_found_at_source"
    if isinstance(outcome, str):  # REFUSED: UNANSWERED never comes here
        return "refused_by_source"
    verdict = judge_claim(row, outcome, epoch_start, timeline(outcome))
    if verdict is None:
        return None
    return verdict[1] if verdict[0] == BAD else f"mismatch:{verdict[1]}"


def conclude(
    result: TruthResult, outcomes: dict[str, Facts | str | None], epoch_start: float, params: ValidationParams
) -> TruthResult:
    """Finish the truth check with the refetched sample: credit, the estimated bad share and the factor. Pure:
    ``result`` (what the comparison with the snapshot gave) is left as it was; a new result is returned, so
    judging the same inputs twice gives equal results."""
    result = replace(result, bad=Counter(result.bad), confirmed=set(), sample_bad=0, unanswered=0, extrapolated={})
    for listing_id, row in result.sample_rows.items():
        outcome = outcomes.get(listing_id, UNANSWERED)
        if outcome == UNANSWERED:
            result.unanswered += 1
            continue
        reason = refetch_verdict(row, outcome, epoch_start)
        if reason is None:
            result.confirmed.add(listing_id)
        else:
            result.bad[reason] += 1
            result.sample_bad += 1
    sampled = len(result.sample_rows)
    answered = sampled - result.unanswered
    if answered > 0 and answered >= math.ceil(params.min_answered_share * sampled):
        rate, bad_share = len(result.confirmed) / answered, result.sample_bad / answered
        unsampled = Counter(result.pool_by_zip)
        unsampled.subtract(Counter(row["zipcode"] for row in result.sample_rows.values()))
        result.extrapolated = {z: n * rate for z, n in sorted(unsampled.items()) if n > 0 and rate > 0}
    else:  # the source was down for too much of the sample: only proven rows earn, no outage counts against
        bad_share = result.sample_bad / sampled if sampled else 0.0
    total = result.valid
    estimate = (result.snapshot_bad + bad_share * result.pool_size) / total if total else 0.0
    result.estimated_rate = estimate
    result.factor = truth_factor(estimate, params)
    return result
