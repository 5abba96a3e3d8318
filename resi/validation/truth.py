"""The truth check: every valid row against the validator's own scrape of the same zipcodes, then a
committed random sample of the rows that scrape lacks, fetched again by id.

The sample's seed is a hash of a block hash after the deadline, the miner's hotkey and its file's sha256:
a miner cannot know it when it uploads, and cannot change it afterwards without changing the file.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field

from resi.epochs import parse_iso
from resi.listings.schema import address_key
from resi.validation.params import ValidationParams

FETCH_FAILED = "fetch_failed"
"""Refetch outcome when the source could not answer (neither proof nor disproof)."""

_EXACT = ("bedrooms", "bathrooms", "property_type", "listing_date", "mls_id")


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, dict]
    """The validator's own scrape: listing id -> row."""
    counts: dict[str, int | None]
    """Zipcode -> listings found there; None when scraping that zipcode failed."""


def sample_seed(block_hash: str, hotkey: str, file_sha256: str) -> int:
    digest = hashlib.sha256(f"{block_hash}|{hotkey}|{file_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose_sample(ids: list[str], seed: int, k: int) -> list[str]:
    """``k`` of ``ids`` (all when fewer), the same for everyone who knows the seed."""
    ordered = sorted(set(ids))
    return ordered if len(ordered) <= k else sorted(random.Random(seed).sample(ordered, k))


def _relative(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else float("inf")
    return abs(a - b) / max(abs(b), 1e-9)


def first_difference(claimed: dict, truth: dict, params: ValidationParams) -> str | None:
    """The first field where ``claimed`` is not ``truth`` beyond what drifts (None when they agree).

    Exact: zipcode, address (up to spelling), city, state, beds, baths, type, list date, MLS id. Within a
    tolerance: price, sqft, coordinates, days on market (after allowing for the time between the scrapes).
    The status is not compared: listings go pending and sell during an epoch.
    """
    if claimed["zipcode"] != truth["zipcode"]:
        return "zipcode"
    if address_key(claimed["address"], claimed["zipcode"]) != address_key(truth["address"], truth["zipcode"]):
        return "address"
    for name in ("city", "state"):
        if str(claimed[name]).lower() != str(truth[name]).lower():
            return name
    for name in _EXACT:
        if claimed[name] != truth[name]:
            return name
    if _relative(claimed["price"], truth["price"]) > params.price_tolerance:
        return "price"
    if _relative(claimed["sqft"], truth["sqft"]) > params.sqft_tolerance:
        return "sqft"
    for name in ("latitude", "longitude"):
        if claimed[name] is not None and truth[name] is not None and \
                abs(claimed[name] - truth[name]) > params.coordinate_tolerance:
            return name
    if truth["listing_status"] != "sold" and claimed["days_on_market"] is not None and truth["days_on_market"] is not None:
        elapsed = (parse_iso(truth["scraped_timestamp"]) - parse_iso(claimed["scraped_timestamp"])).days
        if abs(claimed["days_on_market"] + elapsed - truth["days_on_market"]) > params.days_on_market_tolerance:
            return "days_on_market"
    return None


@dataclass
class TruthResult:
    matched: int = 0
    mismatches: Counter = field(default_factory=Counter)
    """Field -> rows found in the snapshot that disagree with it there."""
    unverified: int = 0
    sample: list[str] = field(default_factory=list)
    sample_fabricated: int = 0
    sample_errors: int = 0
    credited_ids: set[str] = field(default_factory=set)
    fabricated_ids: set[str] = field(default_factory=set)
    estimated_rate: float = 0.0
    factor: float = 1.0


def split_by_snapshot(rows: list[dict], snapshot: Snapshot, params: ValidationParams) -> tuple[TruthResult, list[str]]:
    """Compare every row whose listing the snapshot has; the partial result and the ids it lacks."""
    result = TruthResult()
    unverified = []
    for row in rows:
        truth = snapshot.rows.get(row["listing_id"])
        if truth is None:
            unverified.append(row["listing_id"])
            continue
        diff = first_difference(row, truth, params)
        if diff is None:
            result.matched += 1
            result.credited_ids.add(row["listing_id"])
        else:
            result.mismatches[diff] += 1
            result.fabricated_ids.add(row["listing_id"])
    result.unverified = len(unverified)
    return result, unverified


def judge(result: TruthResult, rows: dict[str, dict], unverified: list[str], sample: list[str],
          refetched: dict[str, dict | str | None], params: ValidationParams) -> TruthResult:
    """Finish the truth check with the refetched sample: the estimated fabricated share and the factor.

    A sampled row is fabricated when the source has no such listing or disagrees with it; one the source
    could not be asked about counts neither way. The fabricated share of the unverified rows is estimated
    from the sample; rows found disagreeing with the snapshot count in full.
    """
    result.sample = list(sample)
    for listing_id in sample:
        fetched = refetched.get(listing_id, FETCH_FAILED)
        if fetched == FETCH_FAILED:
            result.sample_errors += 1
        elif fetched is None or first_difference(rows[listing_id], fetched, params) is not None:
            result.sample_fabricated += 1
            result.fabricated_ids.add(listing_id)
        else:
            result.credited_ids.add(listing_id)
    answered = len(sample) - result.sample_errors
    sampled = set(sample)
    if answered > 0:  # the rest of the unverified rows are credited as the sample suggests they are real
        result.credited_ids.update(i for i in unverified if i not in sampled)
    estimate = sum(result.mismatches.values())
    if answered > 0:
        estimate += result.sample_fabricated / answered * len(unverified)
    total = result.matched + sum(result.mismatches.values()) + len(unverified)
    result.estimated_rate = estimate / total if total else 0.0
    result.factor = 0.0 if result.estimated_rate > params.fabrication_threshold else 1.0 - result.estimated_rate
    return result
