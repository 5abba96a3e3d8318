"""One miner's epoch, from downloaded bytes to a score, in two pure steps around the refetch.

``prepare`` gates the files, checks every row, compares the valid rows with the snapshot and picks the
committed sample of the pool; it never raises (whatever a file does to the code that reads it becomes the
miner's gate reason) and what it returns is small: counts, the sampled rows and the row fingerprints, no
table. Validators run it in a child process with a memory and a time limit (``resi/validator/sandbox.py``).
The caller fetches the sample again (IO); ``finish`` turns the answers into the score and its reasons.
Copies are judged across miners afterwards (``apply_copies``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.listings.upload import Submission
from resi.validation.copies import fingerprints
from resi.validation.dataset import evidence
from resi.validation.gates import check_gates
from resi.validation.history import Facts
from resi.validation.params import EpochContext, ValidationParams
from resi.validation.rows import check_rows
from resi.validation.scoring import completeness, epoch_score, quality
from resi.validation.snapshot_index import SnapshotIndex, compare
from resi.validation.truth import Snapshot, TruthResult, choose_sample, conclude, sample_seed
from resi.validation.verdict import VALIDATOR


@dataclass(frozen=True)
class EpochInputs:
    """What judging any miner of an epoch needs, built once by the validator and given to both steps: the
    judging children get it for ``prepare`` (the snapshot indexed there), ``finish`` takes it after the
    refetch."""

    ctx: EpochContext
    params: ValidationParams
    snapshot: Snapshot
    block_hash: str
    """The seed block's hash: with the hotkey and the file's sha256 it seeds each miner's sample."""


@dataclass
class Prepared:
    """What judging one miner's files yields before the refetch."""

    hotkey: str
    uid: int
    gate: str | None = None
    """Why the files score 0 (None when they passed the gates)."""
    gate_detail: str = ""
    sha256: str | None = None
    modified: datetime | None = None
    """When its listings.parquet landed."""
    rows_uploaded: int = 0
    row_reasons: Counter[str] = field(default_factory=Counter)
    truth: TruthResult | None = None
    prints: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    evidence: pa.Table | None = None
    """What the epoch's validated listings need of its valid rows (``dataset.evidence``)."""

    @property
    def passed(self) -> bool:
        return self.gate is None

    @property
    def sample(self) -> list[str]:
        return self.truth.sample if self.truth is not None else []


