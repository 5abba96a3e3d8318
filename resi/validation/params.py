"""Validation parameters and the epoch context every check needs. Pure data; no IO here or below.

The defaults are consensus values: validators that keep them agree on every score. ``docs/scoring.md``
derives the sample size and threshold from the detection and false-alarm probabilities they give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from resi.listings.files import ReadLimits


@dataclass(frozen=True)
class ValidationParams:
    sample_size: int = 50
    """Pool rows (the snapshot lacks them, or their values differ from it) fetched again by id, per miner."""
    fabrication_threshold: float = 0.05
    """Estimated share of false rows (fabricated, stale, contradicted, unprovable) above which the epoch scores 0."""
    false_penalty: float = 4.0
    """truth factor = 1 - penalty x (estimated share of rows proven false): each such row costs four times its
    share on top of earning nothing. The largest whole multiple (ten at most) that keeps an honest miner's mean
    loss under the modelled drift within 1% (``scripts/scoring_power.py`` computes it; docs/scoring.md)."""
    min_answered_share: float = 0.8
    """Share of the sample the source must have answered for the unsampled pool rows to earn by extrapolation."""
    copy_overlap: float = 0.5
    """Share of a miner's row fingerprints owned by an earlier upload that marks it a copy."""
    invalid_penalty: float = 10.0
    """quality = 1 - penalty x (invalid rows / rows): 10% invalid rows and quality is 0."""
    ema_alpha: float = 0.3
    limits: ReadLimits = ReadLimits()


@dataclass(frozen=True)
class EpochContext:
    epoch_id: str
    nonce: str
    start: datetime
    deadline: datetime
    expected: dict[str, int]
    """Zipcode -> expected listings, from the assignment."""
    tolerance_percent: float
    source_origin: str
    """Where listings must come from, e.g. ``https://www.realtor.com``."""

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()
