"""The simulated chain: a SQLite file that several processes share.

Why a file and not a service: every process of a local network (API server, miners, validators, the
``register``/``show`` commands) opens the same path; SQLite in WAL mode gives them consistent reads and
atomic writes with nothing to start, stop or port-allocate. Blocks are derived from the wall clock
(``genesis + n * block_seconds``), so every process agrees on the block without a block producer.

    python -m resi.chain.local register --chain PATH --hotkey SS58 --coldkey SS58 [--stake TAO] [--validator]
    python -m resi.chain.local show --chain PATH
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import secrets
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

from resi.chain.base import ChainError, Metagraph, Neuron, WeightsResult
from resi.constants import NETUID

DEFAULT_BLOCK_SECONDS = 12.0
MAX_UIDS = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    stake REAL NOT NULL, validator_permit INTEGER NOT NULL, registered_block INTEGER NOT NULL,
    PRIMARY KEY (netuid, uid), UNIQUE (netuid, hotkey)
);
CREATE TABLE IF NOT EXISTS weights (
    id INTEGER PRIMARY KEY AUTOINCREMENT, netuid INTEGER NOT NULL, block INTEGER NOT NULL,
    hotkey TEXT NOT NULL, uid INTEGER NOT NULL, uids TEXT NOT NULL, weights TEXT NOT NULL,
    version_key INTEGER NOT NULL, created_at REAL NOT NULL
);
"""


