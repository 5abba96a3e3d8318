"""Subtensor's rules where scoring depends on them, as pure functions of the chain's state (the simulated
chain's store, :mod:`resi.chain.store`, applies them):

- weights are u16, max-upscaled (the largest is 65535); a vector is refused with subtensor's error name, in
  its order: ``CommitRevealEnabled`` (the subnet takes commits only), ``WeightVecNotEqualSize``,
  ``UidsLengthExceedUidsInSubNet``, ``HotKeyNotRegisteredInSubNet``, ``IncorrectWeightVersionKey``,
  ``SettingWeightsTooFast`` (within ``WeightsSetRateLimit`` blocks of the uid's ``LastUpdate``),
  ``NeuronNoValidatorPermit`` (a single self weight excepted), ``DuplicateUids``, ``UidVecContainInvalidOne``
  (an unregistered uid), ``WeightVecLengthIsLow`` (fewer than ``min(MinAllowedWeights, subnet size)``),
  ``MaxWeightExceeded`` (one share over ``MaxWeightsLimit``);
- validator permits go to the ``max_validators`` largest stakes of at least ``MIN_VALIDATOR_STAKE``;
- a full subnet (``max_uids``) takes a new registration in place of the uid with the lowest emission whose
  immunity period has passed; a weight set before its uid was (re)registered counts for nobody;
- commit-reveal: a commit is rate limited like weights (``CommittingWeightsTooFast``) and is the uid's
  update; a hash commit is revealed in exactly the epoch ``RevealPeriodEpochs`` after it (``RevealTooEarly``,
  ``ExpiredWeightCommit``, ``InvalidRevealCommitHashNotMatch``); timelocked commits are kept with their drand
  round (nothing offline can reveal them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from resi.chain.base import Neuron, SubnetParams, WeightsRefused
from resi.chain.weights import U16_MAX

MIN_VALIDATOR_STAKE = 1_000.0
"""Stake (in the subnet's unit) below which no validator permit is given."""
EMISSION_PER_TEMPO = 1.0
"""What a tempo emits to a subnet's neurons, in its unit: half to miners by incentive, half to the validators
that set weights by dividends (their stake shares)."""


def epoch_index(block: int, netuid: int, tempo: int) -> int:
    """Subtensor's epoch of ``block`` on ``netuid`` (epochs of ``tempo + 1`` blocks, offset by the netuid)."""
    return (block + netuid + 1) // (tempo + 1)


def max_upscale_u16(values: list[float]) -> list[int]:
    """Subtensor's ``vec_u16_max_upscale_to_u16``: the largest becomes 65535, the others in proportion."""
    top = max(values) if values else 0
    if top <= 0:
        return [0 for _ in values]
    return [int(round(v * U16_MAX / top)) for v in values]


@dataclass(frozen=True)
class Registration:
    """One uid as the chain stores it."""

    uid: int
    hotkey: str
    coldkey: str
    stake: float
    registered_at: int
    last_update: int


def metagraph_of(
    rows: list[Registration], latest: dict[int, tuple[int, list[int], list[int]]], params: SubnetParams
) -> list[Neuron]:
    """The metagraph's neurons from the registrations and, per uid, the (block, uids, u16 values) its current
    hotkey set last: permits from the largest stakes, incentive and emission from the weights the permitted
    validators set (stake-weighted shares of their normalized vectors). As in Yuma, a weight set before its uid
    was (re)registered is outdated: it counts for nobody."""
    eligible = sorted((r for r in rows if r.stake >= MIN_VALIDATOR_STAKE), key=lambda r: (-r.stake, r.uid))
    permitted = {r.uid for r in eligible[: params.max_validators]}
    incentive: dict[int, float] = {}
    voting = {uid: latest[uid] for uid in permitted if uid in latest}
    total_stake = sum(r.stake for r in rows if r.uid in voting)
    registered_at = {r.uid: r.registered_at for r in rows}
    for r in rows:
        if r.uid not in voting or total_stake <= 0:
            continue
        set_at, uids, values = voting[r.uid]
        current = [(u, v) for u, v in zip(uids, values) if u in registered_at and registered_at[u] <= set_at]
        norm = sum(v for _, v in current)
        for u, v in current:
            if norm > 0:
                incentive[u] = incentive.get(u, 0.0) + r.stake / total_stake * v / norm
    dividends = {r.uid: r.stake / total_stake for r in rows if r.uid in voting}
    return [
        Neuron(
            uid=r.uid,
            hotkey=r.hotkey,
            coldkey=r.coldkey,
            stake=r.stake,
            validator_permit=r.uid in permitted,
            last_update=r.last_update,
            registered_at=r.registered_at,
            incentive=round(incentive.get(r.uid, 0.0), 9),
            emission=round((incentive.get(r.uid, 0.0) + dividends.get(r.uid, 0.0)) / 2 * EMISSION_PER_TEMPO, 9),
            rank=round(incentive.get(r.uid, 0.0), 9),
            trust=1.0 if incentive.get(r.uid) else 0.0,
            dividends=round(dividends.get(r.uid, 0.0), 9),
        )
        for r in rows
    ]


def registered(me: Neuron | None, netuid: int, hotkey: str) -> Neuron:
    """The signer's neuron; ``HotKeyNotRegisteredInSubNet`` when it has none."""
    if me is None:
        raise WeightsRefused("HotKeyNotRegisteredInSubNet", f"hotkey {hotkey} is not registered on netuid {netuid}")
    return me


def check_vector(
    netuid: int,
    hotkey: str,
    me: Neuron | None,
    graph: list[Neuron],
    params: SubnetParams,
    uids: list[int],
    values: list[int],
    version_key: int,
    block: int,
) -> Neuron:
    """Subtensor's ``internal_set_weights`` checks, in its order; the signer's neuron."""
    if len(uids) != len(values):
        raise WeightsRefused("WeightVecNotEqualSize", f"{len(uids)} uids, {len(values)} weights")
    if len(uids) > len(graph):
        raise WeightsRefused("UidsLengthExceedUidsInSubNet", f"{len(uids)} uids, the subnet has {len(graph)}")
    me = registered(me, netuid, hotkey)
    if params.weights_version_key and version_key < params.weights_version_key:
        raise WeightsRefused(
            "IncorrectWeightVersionKey", f"version key {version_key} is older than the subnet's {params.weights_version_key}"
        )
    if not params.commit_reveal and me.last_update and block - me.last_update < params.weights_rate_limit:
        raise WeightsRefused(
            "SettingWeightsTooFast",
            f"weights set {block - me.last_update} blocks ago; the rate limit is {params.weights_rate_limit} blocks",
        )
    self_weight = len(values) == 1 and uids[0] == me.uid
    if not self_weight and not me.validator_permit:
        raise WeightsRefused("NeuronNoValidatorPermit", f"uid {me.uid} has no validator permit")
    if len(set(uids)) != len(uids):
        raise WeightsRefused("DuplicateUids", "a uid appears twice")
    unknown = sorted(set(uids) - {n.uid for n in graph})
    if unknown:
        raise WeightsRefused("UidVecContainInvalidOne", f"uids {unknown[:5]} are not registered")
    least = min(len(graph), params.min_allowed_weights)
    if not self_weight and len(values) < least:
        raise WeightsRefused("WeightVecLengthIsLow", f"{len(values)} weights, the subnet needs at least {least}")
    scaled = max_upscale_u16([float(v) for v in values])
    total = sum(scaled)
    limit = round(params.max_weights_limit * U16_MAX)
    if not self_weight and limit < U16_MAX and total > 0 and max(scaled) / total > limit / U16_MAX:
        raise WeightsRefused(
            "MaxWeightExceeded", f"a weight is {max(scaled) / total:.4f} of the total, over the limit {limit / U16_MAX:.4f}"
        )
    return me


def reveal_hash(
    hotkey_public_key: bytes, netuid: int, uids: list[int], values: list[int], salt: list[int], version_key: int
) -> str:
    """Subtensor's commit hash: BlakeTwo256 of the SCALE encoding of (who, netuid, uids, values, salt,
    version_key)."""

    def vec_u16(items: list[int]) -> bytes:
        return _compact(len(items)) + b"".join(int(i).to_bytes(2, "little") for i in items)

    data = (
        hotkey_public_key
        + netuid.to_bytes(2, "little")
        + vec_u16(uids)
        + vec_u16(values)
        + vec_u16(salt)
        + int(version_key).to_bytes(8, "little")
    )
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def _compact(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw
