"""The chain as the subnet sees it: a small protocol with a bittensor and a simulated implementation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Neuron:
    uid: int
    hotkey: str
    coldkey: str
    stake: float
    """Total stake in TAO (alpha valued in TAO on dynamic subnets)."""
    validator_permit: bool


@dataclass(frozen=True)
class Metagraph:
    """The neurons of one netuid at one block, ordered by uid."""

    netuid: int
    block: int
    neurons: tuple[Neuron, ...] = field(default_factory=tuple)

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        for neuron in self.neurons:
            if neuron.hotkey == hotkey:
                return neuron
        return None

    @property
    def hotkeys(self) -> list[str]:
        return [n.hotkey for n in self.neurons]


@dataclass(frozen=True)
class WeightsResult:
    success: bool
    message: str
    block: int | None = None


class ChainError(RuntimeError):
    """The chain could not be reached or refused an operation; the message says which and why."""


@runtime_checkable
class Chain(Protocol):
    """What neurons and the API server need of the chain. All calls are bounded in time."""

    netuid: int

    async def metagraph(self) -> Metagraph: ...

    async def block(self) -> int: ...

    async def block_hash(self, block: int) -> str:
        """Hex hash of ``block``; ChainError when the block does not exist yet."""
        ...

    async def is_registered(self, hotkey: str) -> bool: ...

    async def first_block_at(self, moment: float) -> int:
        """The first block produced at or after unix time ``moment`` (it may not exist yet)."""
        ...

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        """Set weights as this chain's own hotkey (given at construction)."""
        ...

    async def close(self) -> None: ...
