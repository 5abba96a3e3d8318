"""Fitting a weight vector to a subnet's hyperparameters, as the bittensor SDK's ``SetWeights`` does: the
max-weight clip (mass redistributed, not discarded), then u16 max-upscaling with zeros dropped. One
implementation for every chain: the SDK's own functions."""

from __future__ import annotations

from bittensor.intents.weights import clip_to_max_weight, normalize

from resi.chain.base import SubnetParams, WeightsRefused

U16_MAX = 65_535


def conform(uids: list[int], weights: list[float], params: SubnetParams, own_uid: int | None) -> tuple[list[int], list[int]]:
    """(uids, u16 values) the chain takes for ``weights``; WeightsRefused when nothing is left to set."""
    pairs = [(int(u), float(w)) for u, w in zip(uids, weights) if w > 0]
    if not pairs:
        raise WeightsRefused("AllWeightsZero", "every weight is zero: nothing to set")
    us, ws = [u for u, _ in pairs], [w for _, w in pairs]
    if us != [own_uid] and params.max_weights_limit < 1.0:
        ws = clip_to_max_weight(ws, params.max_weights_limit)
    return normalize(us, ws)
