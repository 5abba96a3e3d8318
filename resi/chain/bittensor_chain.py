"""The :class:`~resi.chain.base.Chain` protocol on the bittensor SDK (``bittensor>=11.3,<12``).

The SDK's async client is used on the caller's event loop. Fallback and archive endpoint pools are
switched off so that an unreachable endpoint is an error within ``connect_timeout`` seconds instead of
a tour of the public pool; every call has a deadline. Whatever the SDK raises (its own ``ChainError``, a
lost connection, a ``TypeError`` or ``UnitMismatchError`` from a decoded value) comes out as
:class:`~resi.chain.base.ChainError` with the chain's reason; after a connection-level failure the next
call connects again, so a restarted node costs one failed call.

Weights go through the SDK's ``SetWeights`` intent (max-weight clip, u16, plaintext or timelocked commit as
the subnet runs). Its preflight reads ``SubtensorModule.SubnetEpochConsensus``, which runtimes older than
the SDK (spec 461 among them) do not have: then, after one log line, the same extrinsics are built here
from the subnet's hyperparameters (:func:`resi.chain.weights.conform`) and submitted directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import bittensor
import bittensor_core  # type: ignore[import-untyped]
from bittensor._transport.errors import StorageFunctionNotFound
from bittensor.wallet import Wallet
from loguru import logger

from resi.chain.base import ChainError, Metagraph, Neuron, SubnetParams, WeightsRefused, WeightsResult
from resi.chain.weights import U16_MAX, conform
from resi.constants import NETWORKS

RAO = 1e9
T = TypeVar("T")
_ST = bittensor.storage.SubtensorModule
_CALLS = bittensor.calls.SubtensorModule
_PARAM_ITEMS = {
    "tempo": _ST.Tempo,
    "weights_rate_limit": _ST.WeightsSetRateLimit,
    "weights_version_key": _ST.WeightsVersionKey,
    "min_allowed_weights": _ST.MinAllowedWeights,
    "max_weights_limit": _ST.MaxWeightsLimit,
    "commit_reveal": _ST.CommitRevealWeightsEnabled,
    "reveal_period_epochs": _ST.RevealPeriodEpochs,
    "immunity_period": _ST.ImmunityPeriod,
    "max_uids": _ST.MaxAllowedUids,
    "max_validators": _ST.MaxAllowedValidators,
}
_REASON_OF_CODE = {
    "rate_limited": "SettingWeightsTooFast",
    "not_registered": "HotKeyNotRegisteredInSubNet",
    "not_authorized": "NeuronNoValidatorPermit",
    "invalid_argument": "WeightVecLengthIsLow",
}
"""The chain's error name for a refusal the SDK's preflight made before submitting (it carries a code only)."""


def is_bittensor_spec(spec: str) -> bool:
    """Whether ``spec`` names a bittensor network (a known name or a ``ws://``/``wss://`` endpoint)."""
    return spec in NETWORKS or spec.startswith(("ws://", "wss://"))


def build_set_weights(netuid: int, uids: list[int], weights: list[float], version_key: int) -> bittensor.SetWeights:
    """The SDK intent that sets these weights; it picks plaintext or commit-reveal from the subnet's settings."""
    return bittensor.SetWeights(
        netuid=netuid, uids=[int(u) for u in uids], weights=[float(w) for w in weights], version_key=version_key
    )


class _MissingStorage(ChainError):
    """The runtime lacks a storage item the SDK reads."""


def _refusal(exc: bittensor.ChainError) -> WeightsRefused:
    code = getattr(exc.code, "value", str(exc.code))
    return WeightsRefused(exc.name or _REASON_OF_CODE.get(code, code), exc.message)


class BittensorChain:
    def __init__(
        self,
        network: str,
        netuid: int,
        wallet: Wallet | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 60.0,
        inclusion_timeout: float = 90.0,
    ):
        self.network = network
        self.netuid = netuid
        self.wallet = wallet
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self.inclusion_timeout = inclusion_timeout
        """Seconds a weight extrinsic may take to be included; finalization is never waited for."""
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._direct = False
        """Set once the runtime turned out to lack what the SDK's ``SetWeights`` preflight reads."""

    # --- the connection ------------------------------------------------------------------------------------------

    async def _connected(self) -> Any:
        async with self._lock:
            if self._client is None:
                try:
                    sub = bittensor.Subtensor(self.network, fallback_endpoints=[], archive_endpoints=[])
                except ValueError as exc:  # unknown network name
                    raise ChainError(str(exc)) from None
                try:
                    self._client = await asyncio.wait_for(sub, timeout=self.connect_timeout)
                except asyncio.TimeoutError:
                    raise ChainError(
                        f"cannot reach subtensor {self.network!r}: no answer within {self.connect_timeout:g} s"
                    ) from None
                except Exception as exc:
                    raise ChainError(f"cannot reach subtensor {self.network!r}: {exc}") from None
            return self._client

    async def _drop(self, client: Any) -> None:
        """Forget a client whose connection failed: the next call connects again."""
        async with self._lock:
            if self._client is client:
                self._client = None
        try:
            await asyncio.wait_for(client.close(), timeout=5)
        except Exception:
            pass

    async def _call(self, what: str, make_coro: Callable[[Any], Awaitable[T]], timeout: float | None = None) -> T:
        client = await self._connected()
        limit = timeout or self.call_timeout
        try:
            return await asyncio.wait_for(make_coro(client), timeout=limit)
        except asyncio.TimeoutError:
            await self._drop(client)
            raise ChainError(f"{what}: no answer from {self.network!r} within {limit:g} s") from None
        except ChainError:
            raise
        except bittensor.ChainError as exc:  # the chain (or the SDK's preflight) refused: the connection is fine
            raise ChainError(f"{what} on {self.network!r}: {exc.name or exc.code.value}: {exc.message}") from exc
        except StorageFunctionNotFound as exc:
            raise _MissingStorage(f"{what} on {self.network!r}: {exc}") from None
        except Exception as exc:  # a lost connection, or a value the SDK could not decode: start afresh
            await self._drop(client)
            raise ChainError(f"{what} on {self.network!r} failed: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._drop(self._client)

    # --- reads ----------------------------------------------------------------------------------------------------

    async def metagraph(self) -> Metagraph:
        graph = await self._call("metagraph", lambda c: c.subnets.metagraph(self.netuid, commitments=False))
        if graph is None:
            raise ChainError(f"netuid {self.netuid} does not exist on {self.network!r}")
        try:
            neurons = tuple(
                Neuron(
                    uid=int(n.uid),
                    hotkey=str(n.hotkey),
                    coldkey=str(n.coldkey),
                    stake=n.total_stake.rao / RAO,  # alpha on a dynamic subnet: its own unit, never .tao
                    validator_permit=bool(n.validator_permit),
                    last_update=int(n.last_update),
                    registered_at=int(n.block_at_registration),
                    incentive=float(n.incentive),
                    emission=n.emission.rao / RAO,
                    rank=float(n.rank),
                    trust=float(n.trust),
                    dividends=float(n.dividends),
                )
                for n in graph.neurons
            )
            block = int(graph.block)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ChainError(f"metagraph of netuid {self.netuid} on {self.network!r} is malformed: {exc}") from None
        return Metagraph(netuid=self.netuid, block=block, neurons=neurons)

    async def weights_of(self, uids: list[int]) -> dict[int, list[tuple[int, int]]]:
        async def read(client: Any) -> list[Any]:
            block = await client.block()
            return await asyncio.gather(*(client.query(_ST.Weights, [self.netuid, uid], block=block) for uid in uids))

        values = await self._call("weights", read)
        try:
            return {uid: [(int(u), int(w)) for u, w in (vector or [])] for uid, vector in zip(uids, values)}
        except (TypeError, ValueError) as exc:
            raise ChainError(f"weights of netuid {self.netuid} are malformed: {exc}") from None

    async def params(self) -> SubnetParams:
        async def read(client: Any) -> list[Any]:
            block = await client.block()
            return await asyncio.gather(*(client.query(item, [self.netuid], block=block) for item in _PARAM_ITEMS.values()))

        values = dict(zip(_PARAM_ITEMS, await self._call("subnet hyperparameters", read)))
        defaults = SubnetParams()
        try:
            fields = {name: type(getattr(defaults, name))(value) for name, value in values.items() if value is not None}
        except (TypeError, ValueError) as exc:
            raise ChainError(f"hyperparameters of netuid {self.netuid} are malformed: {exc}") from None
        if "max_weights_limit" in fields:
            fields["max_weights_limit"] = float(values["max_weights_limit"]) / U16_MAX
        return replace(defaults, **fields)

    async def block(self) -> int:
        return int(await self._call("block", lambda c: c.block()))

    async def block_hash(self, block: int) -> str:
        info = await self._call("block hash", lambda c: c.block_info(block))
        if info is None or not info.hash:
            raise ChainError(f"block {block} does not exist yet on {self.network!r}")
        return str(info.hash)

    async def _stamp(self, block: int) -> float:
        moment = await self._call("block timestamp", lambda c: c.timestamp(block))
        return float(moment.timestamp())

    async def first_block_at(self, moment: float) -> int:
        """Binary search over block timestamps: at most ~20 reads; beyond the head, an estimate from the
        chain's block time."""
        head = await self.block()
        head_time = await self._stamp(head)
        if head_time < moment:
            seconds = float(await self._call("block time", lambda c: c.block_time()))
            return head + 1 + int((moment - head_time) // max(seconds, 0.001))
        low, high = max(0, head - 1), head
        step = 64
        while low > 0 and await self._stamp(low) >= moment:
            high, low = low, max(0, low - step)
            step *= 2
        while high - low > 1:
            mid = (low + high) // 2
            if await self._stamp(mid) >= moment:
                high = mid
            else:
                low = mid
        return high if await self._stamp(low) < moment else low

    async def is_registered(self, hotkey: str) -> bool:
        uid = await self._call("uid lookup", lambda c: c.neurons.uid(hotkey, self.netuid))
        return uid is not None

    # --- weights ---------------------------------------------------------------------------------------------------

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        if self.wallet is None:
            raise ChainError("no wallet given: cannot set weights")
        submit = {"wait_for_inclusion": True, "wait_for_finalization": False}
        result = None
        if not self._direct:
            intent = build_set_weights(self.netuid, uids, weights, version_key)
            try:
                result = await self._submit(lambda c: c.execute(intent, self.wallet, **submit))
            except _MissingStorage as exc:
                self._direct = True
                logger.warning(
                    f"the SDK's SetWeights cannot run on this chain ({exc}): its runtime is older than "
                    "bittensor 11.3 expects; setting weights with the direct extrinsic instead"
                )
        if result is None:
            call = await self._direct_call(uids, weights, version_key)
            result = await self._submit(lambda c: c.submit_call(call, self.wallet, signer="hotkey", **submit))
        if not result.success:
            if result.error is not None:
                raise _refusal(result.error)
            raise WeightsRefused("ExtrinsicFailed", result.message or "the chain refused the weights")
        block = int(result.extrinsic_id.split("-")[0]) if result.extrinsic_id else None
        return WeightsResult(success=True, message=result.message or "weights set", block=block)

    async def _submit(self, make_coro: Callable[[Any], Awaitable[Any]]) -> Any:
        """Submit a weights extrinsic, waiting for its inclusion at most ``inclusion_timeout``; a refusal the
        SDK raised (its preflight) is a :class:`WeightsRefused` with the chain's reason."""
        try:
            return await self._call("set_weights", make_coro, timeout=self.inclusion_timeout)
        except _MissingStorage:
            raise
        except ChainError as exc:
            if isinstance(exc.__cause__, bittensor.ChainError):
                raise _refusal(exc.__cause__) from None
            raise

    async def _direct_call(self, uids: list[int], weights: list[float], version_key: int) -> Any:
        """The ``set_mechanism_weights`` (or, with commit-reveal on, timelocked commit) call for these weights,
        fitted to the subnet as the SDK's intent fits them."""
        if self.wallet is None:
            raise ChainError("no wallet given: cannot set weights")
        hotkey = self.wallet.hotkey
        params = await self.params()
        own = await self._call("uid lookup", lambda c: c.neurons.uid(hotkey.ss58_address, self.netuid))
        if own is None:
            raise WeightsRefused(
                "HotKeyNotRegisteredInSubNet", f"hotkey {hotkey.ss58_address} is not registered on netuid {self.netuid}"
            )
        dests, values = conform(uids, weights, params, int(own))
        if not params.commit_reveal:
            return _CALLS.set_mechanism_weights(netuid=self.netuid, mecid=0, dests=dests, weights=values, version_key=version_key)

        async def schedule(client: Any) -> tuple[int, list[Any], Any, Any]:
            block = await client.block()
            reads = (
                _ST.Tempo,
                _ST.RevealPeriodEpochs,
                _ST.LastEpochBlock,
                _ST.PendingEpochAt,
                _ST.SubnetEpochIndex,
                _ST.BlocksSinceLastStep,
            )
            values_ = await asyncio.gather(*(client.query(item, [self.netuid], block=block) for item in reads))
            version = await client.query(_ST.CommitRevealWeightsVersion, block=block)
            return block, values_, version, await client.block_time()

        block, (tempo, reveal, last_epoch, pending, epoch_index, since), version, block_time = await self._call(
            "commit-reveal schedule", schedule
        )
        try:
            commit, reveal_round = bittensor_core.get_encrypted_commit_v2(
                uids=dests,
                weights=values,
                version_key=version_key,
                last_epoch_block=int(last_epoch or 0),
                pending_epoch_at=int(pending or 0),
                subnet_epoch_index=int(epoch_index or 0),
                tempo=int(tempo),
                blocks_since_last_step=int(since or 0),
                current_block=block,
                subnet_reveal_period_epochs=int(reveal),
                block_time=float(block_time),
                hotkey=bytes(hotkey.public_key),
            )
        except Exception as exc:
            raise ChainError(f"timelock encryption of the weights failed: {type(exc).__name__}: {exc}") from None
        return _CALLS.commit_timelocked_mechanism_weights(
            netuid=self.netuid, mecid=0, commit=commit, reveal_round=reveal_round, commit_reveal_version=int(version or 4)
        )