@dataclass
class MinerResult:
    uid: int
    hotkey: str
    score: float = 0.0
    gate: str | None = None
    gate_detail: str = ""
    rows_uploaded: int = 0
    rows_valid: int = 0
    rows_credited: float = 0.0
    rows_proven: int = 0
    rows_pooled: int = 0
    completeness: float = 0.0
    quality: float = 0.0
    truth_factor: float = 0.0
    estimated_fabrication: float = 0.0
    sample_size: int = 0
    sample_confirmed: int = 0
    sample_bad: int = 0
    sample_unanswered: int = 0
    copy: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    """Every reason a row or the file was rejected, with counts."""
    role: str = "miner"
    """``validator``: a permit holder that uploaded nothing (``take_roles``); it validates."""
    joined: bool = False
    """It registered after the epoch began and uploaded nothing: not expected to take part."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prepare(
    sub: Submission, ctx: EpochContext, params: ValidationParams, snapshot: Snapshot | SnapshotIndex, block_hash: str
) -> Prepared:
    """Gates, row checks, the snapshot comparison and the sample; never raises. ``snapshot``: its index when
    the caller judges many miners (built once per epoch), or the snapshot itself."""
    try:
        return _prepare(sub, ctx, params, snapshot, block_hash)
    except MemoryError:
        return Prepared(sub.hotkey, sub.uid, "memory_limit_exceeded", "judging the file needed more memory than allowed")
    except Exception as exc:  # a file that breaks the reader in a way nobody foresaw: the miner's loss only
        return Prepared(sub.hotkey, sub.uid, "judging_failed", f"{type(exc).__name__}: {str(exc)[:200]}")


def index_of(snapshot: Snapshot, ctx: EpochContext) -> SnapshotIndex:
    return SnapshotIndex.build(snapshot, ctx.start_ts, ctx.deadline.timestamp())


def _prepare(
    sub: Submission, ctx: EpochContext, params: ValidationParams, snapshot: Snapshot | SnapshotIndex, block_hash: str
) -> Prepared:
    gate = check_gates(sub, ctx, params)
    prepared = Prepared(sub.hotkey, sub.uid, gate.reason, gate.detail, gate.sha256, sub.listings_modified)
    table, sha256 = gate.table, gate.sha256
    if not gate.passed or table is None or sha256 is None:
        return prepared
    verdicts = check_rows(table, ctx, sub.listings_modified)
    prepared.rows_uploaded = table.num_rows
    prepared.row_reasons = verdicts.counts()
    index = snapshot if isinstance(snapshot, SnapshotIndex) else index_of(snapshot, ctx)
    valid = table.filter(verdicts.valid_mask)
    truth, pool, proven = compare(valid, index)
    sample = choose_sample(pool, sample_seed(block_hash, sub.hotkey, sha256), params.sample_size)
    chosen = valid.filter(pc.is_in(valid["listing_id"], pa.array(sample, pa.string())))
    picked = {row["listing_id"]: row for row in chosen.to_pylist()}
    truth.sample_rows = {listing_id: picked[listing_id] for listing_id in sample}
    prepared.truth = truth
    prepared.prints = fingerprints(table)
    try:
        prepared.evidence = evidence(valid, proven)
    except Exception:  # what the published dataset needs: its loss if it fails, never the miner's score
        prepared.evidence = None
    return prepared


def finish(
    prepared: Prepared,
    refetched: dict[str, Facts | str | None],
    ctx: EpochContext,
    counts: dict[str, int | None],
    params: ValidationParams,
) -> MinerResult:
    """The miner's epoch score from its prepared judging and the refetched sample. ``counts``: the snapshot's
    listings per zipcode. Pure: the same inputs give an equal result, ``prepared`` is left as it was."""
    return finish_with_truth(prepared, refetched, ctx, counts, params)[0]


def finish_with_truth(
    prepared: Prepared,
    refetched: dict[str, Facts | str | None],
    ctx: EpochContext,
    counts: dict[str, int | None],
    params: ValidationParams,
) -> tuple[MinerResult, TruthResult | None]:
    """:func:`finish`, and the judged truth check it scored (what the sample confirmed: the published dataset
    needs it); None when the files were refused at a gate."""
    result = MinerResult(uid=prepared.uid, hotkey=prepared.hotkey)
    if prepared.gate is not None or prepared.truth is None:
        gate = prepared.gate or "judging_failed"
        result.gate, result.gate_detail = gate, prepared.gate_detail
        result.reasons = {gate: 1}
        return result, None
    truth = conclude(prepared.truth, refetched, ctx.start_ts, params)
    credited = truth.credited()
    invalid = sum(prepared.row_reasons.values())
    result.rows_uploaded = prepared.rows_uploaded
    result.rows_valid = truth.valid
    result.rows_credited = round(sum(credited.values()), 6)
    result.rows_proven = truth.proven
    result.rows_pooled = truth.pool_size
    result.completeness = round(completeness(credited, ctx.expected, counts), 6)
    result.quality = round(quality(prepared.rows_uploaded, invalid, params.invalid_penalty), 6)
    result.truth_factor = round(truth.factor, 6)
    result.estimated_fabrication = round(truth.estimated_rate, 6)
    result.sample_size = len(truth.sample_rows)
    result.sample_confirmed = len(truth.confirmed)
    result.sample_bad = truth.sample_bad
    result.sample_unanswered = truth.unanswered
    reasons = Counter(prepared.row_reasons)
    reasons.update(truth.bad)
    if truth.factor == 0:
        reasons["fabrication_over_threshold"] += 1
    result.reasons = dict(sorted(reasons.items()))
    result.score = epoch_score(result.completeness, result.quality, result.truth_factor)
    return result, truth


def take_roles(results: list[MinerResult], members: dict[int, tuple[bool, bool]]) -> None:
    """Mark who was never meant to upload: ``members`` is uid -> (holds a validator permit, registered after
    the epoch began). Only a result without an upload is marked; its score stays 0 (docs/scoring.md)."""
    for result in results:
        permit, joined = members.get(result.uid, (False, False))
        if result.gate == "no_upload":
            result.role = VALIDATOR if permit else "miner"
            result.joined = joined and not permit


def apply_copies(results: list[MinerResult], copies: dict[str, str]) -> None:
    """Zero the score of every copy, with the reason."""
    for result in results:
        reason = copies.get(result.hotkey)
        if reason:
            result.copy = reason
            result.truth_factor = 0.0
            result.score = 0.0
            result.reasons = dict(sorted({**result.reasons, reason.split(":")[0]: 1}.items()))