class SimulatedChainStore:
    """Synchronous access to the chain file; each call is one short transaction."""

    def __init__(self, path: str | Path, block_seconds: float = DEFAULT_BLOCK_SECONDS, create: bool = False):
        """``create``: make the file (with ``block_seconds``) if it does not exist; otherwise a missing file is
        a ChainError, so that a typo in a path never starts a second, empty chain."""
        self.path = Path(path)
        self._default_block_seconds = block_seconds
        self._create = create
        self._meta: dict[str, str] | None = None

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            if not self._create:
                raise ChainError(f"no simulated chain at {self.path}: create it with "
                                 "`python -m resi.chain.local register --chain PATH ...`")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _ensure(self, conn: sqlite3.Connection) -> dict[str, str]:
        if self._meta is None:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "genesis" not in rows:
                rows = {
                    "genesis": repr(time.time()),
                    "block_seconds": repr(float(self._default_block_seconds)),
                    "hash_secret": secrets.token_hex(32),
                }
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
            conn.execute("COMMIT")
            self._meta = rows
        return self._meta

    @property
    def block_seconds(self) -> float:
        with closing(self._connect()) as conn:
            return float(self._ensure(conn)["block_seconds"])

    def block(self, now: float | None = None) -> int:
        with closing(self._connect()) as conn:
            meta = self._ensure(conn)
        elapsed = (time.time() if now is None else now) - float(meta["genesis"])
        return max(0, int(elapsed // float(meta["block_seconds"])))

    def first_block_at(self, moment: float) -> int:
        """Block ``n`` is produced at ``genesis + n * block_seconds``: the first one at or after ``moment``."""
        with closing(self._connect()) as conn:
            meta = self._ensure(conn)
        genesis, seconds = float(meta["genesis"]), float(meta["block_seconds"])
        return max(0, math.ceil((moment - genesis) / seconds))

    def block_hash(self, block: int) -> str:
        if block < 0 or block > self.block():
            raise ChainError(f"block {block} does not exist yet (head is {self.block()})")
        with closing(self._connect()) as conn:
            secret = self._ensure(conn)["hash_secret"]
        return "0x" + hashlib.sha256(f"{secret}:{block}".encode()).hexdigest()

    def register(
        self,
        hotkey: str,
        coldkey: str,
        *,
        netuid: int = NETUID,
        stake: float = 0.0,
        validator: bool = False,
        uid: int | None = None,
    ) -> int:
        """Register ``hotkey`` and return its uid. ``uid`` replaces whoever holds that uid (deregistration)."""
        block = self.block()
        with closing(self._connect()) as conn:
            self._ensure(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                existing = conn.execute(
                    "SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)
                ).fetchone()
                if existing is not None and (uid is None or uid == existing[0]):
                    conn.execute(
                        "UPDATE neurons SET coldkey=?, stake=?, validator_permit=? WHERE netuid=? AND uid=?",
                        (coldkey, stake, int(validator), netuid, existing[0]),
                    )
                    conn.execute("COMMIT")
                    return int(existing[0])
                if existing is not None:
                    conn.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (netuid, existing[0]))
                if uid is None:
                    used = {r[0] for r in conn.execute("SELECT uid FROM neurons WHERE netuid=?", (netuid,))}
                    free = [u for u in range(MAX_UIDS) if u not in used]
                    if not free:
                        raise ChainError(f"netuid {netuid} is full ({MAX_UIDS} uids)")
                    uid = free[0]
                elif not 0 <= uid < MAX_UIDS:
                    raise ChainError(f"uid {uid} is outside 0..{MAX_UIDS - 1}")
                conn.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (netuid, uid))
                conn.execute(
                    "INSERT INTO neurons VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (netuid, uid, hotkey, coldkey, stake, int(validator), block),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return uid

    def neurons(self, netuid: int = NETUID) -> list[Neuron]:
        with closing(self._connect()) as conn:
            self._ensure(conn)
            rows = conn.execute(
                "SELECT uid, hotkey, coldkey, stake, validator_permit FROM neurons WHERE netuid=? ORDER BY uid",
                (netuid,),
            ).fetchall()
        return [Neuron(uid=r[0], hotkey=r[1], coldkey=r[2], stake=r[3], validator_permit=bool(r[4])) for r in rows]

    def record_weights(
        self, netuid: int, hotkey: str, uids: list[int], weights: list[float], version_key: int
    ) -> int:
        """Record a weight vector set by ``hotkey``; ChainError unless it holds a validator permit."""
        if len(uids) != len(weights) or len(set(uids)) != len(uids):
            raise ChainError("uids and weights must be parallel lists of distinct uids")
        if any(not (w >= 0) for w in weights) or not any(w > 0 for w in weights):
            raise ChainError("weights must be non-negative and not all zero")
        block = self.block()
        with closing(self._connect()) as conn:
            self._ensure(conn)
            row = conn.execute(
                "SELECT uid, validator_permit FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)
            ).fetchone()
            if row is None:
                raise ChainError(f"hotkey {hotkey} is not registered on netuid {netuid}")
            if not row[1]:
                raise ChainError(f"hotkey {hotkey} has no validator permit on netuid {netuid}")
            conn.execute(
                "INSERT INTO weights (netuid, block, hotkey, uid, uids, weights, version_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (netuid, block, hotkey, row[0], json.dumps(list(map(int, uids))),
                 json.dumps([float(w) for w in weights]), int(version_key), time.time()),
            )
        return block

    def weights(self, netuid: int = NETUID) -> list[dict]:
        """Every weight vector recorded on ``netuid``, oldest first."""
        with closing(self._connect()) as conn:
            self._ensure(conn)
            rows = conn.execute(
                "SELECT block, hotkey, uid, uids, weights, version_key, created_at FROM weights"
                " WHERE netuid=? ORDER BY id",
                (netuid,),
            ).fetchall()
        return [
            {"block": r[0], "hotkey": r[1], "uid": r[2], "uids": json.loads(r[3]),
             "weights": json.loads(r[4]), "version_key": r[5], "created_at": r[6]}
            for r in rows
        ]


class LocalChain:
    """The :class:`~resi.chain.base.Chain` protocol over a :class:`SimulatedChainStore`."""

    def __init__(self, store: SimulatedChainStore, netuid: int = NETUID, hotkey: str | None = None):
        self.store = store
        self.netuid = netuid
        self.hotkey = hotkey

    async def _run(self, fn, *args, **kwargs):
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

    async def block(self) -> int:
        return await self._run(self.store.block)

    async def block_hash(self, block: int) -> str:
        return await self._run(self.store.block_hash, block)

    async def is_registered(self, hotkey: str) -> bool:
        return (await self.metagraph()).by_hotkey(hotkey) is not None

    async def first_block_at(self, moment: float) -> int:
        return await self._run(self.store.first_block_at, moment)

    async def set_weights(self, uids: list[int], weights: list[float], version_key: int) -> WeightsResult:
        if self.hotkey is None:
            raise ChainError("this chain handle has no hotkey to set weights with")
        try:
            block = await self._run(self.store.record_weights, self.netuid, self.hotkey, uids, weights, version_key)
        except ChainError as exc:
            return WeightsResult(success=False, message=str(exc))
        return WeightsResult(success=True, message="weights recorded", block=block)

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
    uid = store.register(
        args.hotkey, args.coldkey, netuid=args.netuid, stake=args.stake, validator=args.validator, uid=args.uid
    )
    role = "validator" if args.validator else "miner"
    print(f"registered {args.hotkey} as uid {uid} ({role}, stake {args.stake:g}) on netuid {args.netuid}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    store = SimulatedChainStore(sim_path(args.chain))
    print(f"chain {store.path}: block {store.block()} ({store.block_seconds:g} s per block), netuid {args.netuid}")
    print(f"{'uid':>4}  {'hotkey':<50} {'coldkey':<50} {'stake':>10}  vpermit")
    for n in store.neurons(args.netuid):
        print(f"{n.uid:>4}  {n.hotkey:<50} {n.coldkey:<50} {n.stake:>10g}  {'yes' if n.validator_permit else 'no'}")
    records = store.weights(args.netuid)
    print(f"weights set: {len(records)}")
    for r in records:
        pairs = ", ".join(f"{u}:{w:.4f}" for u, w in zip(r["uids"], r["weights"]))
        print(f"  block {r['block']:>6}  uid {r['uid']:>3} {r['hotkey']}  [{pairs}]")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resi.chain.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="register a hotkey on the simulated chain (creates the file if needed)")
    reg.add_argument("--chain", required=True, help="path of the chain file (or sim:PATH)")
    reg.add_argument("--hotkey", required=True, help="ss58 address of the hotkey")
    reg.add_argument("--coldkey", required=True, help="ss58 address of the owning coldkey")
    reg.add_argument("--stake", type=float, default=0.0, help="stake in TAO (default 0)")
    reg.add_argument("--validator", action="store_true", help="give the hotkey a validator permit")
    reg.add_argument("--netuid", type=int, default=NETUID, help=f"subnet (default {NETUID})")
    reg.add_argument("--uid", type=int, default=None, help="take this uid, replacing whoever holds it")
    reg.add_argument(
        "--block-seconds", type=float, default=DEFAULT_BLOCK_SECONDS,
        help="seconds per block when this call creates the chain file (default 12)",
    )
    show = sub.add_parser("show", help="print the metagraph and every recorded weight vector")
    show.add_argument("--chain", required=True, help="path of the chain file (or sim:PATH)")
    show.add_argument("--netuid", type=int, default=NETUID, help=f"subnet (default {NETUID})")
    args = parser.parse_args(argv)
    try:
        return _cmd_register(args) if args.command == "register" else _cmd_show(args)
    except (ChainError, sqlite3.Error, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
