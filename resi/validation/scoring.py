"""Scores: completeness x quality x truth factor per epoch, an EMA across epochs, weights from the EMA.

All pure and deterministic: the same inputs give the same numbers on every validator.
"""

from __future__ import annotations

from collections.abc import Mapping


def completeness(credited: Mapping[str, float], expected: Mapping[str, int], found: Mapping[str, int | None]) -> float:
    """Share of the deliverable listings delivered, over the assignment.

    Per zipcode the deliverable count is ``min(expected, what the validator's own scrape found)`` (the
    expected count when that scrape failed), so a zipcode with fewer real listings than expected punishes
    nobody; credit beyond it is capped, so over-delivery and padding earn nothing.
    """
    deliverable = {z: e if (seen := found.get(z)) is None else min(e, seen) for z, e in expected.items()}
    total = sum(deliverable.values())
    if total <= 0:
        return 0.0
    return sum(min(credited.get(z, 0), d) for z, d in deliverable.items()) / total


def quality(rows: int, invalid: int, penalty: float) -> float:
    """``1 - penalty x invalid share``, floored at 0: honest miners run the same row checks before they
    upload, so invalid rows are padding or junk and cost ten times their share by default."""
    if rows <= 0:
        return 0.0
    return max(0.0, 1.0 - penalty * invalid / rows)


def epoch_score(completeness_: float, quality_: float, truth_factor: float) -> float:
    """Rounded to 1e-6 so that float noise cannot split validators."""
    return round(max(0.0, min(1.0, completeness_ * quality_ * truth_factor)), 6)


def update_ema(
    previous: Mapping[int, tuple[str, float]], scores: Mapping[int, tuple[str, float]], alpha: float
) -> dict[int, tuple[str, float]]:
    """The EMA per uid after one epoch. ``scores`` holds every uid of the epoch's metagraph (a miner that
    delivered nothing scores 0). A uid whose hotkey changed starts again from 0. Uids no longer in the
    metagraph are dropped."""
    out = {}
    for uid, (hotkey, score) in sorted(scores.items()):
        prev_hotkey, prev_value = previous.get(uid, (hotkey, 0.0))
        base = prev_value if prev_hotkey == hotkey else 0.0
        out[uid] = (hotkey, round(alpha * score + (1 - alpha) * base, 9))
    return out


def weights(ema: Mapping[int, tuple[str, float]]) -> tuple[list[int], list[float]]:
    """Normalized EMA, uids ascending; empty when every EMA is 0 (nothing to set)."""
    total = sum(value for _, value in ema.values())
    if total <= 0:
        return [], []
    uids = sorted(uid for uid, (_, value) in ema.items() if value > 0)
    return uids, [round(ema[uid][1] / total, 9) for uid in uids]


def chain_weights(
    ema: Mapping[int, tuple[str, float]], registered: Mapping[int, str], min_allowed: int
) -> tuple[list[int], list[float]]:
    """The weights to set now from the EMA and the metagraph of this moment (uid -> hotkey).

    A uid counts only while the hotkey that earned its EMA still holds it: a uid taken over by another hotkey
    gets nothing from the old one's EMA, and no weight ever goes to an unregistered uid. When fewer uids than
    the chain's ``MinAllowedWeights`` (at most the subnet's size) earn something, every other registered uid
    gets a floor of 1/65535 of the largest weight (it survives u16 quantization as 1), as the bittensor
    SDK's ``process_weights`` pads: the chain refuses a shorter vector. Empty when nothing is earned.
    """
    earned = {uid: value for uid, (hotkey, value) in ema.items() if value > 0 and registered.get(uid) == hotkey}
    total = sum(earned.values())
    if total <= 0:
        return [], []
    shares = {uid: value / total for uid, value in earned.items()}
    if len(shares) < min(min_allowed, len(registered)):
        floor = max(shares.values()) / 65_535
        shares.update({uid: floor for uid in registered if uid not in shares})
        norm = sum(shares.values())
        shares = {uid: share / norm for uid, share in shares.items()}
    uids = sorted(shares)
    return uids, [round(shares[uid], 9) for uid in uids]
