"""Epochs, nonces and zipcode selection of the reference server.

The nonce and the selection seed of an epoch are HMACs of a server secret and the epoch id: nobody
without the secret can compute them, before the epoch or after. Selection draws zipcodes from the offline
catalog, rotating across market tiers, skipping those assigned within the cooldown, until the expected
total lands within target ± tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import timedelta

from resi import market
from resi.epochs import Epoch, iso_z

ALGORITHM_VERSION = "v1.0"


def nonce_for(secret: bytes, epoch_id: str) -> str:
    return hmac.new(secret, f"nonce:{epoch_id}".encode(), hashlib.sha256).hexdigest()[:16]


def selection_seed(secret: bytes, epoch_id: str) -> int:
    digest = hmac.new(secret, f"selection:{epoch_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class SelectionParams:
    target: int
    tolerance_percent: float
    scale: float
    states: frozenset[str] | None = None
    """Restrict the catalog to these states (None: every state)."""


def select_zipcodes(seed: int, params: SelectionParams, excluded: set[str]) -> list[market.ZipcodeInfo]:
    """Zipcodes whose expected listings add up to within target ± tolerance, tiers in rotation.

    Zipcodes in ``excluded`` (the cooldown) are used only if the catalog runs out without them.
    """
    rng = random.Random(seed)
    pool = [z for z in market.catalog().values() if params.states is None or z.state in params.states]
    if not pool:
        raise ValueError("the zipcode catalog is empty for the configured states")
    upper = params.target * (1 + params.tolerance_percent / 100)
    chosen: list[market.ZipcodeInfo] = []
    total = 0
    for allow_cooldown in (False, True):
        by_tier: dict[str, list[market.ZipcodeInfo]] = {tier: [] for tier in market.TIERS}
        for info in pool:
            if (info.zipcode in excluded) == allow_cooldown:
                by_tier[info.tier].append(info)
        for tier_list in by_tier.values():
            rng.shuffle(tier_list)
        cursors = {tier: 0 for tier in market.TIERS}
        while total < params.target and any(cursors[t] < len(by_tier[t]) for t in market.TIERS):
            for tier in market.TIERS:
                if total >= params.target or cursors[tier] >= len(by_tier[tier]):
                    continue
                info = by_tier[tier][cursors[tier]]
                cursors[tier] += 1
                expected = market.expected_listings(info.zipcode, params.scale)
                if total + expected <= upper or not chosen:
                    chosen.append(info)
                    total += expected
        if total >= params.target * (1 - params.tolerance_percent / 100):
            break
    return chosen


def build_assignment(epoch: Epoch, nonce: str, seed: int, zips: list[market.ZipcodeInfo], params: SelectionParams) -> dict:
    """The assignment in the spec's wire shape (camelCase)."""
    rows = [
        {
            "zipcode": z.zipcode,
            "expectedListings": market.expected_listings(z.zipcode, params.scale),
            "state": z.state,
            "city": z.city,
            "county": z.county,
            "marketTier": z.tier,
            "geographicRegion": z.region,
        }
        for z in zips
    ]
    return {
        "success": True,
        "epochId": epoch.id,
        "epochStart": iso_z(epoch.start),
        "epochEnd": iso_z(epoch.end),
        "nonce": nonce,
        "targetListings": params.target,
        "tolerancePercent": params.tolerance_percent,
        "submissionDeadline": iso_z(epoch.end),
        "zipcodes": rows,
        "metadata": {
            "totalExpectedListings": sum(r["expectedListings"] for r in rows),
            "zipcodeCount": len(rows),
            "algorithmVersion": ALGORITHM_VERSION,
            "selectionSeed": seed,
        },
    }


def cooldown_window(epoch: Epoch, cooldown: timedelta) -> tuple[float, float]:
    """Epoch starts in ``[since, before)`` whose zipcodes are resting when ``epoch`` is assigned."""
    return (epoch.start - cooldown).timestamp(), epoch.start.timestamp()
