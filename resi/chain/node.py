"""A local subtensor node: the simulated chain over a websocket JSON-RPC endpoint, as a subtensor node serves it.

The unmodified bittensor SDK connects with ``Subtensor("ws://127.0.0.1:PORT")`` and gets the real runtime
metadata, SCALE-encoded storage and runtime-API answers, blocks with their ``Timestamp.set`` inherent and
events, and extrinsic submission with its ``ready``/``inBlock``/``finalized`` updates. State lives in a
simulated-chain file (:mod:`resi.chain.local`), so the node can be stopped and started again, and the chain
file's other users (the API server, ``python -m resi.chain.local``) see the same chain.

    python -m resi.chain.node --chain PATH [--host 127.0.0.1] [--port 9944] [--block-seconds 12]

Methods: ``chain_getBlockHash``, ``chain_getHead``, ``chain_getFinalizedHead``, ``chain_getHeader``,
``chain_getBlock``, ``chain_subscribe{New,Finalized}Heads``, ``state_getRuntimeVersion``, ``state_call``,
``state_getStorage(At)``, ``state_getKeysPaged``, ``state_queryStorageAt``, ``state_getMetadata``,
``account_nextIndex``, ``author_submitExtrinsic``, ``author_submitAndWatchExtrinsic``,
``author_unwatchExtrinsic``, ``system_*``. Unknown methods answer the JSON-RPC "method not found".
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

from resi.chain.base import ChainError
from resi.chain.node_runtime import Included, NodeRuntime, TransactionInvalid
from resi.chain.runtime import RuntimeInfo
from resi.chain.store import DEFAULT_BLOCK_SECONDS, SimulatedChainStore
from resi.constants import NETUID

ZERO_HASH = "0x" + "00" * 32
MAX_FRAME = 4 * 1024 * 1024


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class ChainNode:
    """The JSON-RPC frontend of one simulated chain."""

    def __init__(self, store: SimulatedChainStore, runtime_info: RuntimeInfo, netuids: tuple[int, ...] = (NETUID,)):
        self.store = store
        self.runtime = NodeRuntime(runtime_info, store, netuids)
        self._ids = itertools.count(1)
        self._storage_cache: tuple[int, tuple[int, ...], dict[str, str], list[str]] | None = None
        self.submitted = 0

    # --- blocks ---------------------------------------------------------------------------------------------------

    def head(self) -> int:
        return self.store.block()

    def hash_of(self, block: int) -> str:
        return self.store.block_hash(block)

    def number_of(self, block_hash: str | None) -> int | None:
        if block_hash is None:
            return self.head()
        if not isinstance(block_hash, str):
            raise RpcError(-32602, "Invalid params: block hash must be a hex string")
        return self.store.block_number_of(block_hash)

    def header(self, number: int) -> dict[str, Any]:
        parent = self.hash_of(number - 1) if number > 0 else ZERO_HASH

        def root(tag: str) -> str:
            return "0x" + hashlib.blake2b(f"{tag}:{self.hash_of(number)}".encode(), digest_size=32).hexdigest()

        return {
            "parentHash": parent,
            "number": hex(number),
            "stateRoot": root("state"),
            "extrinsicsRoot": root("extrinsics"),
            "digest": {"logs": []},
        }

    def _storage(self, number: int) -> tuple[dict[str, str], list[str]]:
        """The storage at ``number``, computed again only when the block or the chain file changed (any
        process's write, a registration from the command line included, shows at once)."""
        stamp = self.store.stamp()
        cached = self._storage_cache
        if cached is not None and cached[0] == number and cached[1] == stamp:
            return cached[2], cached[3]
        values = self.runtime.storage(number)
        keys = sorted(values)
        self._storage_cache = (number, stamp, values, keys)
        return values, keys

    # --- JSON-RPC ---------------------------------------------------------------------------------------------------

    def call(self, method: str, params: list[Any]) -> Any:
        """The result of one (non-subscription) method."""
        handler = getattr(self, "rpc_" + method, None)
        if handler is None:
            raise RpcError(-32601, f"Method not found: {method}")
        try:
            return handler(*params)
        except TypeError as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from None

    def _at(self, block_hash: str | None) -> int:
        number = self.number_of(block_hash)
        if number is None:
            raise RpcError(
                4003,
                "Client error: UnknownBlock: State already discarded for " + str(block_hash),
                "State already discarded for " + str(block_hash),
            )
        return number

    def rpc_chain_getBlockHash(self, number: Any = None) -> str | None:
        if number is None:
            return self.hash_of(self.head())
        if not isinstance(number, int) or number < 0:
            raise RpcError(-32602, "Invalid params: block number")
        return self.hash_of(number) if number <= self.head() else None

    def rpc_chain_getHead(self) -> str:
        return self.hash_of(self.head())

    def rpc_chain_getFinalizedHead(self) -> str:
        return self.hash_of(self.head())

    def rpc_chain_getHeader(self, block_hash: Any = None) -> dict[str, Any] | None:
        number = self.number_of(block_hash)
        return None if number is None else self.header(number)

    def rpc_chain_getBlock(self, block_hash: Any = None) -> dict[str, Any] | None:
        number = self.number_of(block_hash)
        if number is None:
            return None
        extrinsics = [self.runtime.timestamp_extrinsic(number)]
        extrinsics += [data for _, _, data, _ in self.store.block_extrinsics(number)]
        return {"block": {"header": self.header(number), "extrinsics": extrinsics}, "justifications": None}

    def rpc_state_getRuntimeVersion(self, block_hash: Any = None) -> dict[str, Any]:
        info = self.runtime.info
        return {
            "specName": info.spec_name,
            "implName": info.spec_name,
            "authoringVersion": 1,
            "specVersion": info.spec_version,
            "implVersion": 1,
            "apis": [],
            "transactionVersion": info.transaction_version,
            "stateVersion": 1,
        }

    def rpc_state_getMetadata(self, block_hash: Any = None) -> str:
        return "0x" + self.runtime.info.metadata.hex()

    def rpc_state_call(self, method: Any, data: Any = "0x", block_hash: Any = None) -> str:
        number = self._at(block_hash)
        try:
            raw = bytes.fromhex(str(data).removeprefix("0x"))
            return "0x" + self.runtime.runtime_call(str(method), raw, number).hex()
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from None
        except ChainError as exc:
            raise RpcError(-32000, "Client error: Execution failed: " + str(exc), str(exc)) from None

    def rpc_state_getStorageAt(self, key: Any, block_hash: Any = None) -> str | None:
        values, _ = self._storage(self._at(block_hash))
        return values.get(str(key).lower())

    rpc_state_getStorage = rpc_state_getStorageAt

    def rpc_state_getKeysPaged(self, prefix: Any, count: Any, start_key: Any = None, block_hash: Any = None) -> list[str]:
        _, keys = self._storage(self._at(block_hash))
        prefix = str(prefix).lower()
        start = str(start_key).lower() if start_key else prefix
        position = bisect.bisect_right(keys, start) if start_key and start != prefix else bisect.bisect_left(keys, prefix)
        out: list[str] = []
        for key in keys[position:]:
            if not key.startswith(prefix) or len(out) >= int(count):
                break
            out.append(key)
        return out

    def rpc_state_queryStorageAt(self, keys: Any, block_hash: Any = None) -> list[dict[str, Any]]:
        number = self._at(block_hash)
        values, _ = self._storage(number)
        return [{"block": self.hash_of(number), "changes": [[k, values.get(str(k).lower())] for k in keys]}]

    def rpc_account_nextIndex(self, address: Any) -> int:
        return self.store.nonce(str(address))

    rpc_system_accountNextIndex = rpc_account_nextIndex

    def rpc_author_submitExtrinsic(self, data: Any) -> str:
        return self._submit(data).extrinsic_hash

    def _submit(self, data: Any) -> Included:
        try:
            included = self.runtime.submit(str(data), self.head(), self.hash_of)
        except TransactionInvalid as exc:
            raise RpcError(1010, "Invalid Transaction", str(exc)) from None
        self.submitted += 1
        self._storage_cache = None
        logger.debug(
            f"extrinsic {included.extrinsic_hash} in block {included.block} ({'success' if included.success else 'failed'})"
        )
        return included

    def rpc_system_chain(self) -> str:
        return "resi local subtensor"

    def rpc_system_name(self) -> str:
        return "resi-chain-node"

    def rpc_system_version(self) -> str:
        return "1.0.0"

    def rpc_system_properties(self) -> dict[str, Any]:
        return {"ss58Format": self.runtime.info.ss58_format, "tokenDecimals": 9, "tokenSymbol": "TAO"}

    def rpc_system_health(self) -> dict[str, Any]:
        return {"peers": 0, "isSyncing": False, "shouldHavePeers": False}

    def rpc_rpc_methods(self) -> dict[str, list[str]]:
        names = sorted(n[4:] for n in dir(self) if n.startswith("rpc_"))
        return {"methods": names + ["author_submitAndWatchExtrinsic", "chain_subscribeNewHeads"]}

    # --- the websocket -----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=30)
        await ws.prepare(request)
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
                    continue
                if isinstance(frame, list):
                    answers = [await self._answer(ws, item, tasks) for item in frame[:100]]
                    await ws.send_json([a for a in answers if a is not None])
                else:
                    answer = await self._answer(ws, frame, tasks)
                    if answer is not None:
                        await ws.send_json(answer)
        finally:
            for task in tasks.values():
                task.cancel()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, frame: Any, tasks: dict[str, asyncio.Task[None]]) -> dict[str, Any] | None:
        if not isinstance(frame, dict) or not isinstance(frame.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        rid, method = frame.get("id"), frame["method"]
        params: list[Any] = frame["params"] if isinstance(frame.get("params"), list) else []
        result: Any
        try:
            if method == "author_submitAndWatchExtrinsic":
                result = self._watch(ws, tasks, self._submit(params[0] if params else None))
            elif method in ("chain_subscribeNewHeads", "chain_subscribeFinalizedHeads"):
                result = self._heads(ws, tasks, "chain_newHead" if "New" in method else "chain_finalizedHead")
            elif method in ("author_unwatchExtrinsic", "chain_unsubscribeNewHeads", "chain_unsubscribeFinalizedHeads"):
                task = tasks.pop(str(params[0]) if params else "", None)
                result = task is not None
                if task is not None:
                    task.cancel()
            else:
                result = await asyncio.to_thread(self.call, method, params)
        except RpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            return {"jsonrpc": "2.0", "id": rid, "error": error}
        except Exception as exc:  # never a crash of the node for what one request asked
            logger.exception(f"{method} failed")
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32603, "message": f"Internal error: {exc}"}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def _subscribe(self, tasks: dict[str, asyncio.Task[None]], coro_factory: Callable[[str], Coroutine[Any, Any, None]]) -> str:
        sub_id = f"{next(self._ids):x}"
        tasks[sub_id] = asyncio.get_running_loop().create_task(coro_factory(sub_id))
        return sub_id

    def _watch(self, ws: web.WebSocketResponse, tasks: dict[str, asyncio.Task[None]], included: Included) -> str:
        async def run(sub_id: str) -> None:
            async def push(result: Any) -> None:
                await ws.send_json(
                    {"jsonrpc": "2.0", "method": "author_extrinsicUpdate", "params": {"subscription": sub_id, "result": result}}
                )

            await asyncio.sleep(0)  # the subscription id goes out first
            await push("ready")
            while self.head() < included.block:  # noqa: ASYNC110 - blocks follow the clock, nothing else to wait on
                await asyncio.sleep(min(0.2, self.store.block_seconds / 4))
            block_hash = await asyncio.to_thread(self.hash_of, included.block)
            await push({"inBlock": block_hash})
            await push({"finalized": block_hash})

        return self._subscribe(tasks, run)

    def _heads(self, ws: web.WebSocketResponse, tasks: dict[str, asyncio.Task[None]], notification: str) -> str:
        async def run(sub_id: str) -> None:
            last = -1
            while True:
                head = self.head()
                if head != last:
                    header = await asyncio.to_thread(self.header, head)
                    await ws.send_json(
                        {"jsonrpc": "2.0", "method": notification, "params": {"subscription": sub_id, "result": header}}
                    )
                    last = head
                await asyncio.sleep(min(0.5, self.store.block_seconds / 4))

        return self._subscribe(tasks, run)


