"""The simulated chain's store: a SQLite file that several processes share, applying subtensor's rules
(:mod:`resi.chain.rules`) where scoring depends on them.

Why a file and not a service: every process of a local network (API server, miners, validators, the
``register``/``show`` commands, the chain node) opens the same path; SQLite in WAL mode gives them consistent
reads and atomic writes with nothing to start, stop or port-allocate. Block numbers follow the wall clock
(``genesis + n * block_seconds``); each block's hash is made, with fresh randomness chained to its parent's,
the first time anyone asks for it after the block exists, so nobody can tell a future block's hash from the
file.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from resi.chain.base import ChainError, Neuron, SubnetParams, WeightsRefused
from resi.chain.rules import (
    MIN_VALIDATOR_STAKE,
    Registration,
    check_vector,
    epoch_index,
    max_upscale_u16,
    metagraph_of,
    registered,
    reveal_hash,
)
from resi.constants import NETUID

DEFAULT_BLOCK_SECONDS = 12.0
DEFAULT_PARAMS = SubnetParams()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS subnets (netuid INTEGER PRIMARY KEY, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    stake REAL NOT NULL, validator_permit INTEGER NOT NULL, registered_block INTEGER NOT NULL,
    last_update INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (netuid, uid), UNIQUE (netuid, hotkey)
);
CREATE TABLE IF NOT EXISTS weights (
    id INTEGER PRIMARY KEY AUTOINCREMENT, netuid INTEGER NOT NULL, block INTEGER NOT NULL,
    hotkey TEXT NOT NULL, uid INTEGER NOT NULL, uids TEXT NOT NULL, weights TEXT NOT NULL,
    version_key INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS weights_uid ON weights (netuid, uid, id);
CREATE TABLE IF NOT EXISTS commits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, kind TEXT NOT NULL,
    commit_hash TEXT NOT NULL, block INTEGER NOT NULL, reveal_round INTEGER, payload BLOB, revealed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (address TEXT PRIMARY KEY, nonce INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS extrinsics (
    block INTEGER NOT NULL, idx INTEGER NOT NULL, hash TEXT NOT NULL, data TEXT NOT NULL, events TEXT NOT NULL,
    PRIMARY KEY (block, idx)
);
"""


