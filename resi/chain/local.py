"""The local chain: the :class:`~resi.chain.base.Chain` protocol over the simulated chain's store
(:mod:`resi.chain.store`), and its command line.

    python -m resi.chain.local register --chain PATH --hotkey SS58 --coldkey SS58 [--stake N] [--validator]
    python -m resi.chain.local params --chain PATH [--weights-rate-limit N] [--commit-reveal on|off] ...
    python -m resi.chain.local show --chain PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import ParamSpec, TypeVar

from resi.chain.base import ChainError, Metagraph, SubnetParams, WeightsResult
from resi.chain.rules import MIN_VALIDATOR_STAKE
from resi.chain.store import DEFAULT_BLOCK_SECONDS, SimulatedChainStore
from resi.constants import NETUID

P = ParamSpec("P")
T = TypeVar("T")


class LocalChain:
    """The :class:`~resi.chain.base.Chain` protocol over a :class:`SimulatedChainStore`."""

    def __init__(self, store: SimulatedChainStore, netuid: int = NETUID, hotkey: str | None = None):
        self.store = store
        self.netuid = netuid
        self.hotkey = hotkey

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), timeout=60)
        except ChainError:
            raise
        except (sqlite3.Error, OSError, asyncio.TimeoutError) as exc:
            raise ChainError(f"simulated chain {self.store.path}: {exc!r}") from exc

    async def metagraph(self) -> Metagraph:
        block = await self._run(self.store.block)
        neurons = await self._run(self.store.neurons, self.netuid)
        return Metagraph(netuid=self.netuid, block=block, neurons=tuple(neurons))

    async def params(self) -> SubnetParams:
        return await self._run(self.store.params, self.netuid)

    async def block(self) -> int:
        return await self._run(self.store.block)

    async def block_hash(self, block: int) -> str:
        return await self._run(self.store.block_hash, block)

    async def is_registered(self, hotkey: str) -> bool:
        return (await self.metagraph()).by_hotkey(hotkey) is not None

    async def first_block_at(self, moment: float) -> int:
        return await self._run(self.store.first_block_at, moment)

    async def weights_of(self, uids: list[int]) -> dict[int, list[tuple[int, int]]]:
        held = await self._run(self.store.current_weights, self.netuid)
        return {uid: list(zip(*held[uid])) if uid in held else [] for uid in uids}

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        """Fit the weights to the subnet as the bittensor SDK does (max-weight clip, u16), then apply them."""
        if self.hotkey is None:
            raise ChainError("this chain handle has no hotkey to set weights with")
        from resi.chain.weights import conform

        params = await self.params()
        graph = await self.metagraph()
        me = graph.by_hotkey(self.hotkey)
        dests, values = conform(uids, weights, params, me.uid if me else None)
        block = await self._run(self.store.set_weights, self.netuid, self.hotkey, dests, values, version_key)
        return WeightsResult(success=True, message="weights set", block=block)

    async def close(self) -> None:
        return None


def sim_path(spec: str) -> Path:
    """The file of a simulated-chain spec: ``sim:PATH`` or a plain path."""
    return Path(spec[4:] if spec.startswith("sim:") else spec).expanduser()


def _cmd_register(args: argparse.Namespace) -> int:
    from resi.chain.keys import is_ss58

    for label, value in (("hotkey", args.hotkey), ("coldkey", args.coldkey)):
        if not is_ss58(value):
            print(f"error: --{label} {value!r} is not a valid ss58 address", file=sys.stderr)
            return 2
    store = SimulatedChainStore(sim_path(args.chain), block_seconds=args.block_seconds, create=True)
    uid = store.register(args.hotkey, args.coldkey, netuid=args.netuid, stake=args.stake, validator=args.validator, uid=args.uid)
    role = "validator" if args.validator else "miner"
    print(f"registered {args.hotkey} as uid {uid} ({role}) on netuid {args.netuid}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    store = SimulatedChainStore(sim_path(args.chain), create=True)
    changes = {
        name: getattr(args, name) for name in (f.name for f in fields(SubnetParams)) if getattr(args, name, None) is not None
    }
    if "commit_reveal" in changes:
        changes["commit_reveal"] = changes["commit_reveal"] == "on"
    params = store.set_params(args.netuid, **changes) if changes else store.params(args.netuid)
    print(json.dumps(asdict(params), indent=2))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    store = SimulatedChainStore(sim_path(args.chain))
    print(f"chain {store.path}: block {store.block()} ({store.block_seconds:g} s per block), netuid {args.netuid}")
    print(f"{'uid':>4}  {'hotkey':<50} {'stake':>10}  vpermit  {'incentive':>9}  last update")
    for n in store.neurons(args.netuid):
        print(
            f"{n.uid:>4}  {n.hotkey:<50} {n.stake:>10g}  {'yes' if n.validator_permit else 'no ':<7}  "
            f"{n.incentive:>9.4f}  {n.last_update}"
        )
    records = store.weights(args.netuid)
    print(f"weights set: {len(records)}")
    for r in records:
        pairs = ", ".join(f"{u}:{w}" for u, w in zip(r["uids"], r["weights"]))
        print(f"  block {r['block']:>6}  uid {r['uid']:>3} {r['hotkey']}  [{pairs}]")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resi.chain.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="register a hotkey on the simulated chain (creates the file if needed)")
    reg.add_argument("--chain", required=True, help="path of the chain file (or sim:PATH)")
    reg.add_argument("--hotkey", required=True, help="ss58 address of the hotkey")
    reg.add_argument("--coldkey", required=True, help="ss58 address of the owning coldkey")
    reg.add_argument("--stake", type=float, default=0.0, help="stake in the subnet's unit (default 0)")
    reg.add_argument(
        "--validator", action="store_true", help=f"stake at least what a validator permit needs ({MIN_VALIDATOR_STAKE:g})"
    )
    reg.add_argument("--netuid", type=int, default=NETUID, help=f"subnet (default {NETUID})")
    reg.add_argument("--uid", type=int, default=None, help="take this uid, replacing whoever holds it")
    reg.add_argument(
        "--block-seconds",
        type=float,
        default=DEFAULT_BLOCK_SECONDS,
        help="seconds per block when this call creates the chain file (default 12)",
    )
    par = sub.add_parser("params", help="show or change a subnet's hyperparameters")
    par.add_argument("--chain", required=True, help="path of the chain file (or sim:PATH)")
    par.add_argument("--netuid", type=int, default=NETUID, help=f"subnet (default {NETUID})")
    for f in fields(SubnetParams):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "commit_reveal":
            par.add_argument(flag, choices=("on", "off"), default=None, help="commit-reveal weights")
        else:
            par.add_argument(flag, type=type(f.default), default=None, help=f"default {f.default}")
    show = sub.add_parser("show", help="print the metagraph and every recorded weight vector")
    show.add_argument("--chain", required=True, help="path of the chain file (or sim:PATH)")
    show.add_argument("--netuid", type=int, default=NETUID, help=f"subnet (default {NETUID})")
    args = parser.parse_args(argv)
    commands = {"register": _cmd_register, "params": _cmd_params, "show": _cmd_show}
    try:
        return commands[args.command](args)
    except (ChainError, sqlite3.Error, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