def build_app(node: ChainNode) -> web.Application:
    app = web.Application()
    app.router.add_get("/", node.handle)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"block": node.head(), "submitted": node.submitted})

    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> int:
    from resi.chain.runtime import RuntimeUnavailable, load
    from resi.logs import setup_logging

    p = argparse.ArgumentParser(prog="python -m resi.chain.node", description=__doc__.split("\n\n")[0])
    p.add_argument("--chain", type=Path, required=True, help="simulated chain file (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9944, help="port to listen on (9944: a node's usual one)")
    p.add_argument(
        "--block-seconds",
        type=float,
        default=DEFAULT_BLOCK_SECONDS,
        help="seconds per block when this call creates the chain file",
    )
    p.add_argument("--netuid", type=int, action="append", default=None, help=f"subnets it serves (default {NETUID})")
    p.add_argument(
        "--epoch-consensus",
        action="store_true",
        help="serve SubtensorModule.SubnetEpochConsensus as runtimes newer than spec 461 do (the SDK's "
        "SetWeights preflight reads it); without it the runtime is spec 461 exactly",
    )
    p.add_argument("--logging.debug", dest="debug", action="store_true", help="log every extrinsic")
    args = p.parse_args(argv)
    setup_logging(debug=args.debug, name="chain-node")
    try:
        info = load().with_epoch_consensus() if args.epoch_consensus else load()
    except RuntimeUnavailable as exc:
        print(f"error: {exc} (run `python -m resi.chain.runtime` where PyPI is reachable)", file=sys.stderr)
        return 2
    store = SimulatedChainStore(args.chain, block_seconds=args.block_seconds, create=True)
    node = ChainNode(store, info, tuple(args.netuid or (NETUID,)))
    logger.info(
        f"local subtensor node on ws://{args.host}:{args.port} (chain {args.chain}, spec {info.spec_version}, "
        f"{store.block_seconds:g} s blocks)"
    )
    web.run_app(build_app(node), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