class SimulatedChainStore:
    """Synchronous access to the chain file; each call is one short transaction."""

    def __init__(
        self,
        path: str | Path,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        create: bool = False,
        clock: Callable[[], float] = time.time,
    ):
        """``create``: make the file (with ``block_seconds``) if it does not exist; otherwise a missing file is
        a ChainError, so that a typo in a path never starts a second, empty chain. ``clock``: the wall clock
        blocks follow (a test's own, to step through blocks)."""
        self.path = Path(path)
        self.clock = clock
        self._default_block_seconds = block_seconds
        self._create = create
        self._meta: dict[str, str] | None = None

    def _meta_value(self, key: str) -> str:
        with closing(self._connect()):
            assert self._meta is not None  # _connect read it
            return self._meta[key]

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            if not self._create:
                raise ChainError(
                    f"no simulated chain at {self.path}: create it with `python -m resi.chain.local register --chain PATH ...`"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        if self._meta is None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            made = {"genesis": repr(self.clock()), "block_seconds": repr(float(self._default_block_seconds))}
            conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", made.items())
            conn.execute("COMMIT")
            self._meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())  # whoever made it first
        return conn

    def stamp(self) -> tuple[int, ...]:
        """Changes whenever any process writes to the chain (the file's and its WAL's size and mtime): what a
        reader may cache holds while the stamp stays the same."""
        out: list[int] = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                st = path.stat()
                out += [st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                out += [0, 0]
        return tuple(out)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: committed when the block ends (a ``return`` included),
        rolled back when it raises, closed either way."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # --- blocks -------------------------------------------------------------------------------------------------

    @property
    def block_seconds(self) -> float:
        return float(self._meta_value("block_seconds"))

    @property
    def genesis(self) -> float:
        return float(self._meta_value("genesis"))

    def block(self, now: float | None = None) -> int:
        elapsed = (self.clock() if now is None else now) - self.genesis
        return max(0, int(elapsed // self.block_seconds))

    def block_timestamp(self, block: int) -> float:
        """Unix time block ``block`` was (or will be) produced."""
        return self.genesis + block * self.block_seconds

    def first_block_at(self, moment: float) -> int:
        """Block ``n`` is produced at ``genesis + n * block_seconds``: the first one at or after ``moment``."""
        return max(0, math.ceil((moment - self.genesis) / self.block_seconds))

    def block_hash(self, block: int) -> str:
        head = self.block()
        if block < 0 or block > head:
            raise ChainError(f"block {block} does not exist yet (head is {head})")
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT hash FROM blocks WHERE number=?", (block,)).fetchone()
        if row is not None:
            return str(row[0])
        with self._transaction() as conn:
            last = conn.execute("SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
            number, parent = (last[0], last[1]) if last else (-1, "0x" + "00" * 32)
            made = []
            while number < block:
                number += 1
                digest = hashlib.blake2b(
                    bytes.fromhex(parent[2:]) + secrets.token_bytes(32) + number.to_bytes(8, "little"), digest_size=32
                ).hexdigest()
                parent = "0x" + digest
                made.append((number, parent))
            conn.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", made)
            return str(conn.execute("SELECT hash FROM blocks WHERE number=?", (block,)).fetchone()[0])

    def block_number_of(self, block_hash: str) -> int | None:
        """The number of a block by its hash (None for a hash this chain never made)."""
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT number FROM blocks WHERE hash=?", (block_hash,)).fetchone()
        return None if row is None else int(row[0])

    # --- subnet hyperparameters ----------------------------------------------------------------------------------

    def params(self, netuid: int = NETUID) -> SubnetParams:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT params FROM subnets WHERE netuid=?", (netuid,)).fetchone()
        if row is None:
            return DEFAULT_PARAMS
        known = {f.name for f in fields(SubnetParams)}
        return replace(DEFAULT_PARAMS, **{k: v for k, v in json.loads(row[0]).items() if k in known})

    def set_params(self, netuid: int = NETUID, **changes: Any) -> SubnetParams:
        params = replace(self.params(netuid), **changes)
        with closing(self._connect()) as conn:
            conn.execute("INSERT OR REPLACE INTO subnets VALUES (?, ?)", (netuid, json.dumps(asdict(params))))
        return params

    # --- neurons -------------------------------------------------------------------------------------------------

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
        """Register ``hotkey`` and return its uid. ``validator``: stake at least what a validator permit needs.
        ``uid`` takes that uid, replacing whoever holds it. A full subnet replaces the uid with the lowest
        emission whose immunity period has passed (ChainError when every uid is still immune)."""
        if validator:
            stake = max(stake, MIN_VALIDATOR_STAKE)
        params = self.params(netuid)
        block = self.block()
        graph = {n.uid: n for n in self.neurons(netuid)}
        with self._transaction() as conn:
            existing = conn.execute("SELECT uid FROM neurons WHERE netuid=? AND hotkey=?", (netuid, hotkey)).fetchone()
            if existing is not None and (uid is None or uid == existing[0]):
                conn.execute(
                    "UPDATE neurons SET coldkey=?, stake=? WHERE netuid=? AND uid=?", (coldkey, stake, netuid, existing[0])
                )
                return int(existing[0])
            if existing is not None:
                conn.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (netuid, existing[0]))
            if uid is None:
                free = [u for u in range(params.max_uids) if u not in graph]
                if free:
                    uid = free[0]
                else:
                    prunable = [n for n in graph.values() if block - n.registered_at > params.immunity_period]
                    if not prunable:
                        raise ChainError(f"netuid {netuid} is full ({params.max_uids} uids), all still immune")
                    uid = min(prunable, key=lambda n: (n.emission, n.registered_at, n.uid)).uid
            elif not 0 <= uid < params.max_uids:
                raise ChainError(f"uid {uid} is outside 0..{params.max_uids - 1}")
            conn.execute("DELETE FROM neurons WHERE netuid=? AND uid=?", (netuid, uid))
            conn.execute("INSERT INTO neurons VALUES (?, ?, ?, ?, ?, 0, ?, 0)", (netuid, uid, hotkey, coldkey, stake, block))
        return uid

    def _rows(self, conn: sqlite3.Connection, netuid: int) -> list[Registration]:
        rows = conn.execute(
            "SELECT uid, hotkey, coldkey, stake, registered_block, last_update FROM neurons WHERE netuid=? ORDER BY uid",
            (netuid,),
        ).fetchall()
        return [
            Registration(
                uid=int(r[0]),
                hotkey=str(r[1]),
                coldkey=str(r[2]),
                stake=float(r[3]),
                registered_at=int(r[4]),
                last_update=int(r[5]),
            )
            for r in rows
        ]

    def _latest_weights(
        self, conn: sqlite3.Connection, netuid: int, rows: list[Registration]
    ) -> dict[int, tuple[int, list[int], list[int]]]:
        """uid -> (block, uids, u16 values) of the weights its current hotkey set last."""
        out = {}
        for r in rows:
            row = conn.execute(
                "SELECT block, uids, weights FROM weights WHERE netuid=? AND uid=? AND hotkey=? "
                "AND block>=? ORDER BY id DESC LIMIT 1",
                (netuid, r.uid, r.hotkey, r.registered_at),
            ).fetchone()
            if row is not None:
                out[r.uid] = (int(row[0]), list(json.loads(row[1])), list(json.loads(row[2])))
        return out

    def neurons(self, netuid: int = NETUID) -> list[Neuron]:
        """The metagraph's neurons (:func:`resi.chain.rules.metagraph_of`)."""
        params = self.params(netuid)
        with closing(self._connect()) as conn:
            rows = self._rows(conn, netuid)
            latest = self._latest_weights(conn, netuid, rows)
        return metagraph_of(rows, latest, params)

    # --- weights ---------------------------------------------------------------------------------------------------

    def _signer(self, netuid: int, hotkey: str) -> tuple[Neuron | None, list[Neuron], SubnetParams]:
        params = self.params(netuid)
        graph = self.neurons(netuid)
        return next((n for n in graph if n.hotkey == hotkey), None), graph, params

    def set_weights(
        self, netuid: int, hotkey: str, uids: list[int], values: list[int], version_key: int, block: int | None = None
    ) -> int:
        """Apply a u16 weight vector as subtensor's ``set_mechanism_weights`` does in ``block`` (default: the
        head; the node applies extrinsics in the next block); that block."""
        block = self.block() if block is None else block
        me, graph, params = self._signer(netuid, hotkey)
        if params.commit_reveal:
            raise WeightsRefused("CommitRevealEnabled", f"netuid {netuid} takes committed weights only")
        me = check_vector(netuid, hotkey, me, graph, params, uids, values, version_key, block)
        self._record(netuid, hotkey, me.uid, uids, values, version_key, block, touch=True)
        return block

    def _record(
        self, netuid: int, hotkey: str, uid: int, uids: list[int], values: list[int], version_key: int, block: int, touch: bool
    ) -> None:
        """Store the max-upscaled vector (``Weights``); ``touch``: and the uid's ``LastUpdate``."""
        scaled = max_upscale_u16([float(v) for v in values])
        with closing(self._connect()) as conn:
            conn.execute(
                "INSERT INTO weights (netuid, block, hotkey, uid, uids, weights, version_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    netuid,
                    block,
                    hotkey,
                    uid,
                    json.dumps([int(u) for u in uids]),
                    json.dumps(scaled),
                    int(version_key),
                    time.time(),
                ),
            )
            if touch:
                conn.execute(
                    "UPDATE neurons SET last_update=? WHERE netuid=? AND uid=? AND hotkey=?", (block, netuid, uid, hotkey)
                )

    def commit(
        self,
        netuid: int,
        hotkey: str,
        commit_hash: str,
        *,
        reveal_round: int | None = None,
        payload: bytes | None = None,
        block: int | None = None,
    ) -> int:
        """Record a weights commit (a hash, or a timelocked payload with its drand round) as subtensor's
        ``commit_*weights`` do: commit-reveal on, registered, the rate limit (a commit is the uid's update),
        at most 10 waiting. The block."""
        block = self.block() if block is None else block
        me, _, params = self._signer(netuid, hotkey)
        if not params.commit_reveal:
            raise WeightsRefused("CommitRevealDisabled", f"netuid {netuid} does not use commit-reveal")
        me = registered(me, netuid, hotkey)
        if me.last_update and block - me.last_update < params.weights_rate_limit:
            raise WeightsRefused(
                "CommittingWeightsTooFast",
                f"last commit {block - me.last_update} blocks ago; the rate limit is {params.weights_rate_limit} blocks",
            )
        now = epoch_index(block, netuid, params.tempo)
        kind = "timelocked" if payload is not None else "hash"
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT block FROM commits WHERE netuid=? AND hotkey=? AND kind=? AND revealed=0", (netuid, hotkey, kind)
            ).fetchall()
            waiting = [b for (b,) in rows if now <= epoch_index(b, netuid, params.tempo) + params.reveal_period_epochs]
            if len(waiting) >= 10:
                raise WeightsRefused("TooManyUnrevealedCommits", "10 commits wait for their reveal")
            conn.execute(
                "INSERT INTO commits (netuid, hotkey, kind, commit_hash, block, reveal_round, payload, "
                "revealed) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (netuid, hotkey, kind, commit_hash, block, reveal_round, payload),
            )
            conn.execute(
                "UPDATE neurons SET last_update=? WHERE netuid=? AND uid=? AND hotkey=?", (block, netuid, me.uid, hotkey)
            )
        return block

    def reveal(
        self,
        netuid: int,
        hotkey: str,
        hotkey_public_key: bytes,
        uids: list[int],
        values: list[int],
        salt: list[int],
        version_key: int,
        block: int | None = None,
    ) -> int:
        """Reveal a hash commit as subtensor's ``reveal_*weights`` do: expired commits are dropped, the vector
        must hash to a waiting one, in exactly the epoch ``reveal_period_epochs`` after it; it and every earlier
        commit leave the queue, and the vector is applied like ``set_weights`` (its ``LastUpdate`` is the
        commit's). The block."""
        block = self.block() if block is None else block
        me, graph, params = self._signer(netuid, hotkey)
        if not params.commit_reveal:
            raise WeightsRefused("CommitRevealDisabled", f"netuid {netuid} does not use commit-reveal")
        wanted = reveal_hash(hotkey_public_key, netuid, uids, values, salt, version_key)
        now = epoch_index(block, netuid, params.tempo)
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT id, commit_hash, block FROM commits WHERE netuid=? AND hotkey=? AND "
                "kind='hash' AND revealed=0 ORDER BY id",
                (netuid, hotkey),
            ).fetchall()
        due = {r[0]: epoch_index(r[2], netuid, params.tempo) + params.reveal_period_epochs for r in rows}
        expired = {r[1] for r in rows if now > due[r[0]]}
        live = [r for r in rows if now <= due[r[0]]]
        match = next((r for r in live if r[1] == wanted), None)
        if match is None:
            if wanted in expired:
                raise WeightsRefused("ExpiredWeightCommit", "the commit's reveal epoch has passed")
            if not live:
                raise WeightsRefused("NoWeightsCommitFound", "no commit waits for a reveal")
            raise WeightsRefused("InvalidRevealCommitHashNotMatch", "the revealed weights do not hash to a commit")
        if now != due[match[0]]:
            raise WeightsRefused("RevealTooEarly", f"the commit can be revealed in epoch {due[match[0]]}, this is {now}")
        me = check_vector(netuid, hotkey, me, graph, params, uids, values, version_key, block)
        with closing(self._connect()) as conn:
            conn.execute(
                "UPDATE commits SET revealed=1 WHERE netuid=? AND hotkey=? AND kind='hash' AND id<=?", (netuid, hotkey, match[0])
            )
        self._record(netuid, hotkey, me.uid, uids, values, version_key, block, touch=False)
        return block

    def commits(self, netuid: int = NETUID) -> list[dict[str, Any]]:
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT hotkey, kind, commit_hash, block, reveal_round, revealed FROM commits WHERE netuid=? ORDER BY id",
                (netuid,),
            ).fetchall()
        return [
            {"hotkey": r[0], "kind": r[1], "commit_hash": r[2], "block": r[3], "reveal_round": r[4], "revealed": bool(r[5])}
            for r in rows
        ]

    def weights(self, netuid: int = NETUID) -> list[dict[str, Any]]:
        """Every weight vector recorded on ``netuid`` (u16 values), oldest first."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT block, hotkey, uid, uids, weights, version_key, created_at FROM weights WHERE netuid=? ORDER BY id",
                (netuid,),
            ).fetchall()
        return [
            {
                "block": r[0],
                "hotkey": r[1],
                "uid": r[2],
                "uids": json.loads(r[3]),
                "weights": json.loads(r[4]),
                "version_key": r[5],
                "created_at": r[6],
            }
            for r in rows
        ]

    def current_weights(self, netuid: int = NETUID) -> dict[int, tuple[list[int], list[int]]]:
        """uid -> (uids, u16 values) as subtensor's ``Weights`` storage holds them now."""
        with closing(self._connect()) as conn:
            rows = self._rows(conn, netuid)
            latest = self._latest_weights(conn, netuid, rows)
        return {uid: (uids, values) for uid, (_, uids, values) in latest.items()}

    # --- accounts and blocks' contents (the node's) -----------------------------------------------------------------

    def nonce(self, address: str) -> int:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT nonce FROM nonces WHERE address=?", (address,)).fetchone()
        return 0 if row is None else int(row[0])

    def include(self, address: str, nonce: int, extrinsic_hash: str, data: str, events: list[Any], block: int) -> int:
        """Take a signed extrinsic at ``nonce`` into ``block`` with its events; its index there. ChainError
        ``Stale``/``Future`` when the nonce is not the account's next."""
        with self._transaction() as conn:
            row = conn.execute("SELECT nonce FROM nonces WHERE address=?", (address,)).fetchone()
            expected = 0 if row is None else int(row[0])
            if nonce != expected:
                raise ChainError("Stale" if nonce < expected else "Future")
            conn.execute("INSERT OR REPLACE INTO nonces VALUES (?, ?)", (address, nonce + 1))
            idx = int(conn.execute("SELECT COALESCE(MAX(idx), 0) + 1 FROM extrinsics WHERE block=?", (block,)).fetchone()[0])
            conn.execute("INSERT INTO extrinsics VALUES (?, ?, ?, ?, ?)", (block, idx, extrinsic_hash, data, json.dumps(events)))
        return idx

    def block_extrinsics(self, block: int) -> list[tuple[int, str, str, list[Any]]]:
        """(index, hash, data, events) of the signed extrinsics of ``block`` (index 0 is the timestamp)."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT idx, hash, data, events FROM extrinsics WHERE block=? ORDER BY idx", (block,)).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
