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
    """Total stake in the subnet's own unit (alpha on a dynamic subnet; TAO on the root subnet)."""
    validator_permit: bool
    last_update: int = 0
    """Block at which this uid last set weights (0: never)."""
    registered_at: int = 0
    incentive: float = 0.0
    """Share of the subnet's miner emission (0..1)."""
    emission: float = 0.0
    """Emission per tempo, in the subnet's unit."""
    rank: float = 0.0
    trust: float = 0.0
    dividends: float = 0.0


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
class SubnetParams:
    """The subnet hyperparameters a validator's weights must fit."""

    tempo: int = 360
    weights_rate_limit: int = 100
    """Blocks between two weight settings of one hotkey."""
    weights_version_key: int = 0
    """Weights with an older version key are refused."""
    min_allowed_weights: int = 1
    max_weights_limit: float = 1.0
    """Largest share one uid may get, 0..1."""
    commit_reveal: bool = False
    reveal_period_epochs: int = 1
    immunity_period: int = 4096
    max_uids: int = 256
    max_validators: int = 64


@dataclass(frozen=True)
class WeightsResult:
    success: bool
    message: str
    block: int | None = None
    """The block the weights were submitted at (their inclusion is confirmed later)."""


class ChainError(RuntimeError):
    """The chain could not be reached or refused an operation; the message says which and why."""


class WeightsRefused(ChainError):
    """The chain refused a weight setting; ``reason`` is the chain's own error name (``SettingWeightsTooFast``...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@runtime_checkable
class Chain(Protocol):
    """What neurons and the API server need of the chain. All calls are bounded in time."""

    netuid: int

    async def metagraph(self) -> Metagraph: ...

    async def params(self) -> SubnetParams: ...

    async def block(self) -> int: ...

    async def block_hash(self, block: int) -> str:
        """Hex hash of ``block``; ChainError when the block does not exist yet."""
        ...

    async def is_registered(self, hotkey: str) -> bool: ...

    async def first_block_at(self, moment: float) -> int:
        """The first block produced at or after unix time ``moment`` (it may not exist yet)."""
        ...

    async def weights_of(self, uids: list[int]) -> dict[int, list[tuple[int, int]]]:
        """The weight vector each of ``uids`` has set, as the chain holds it now: (uid, u16 weight) pairs."""
        ...

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        """Set weights as this chain's own hotkey (given at construction), fitted to the subnet's
        hyperparameters; :class:`WeightsRefused` with the chain's reason when it refuses them."""
        ...

    async def close(self) -> None: ...
