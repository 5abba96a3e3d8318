"""The chain: protocol, bittensor adapter, simulated chain. Only this package imports bittensor."""

from __future__ import annotations

from resi.chain.base import Chain, ChainError, Metagraph, Neuron, SubnetParams, WeightsRefused, WeightsResult
from resi.chain.keys import KeyLoadError, KeypairSigner, Signer, create_wallet, is_ss58, load_signer

__all__ = [
    "Chain",
    "ChainError",
    "KeyLoadError",
    "KeypairSigner",
    "Metagraph",
    "Neuron",
    "Signer",
    "SubnetParams",
    "WeightsRefused",
    "WeightsResult",
    "create_wallet",
    "is_ss58",
    "load_signer",
    "open_chain",
]


def open_chain(
    spec: str,
    netuid: int,
    *,
    hotkey: str | None = None,
    wallet: tuple[str, str, str] | None = None,
    connect_timeout: float = 10.0,
) -> Chain:
    """A chain handle for ``spec``: ``finney``/``test``/``local``/``ws://...`` (bittensor) or a simulated chain
    file (``sim:PATH`` or a path). ``hotkey`` (simulated) or ``wallet`` = (name, hotkey, path) (bittensor) is
    the identity that sets weights; without it the handle only reads. Nothing connects until first use.
    """
    from resi.chain.bittensor_chain import BittensorChain, is_bittensor_spec
    from resi.chain.local import LocalChain, sim_path
    from resi.chain.store import SimulatedChainStore

    if is_bittensor_spec(spec):
        bt_wallet = None
        if wallet is not None:
            from pathlib import Path

            from bittensor.wallet import Wallet

            name, hk, path = wallet
            bt_wallet = Wallet(name=name, hotkey=hk, path=str(Path(path).expanduser()))
        return BittensorChain(spec, netuid, wallet=bt_wallet, connect_timeout=connect_timeout)
    if not spec:
        raise ChainError("empty chain spec: give a network name, a ws:// endpoint or a simulated chain file")
    return LocalChain(SimulatedChainStore(sim_path(spec)), netuid=netuid, hotkey=hotkey)
