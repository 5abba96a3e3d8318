"""The :class:`~resi.chain.base.Chain` protocol on the bittensor SDK (``bittensor>=11.3,<12``).

The SDK's async client is used on the caller's event loop. Fallback and archive endpoint pools are
switched off so that an unreachable endpoint is an error within ``connect_timeout`` seconds instead of
a tour of the public pool; every call has a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import bittensor
from bittensor.wallet import Wallet

from resi.chain.base import ChainError, Metagraph, Neuron, WeightsResult

NETWORKS = ("finney", "test", "local", "archive")


def is_bittensor_spec(spec: str) -> bool:
    """Whether ``spec`` names a bittensor network (a known name or a ``ws://``/``wss://`` endpoint)."""
    return spec in NETWORKS or spec.startswith(("ws://", "wss://"))


def build_set_weights(netuid: int, uids: list[int], weights: list[float], version_key: int) -> bittensor.SetWeights:
    """The SDK intent that sets these weights; it picks plaintext or commit-reveal from the subnet's settings."""
    return bittensor.SetWeights(
        netuid=netuid, uids=[int(u) for u in uids], weights=[float(w) for w in weights], version_key=version_key
    )


class BittensorChain:
    def __init__(
        self,
        network: str,
        netuid: int,
        wallet: Wallet | None = None,
        connect_timeout: float = 10.0,
        call_timeout: float = 60.0,
    ):
        self.network = network
        self.netuid = netuid
        self.wallet = wallet
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _connected(self):
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

    async def _call(self, what: str, make_coro, timeout: float | None = None):
        client = await self._connected()
        try:
            return await asyncio.wait_for(make_coro(client), timeout=timeout or self.call_timeout)
        except asyncio.TimeoutError:
            raise ChainError(f"{what}: no answer from {self.network!r} within {timeout or self.call_timeout:g} s") from None
        except ChainError:
            raise
        except Exception as exc:
            raise ChainError(f"{what} on {self.network!r} failed: {exc}") from None

    async def metagraph(self) -> Metagraph:
        graph = await self._call(
            "metagraph", lambda c: c.subnets.metagraph(self.netuid, commitments=False)
        )
        if graph is None:
            raise ChainError(f"netuid {self.netuid} does not exist on {self.network!r}")
        neurons = tuple(
            Neuron(
                uid=int(n.uid),
                hotkey=n.hotkey,
                coldkey=n.coldkey,
                stake=float(n.total_stake.tao),
                validator_permit=bool(n.validator_permit),
            )
            for n in graph.neurons
        )
        return Metagraph(netuid=self.netuid, block=int(graph.block), neurons=neurons)

    async def block(self) -> int:
        return int(await self._call("block", lambda c: c.block()))

    async def block_hash(self, block: int) -> str:
        info = await self._call("block hash", lambda c: c.block_info(block))
        if info is None or not info.hash:
            raise ChainError(f"block {block} does not exist yet on {self.network!r}")
        return str(info.hash)

    async def first_block_at(self, moment: float) -> int:
        """Binary search over block timestamps (about 12 s apart on finney): at most ~20 block reads."""
        head = await self.block()

        async def stamp(n: int) -> float:
            info = await self._call("block timestamp", lambda c: c.block_info(n))
            if info is None:
                raise ChainError(f"block {n} has no info on {self.network!r}")
            return info.timestamp.timestamp()

        if await stamp(head) < moment:
            return head + 1 + int((moment - await stamp(head)) // 12)
        low, high = max(0, head - 1), head
        step = 64
        while low > 0 and await stamp(low) >= moment:
            high, low = low, max(0, low - step)
            step *= 2
        while high - low > 1:
            mid = (low + high) // 2
            if await stamp(mid) >= moment:
                high = mid
            else:
                low = mid
        return high if await stamp(low) < moment else low

    async def is_registered(self, hotkey: str) -> bool:
        uid = await self._call("uid lookup", lambda c: c.neurons.uid(hotkey, self.netuid))
        return uid is not None

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        if self.wallet is None:
            raise ChainError("no wallet given: cannot set weights")
        intent = build_set_weights(self.netuid, uids, weights, version_key)
        try:
            result = await self._call("set_weights", lambda c: c.execute(intent, self.wallet), timeout=180)
        except ChainError as exc:
            return WeightsResult(success=False, message=str(exc))
        return WeightsResult(success=bool(result.success), message=str(result.message))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await asyncio.wait_for(client.close(), timeout=5)
            except Exception:
                pass
