"""The chain node's runtime: the simulated chain's state in subtensor's SCALE encoding.

Everything is encoded and decoded with the bittensor SDK's own codec (``bittensor_core``) built from the real
runtime metadata (:mod:`resi.chain.runtime`), so what the node answers is byte for byte what a subtensor node
with that runtime answers for the same state: storage values under their real keys, the
``SubnetInfoRuntimeApi_get_metagraph`` record, ``System.Events`` with module errors by their real indices, and
signed extrinsics checked as the runtime checks them (sr25519 signature over the exact signing payload, the
mortal era, the account's nonce) before their call is applied with the simulated chain's rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bittensor._transport.codec import RuntimeCodec
from bittensor.sp_core import Keypair, ss58_decode, ss58_encode

from resi.chain.base import ChainError, Neuron, WeightsRefused
from resi.chain.rules import epoch_index, reveal_hash
from resi.chain.runtime import RuntimeInfo
from resi.chain.store import SimulatedChainStore
from resi.chain.weights import U16_MAX

ZERO_ACCOUNT = "5C4hrfjw9DjXZTzV3MwzrrAr9P1MJhSrvWGWqi1eSuyUpnhM"
RAO = 10**9
_SUBTENSOR = "SubtensorModule"
_DISPATCH_INFO = {"weight": {"ref_time": 100_000_000, "proof_size": 10_000}, "class": "Normal", "pays_fee": "Yes"}
_SIGNED_V4 = 0x84
COMMIT_REVEAL_VERSION = 4
"""``CommitRevealWeightsVersion``: the timelocked commits' format the runtime takes."""


class TransactionInvalid(ChainError):
    """A transaction the pool refuses before it reaches a block (JSON-RPC error 1010, like a node's)."""


@dataclass(frozen=True)
class Included:
    extrinsic_hash: str
    block: int
    index: int
    success: bool


class NodeRuntime:
    def __init__(self, info: RuntimeInfo, store: SimulatedChainStore, netuids: tuple[int, ...]):
        self.info = info
        self.store = store
        self.netuids = netuids
        self.codec = RuntimeCodec(
            info.metadata,
            spec_version=info.spec_version,
            transaction_version=info.transaction_version,
            ss58_format=info.ss58_format,
        )

    # --- registry helpers ---------------------------------------------------------------------------------------

    @cached_property
    def _types(self) -> dict[int, dict[str, Any]]:
        return {t["id"]: t["type"] for t in self.codec.registry_types()}

    def _zero(self, type_id: int) -> Any:
        """The all-zero value of a registry type, in the codec's input form."""
        ty = self._types[type_id]
        kind, body = next(iter(ty["def"].items()))
        if ty.get("path") == ["sp_core", "crypto", "AccountId32"]:
            return ZERO_ACCOUNT
        if kind == "composite":
            parts = body.get("fields") or []
            if parts and all("name" in f for f in parts):
                return {f["name"]: self._zero(f["type"]) for f in parts}
            return [self._zero(f["type"]) for f in parts] if len(parts) != 1 else self._zero(parts[0]["type"])
        if kind == "variant":
            first = body["variants"][0]
            return None if ty.get("path") == ["Option"] else first["name"]
        if kind in ("sequence", "bitSequence"):
            return []
        if kind == "array":
            return [self._zero(body["type"])] * body["len"]
        if kind == "tuple":
            return [self._zero(t) for t in body]
        if kind == "primitive":
            return False if body == "bool" else "" if body == "str" else 0
        return 0  # compact

    def pallet_index(self, name: str) -> int:
        return next(p.index for p in self.codec.metadata_ir().pallets if p.name == name)

    @cached_property
    def _errors(self) -> dict[str, int]:
        pallet = next(p for p in self.codec.metadata_ir().pallets if p.name == _SUBTENSOR)
        return {e.name: e.index for e in pallet.errors}

    # --- storage ------------------------------------------------------------------------------------------------

    def _put(self, out: dict[str, str], pallet: str, item: str, params: list[Any], value: Any) -> None:
        entry = self.codec.storage_entry(pallet, item)
        out["0x" + self.codec.storage_key(entry, params).hex()] = "0x" + self.codec.encode(entry.value_type, value).hex()

    def storage(self, block: int) -> dict[str, str]:
        """Every storage value the node holds at ``block`` (current state; events and time of that block)."""
        out: dict[str, str] = {}
        self._put(out, "System", "Number", [], block)
        self._put(out, "Timestamp", "Now", [], int(self.store.block_timestamp(block) * 1000))
        self._put(out, "System", "Events", [], self.events(block))
        accounts: set[str] = set()
        for netuid in self.netuids:
            params = self.store.params(netuid)
            graph = self.store.neurons(netuid)
            weights = self.store.current_weights(netuid)

            def put(item: str, keys: list[Any], value: Any, n: int = netuid) -> None:
                self._put(out, _SUBTENSOR, item, [n, *keys], value)

            put("NetworksAdded", [], True)
            put("SubnetworkN", [], len(graph))
            put("Tempo", [], params.tempo)
            put("WeightsSetRateLimit", [], params.weights_rate_limit)
            put("WeightsVersionKey", [], params.weights_version_key)
            put("MinAllowedWeights", [], params.min_allowed_weights)
            put("MaxWeightsLimit", [], round(params.max_weights_limit * U16_MAX))
            put("CommitRevealWeightsEnabled", [], params.commit_reveal)
            put("RevealPeriodEpochs", [], params.reveal_period_epochs)
            put("ImmunityPeriod", [], params.immunity_period)
            put("MaxAllowedUids", [], params.max_uids)
            put("MaxAllowedValidators", [], params.max_validators)
            since_step = (block + netuid + 1) % (params.tempo + 1)
            put("BlocksSinceLastStep", [], since_step)
            put("LastEpochBlock", [], max(0, block - since_step))
            put("SubnetEpochIndex", [], epoch_index(block, netuid, params.tempo))
            width = max((n.uid for n in graph), default=-1) + 1
            by_uid = {n.uid: n for n in graph}
            put("ValidatorPermit", [], [bool(by_uid.get(u) and by_uid[u].validator_permit) for u in range(width)])
            put("LastUpdate", [], [by_uid[u].last_update if u in by_uid else 0 for u in range(width)])
            for n in graph:
                put("Uids", [n.hotkey], n.uid)
                put("Keys", [n.uid], n.hotkey)
                put("BlockAtRegistration", [n.uid], n.registered_at)
                accounts.update((n.hotkey, n.coldkey))
            for uid, (uids, values) in weights.items():
                put("Weights", [uid], [[u, v] for u, v in zip(uids, values)])
        self._put(out, _SUBTENSOR, "CommitRevealWeightsVersion", [], COMMIT_REVEAL_VERSION)
        for address in accounts:
            self._put(
                out,
                "System",
                "Account",
                [address],
                {
                    "nonce": self.store.nonce(address),
                    "consumers": 0,
                    "providers": 1,
                    "sufficients": 0,
                    "data": {"free": 10**6 * RAO, "reserved": 0, "frozen": 0, "flags": 1 << 127},
                },
            )
        return out

    # --- runtime APIs -------------------------------------------------------------------------------------------

    def runtime_call(self, method: str, data: bytes, block: int) -> bytes:
        """The SCALE answer of ``state_call`` (ChainError for an API the node does not serve)."""
        api, _, name = method.partition("_")
        spec = self.codec.runtime_api_map.get(api, {}).get(name)
        if spec is None:
            raise ChainError(f"Exported method {method} is not found")
        if method == "Metadata_metadata_at_version":
            version = int.from_bytes(data[:4], "little")
            if version != 15:
                return b"\x00"
            return b"\x01" + self.codec.encode_compact(len(self.info.metadata)) + self.info.metadata
        if method == "Metadata_metadata_versions":
            return self.codec.encode(spec["output"], [14, 15])
        if method == "SubnetInfoRuntimeApi_get_metagraph":
            netuid = self.codec.decode(spec["inputs"][0][1], data)
            return self.codec.encode(spec["output"], self.metagraph(int(netuid), block))
        if method == "TransactionPaymentApi_query_info":
            return self.codec.encode(spec["output"], {"weight": _DISPATCH_INFO["weight"], "class": "Normal", "partial_fee": 0})
        if method == "AccountNonceApi_account_nonce":
            account = self.codec.decode(spec["inputs"][0][1], data)
            return self.codec.encode(spec["output"], self.store.nonce(str(account)))
        raise ChainError(f"Exported method {method} is not served by the resi local node")

    def metagraph(self, netuid: int, block: int) -> dict[str, Any] | None:
        if netuid not in self.netuids:
            return None
        spec = self.codec.runtime_api_map["SubnetInfoRuntimeApi"]["get_metagraph"]
        option = self._types[int(spec["output"].removeprefix("scale_info::"))]
        record_type = option["def"]["variant"]["variants"][1]["fields"][0]["type"]
        graph = self.store.neurons(netuid)
        params = self.store.params(netuid)
        record: dict[str, Any] = self._zero(record_type)
        width = max((n.uid for n in graph), default=-1) + 1
        by_uid = {n.uid: n for n in graph}

        def column(get: Callable[[Neuron], Any], default: Any) -> list[Any]:
            return [get(by_uid[u]) if u in by_uid else default for u in range(width)]

        def share(value: float) -> int:
            return round(max(0.0, min(1.0, value)) * U16_MAX)

        record.update(
            netuid=netuid,
            name=list(b"resi"),
            symbol=list("α".encode()),
            block=block,
            tempo=params.tempo,
            last_step=max(0, block - (block + netuid + 1) % (params.tempo + 1)),
            blocks_since_last_step=(block + netuid + 1) % (params.tempo + 1),
            min_allowed_weights=params.min_allowed_weights,
            max_weights_limit=round(params.max_weights_limit * U16_MAX),
            weights_version=params.weights_version_key,
            weights_rate_limit=params.weights_rate_limit,
            max_validators=params.max_validators,
            num_uids=len(graph),
            max_uids=params.max_uids,
            immunity_period=params.immunity_period,
            registration_allowed=True,
            commit_reveal_weights_enabled=params.commit_reveal,
            commit_reveal_period=params.reveal_period_epochs,
            hotkeys=column(lambda n: n.hotkey, ZERO_ACCOUNT),
            coldkeys=column(lambda n: n.coldkey, ZERO_ACCOUNT),
            active=column(lambda n: True, False),
            validator_permit=column(lambda n: n.validator_permit, False),
            last_update=column(lambda n: n.last_update, 0),
            block_at_registration=column(lambda n: n.registered_at, 0),
            rank=column(lambda n: share(n.rank), 0),
            trust=column(lambda n: share(n.trust), 0),
            incentives=column(lambda n: share(n.incentive), 0),
            consensus=column(lambda n: share(n.incentive), 0),
            dividends=column(lambda n: share(n.dividends), 0),
            pruning_score=column(lambda n: share(n.emission), 0),
            emission=column(lambda n: round(n.emission * RAO), 0),
            alpha_stake=column(lambda n: round(n.stake * RAO), 0),
            tao_stake=column(lambda n: 0, 0),
            total_stake=column(lambda n: round(n.stake * RAO), 0),
        )
        for key in (
            "identities",
            "axons",
            "tao_dividends_per_hotkey",
            "alpha_dividends_per_hotkey",
            "collateral_locked",
            "collateral_min",
            "collateral_earned",
        ):
            item_type = next(f["type"] for f in self._types[record_type]["def"]["composite"]["fields"] if f["name"] == key)
            element = self._types[item_type]["def"]["sequence"]["type"]
            record[key] = [self._zero(element) for _ in range(width)]
        return record

    # --- blocks and events --------------------------------------------------------------------------------------

    def timestamp_extrinsic(self, block: int) -> str:
        """The block's ``Timestamp.set`` inherent, as a node would put it first in the block."""
        call = self.codec.call_data(
            self.codec.compose_call("Timestamp", "set", {"now": int(self.store.block_timestamp(block) * 1000)})
        )
        body = bytes([0x04]) + call  # unsigned, extrinsic version 4
        return "0x" + (self.codec.encode_compact(len(body)) + body).hex()

    def events(self, block: int) -> list[dict[str, Any]]:
        records = [
            {
                "phase": {"ApplyExtrinsic": 0},
                "topics": [],
                "event": {"System": {"ExtrinsicSuccess": {"dispatch_info": dict(_DISPATCH_INFO, **{"class": "Mandatory"})}}},
            }
        ]
        for index, _, _, events in self.store.block_extrinsics(block):
            records.extend({"phase": {"ApplyExtrinsic": index}, "event": event, "topics": []} for event in events)
        return records

    # --- extrinsics ---------------------------------------------------------------------------------------------

    def submit(self, data_hex: str, head: int, block_hash: Callable[[int], str]) -> Included:
        """Check a signed extrinsic as the runtime does, apply its call, and take it into the next block."""
        data = bytes.fromhex(data_hex.removeprefix("0x"))
        try:
            decoded = self.codec.decode_extrinsic(data)
        except Exception as exc:
            raise TransactionInvalid(f"Could not decode the extrinsic: {str(exc)[:200]}") from None
        address, signature = decoded.get("address"), decoded.get("signature")
        if not address or not isinstance(signature, dict):
            raise TransactionInvalid("Invalid Transaction: the resi local node takes signed extrinsics only")
        call = self._verify(data, decoded, head, block_hash)
        nonce, expected = int(decoded["nonce"]), self.store.nonce(str(address))
        if nonce != expected:  # checked before the call is applied: a replayed extrinsic changes nothing
            raise TransactionInvalid(f"Invalid Transaction: {'Stale' if nonce < expected else 'Future'}")
        extrinsic_hash = "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()
        block = head + 1
        events = self._dispatch(str(address), call, decoded["call"], block)
        success = "ExtrinsicSuccess" in events[-1]["System"]
        try:
            index = self.store.include(str(address), nonce, extrinsic_hash, data_hex, events, block)
        except ChainError as exc:  # another process took the nonce in between
            raise TransactionInvalid(f"Invalid Transaction: {exc}") from None
        return Included(extrinsic_hash, block, index, success)

    def _verify(self, data: bytes, decoded: dict[str, Any], head: int, block_hash: Callable[[int], str]) -> bytes:
        """The call bytes of a signed extrinsic whose signature, era and runtime checks hold."""
        _, offset = _compact_prefix(data)
        if data[offset] != _SIGNED_V4 or data[offset + 1] != 0x00 or data[offset + 34] != 0x01:
            raise TransactionInvalid("Invalid Transaction: only sr25519-signed v4 extrinsics are taken")
        public_key = data[offset + 2 : offset + 34]
        signature = data[offset + 35 : offset + 99]
        era = decoded.get("era") or "00"
        if era in ("00", "Immortal"):
            era_block = 0
        else:
            period, phase = (int(era["period"]), int(era["phase"])) if isinstance(era, dict) else map(int, era)
            era_block = head - ((head - phase) % period) if head >= phase else -1
            if era_block < 0 or head - era_block >= period:
                raise TransactionInvalid("Invalid Transaction: Transaction has an ancient birth block")
            era = {"period": period, "current": era_block}  # the birth block gives back the same phase
        genesis, era_hash = block_hash(0), block_hash(era_block)
        common: dict[str, Any] = dict(
            era=era,
            nonce=int(decoded["nonce"]),
            tip=int(decoded.get("tip") or 0),
            tip_asset_id=None,
            genesis_hash=genesis,
            era_block_hash=era_hash,
        )
        extra = self.codec.signature_payload_parts(b"", **common)[1]
        start = offset + 99
        if data[start : start + len(extra)] != extra:
            raise TransactionInvalid("Invalid Transaction: the extrinsic's signed extensions are malformed")
        call = data[start + len(extra) :]
        payload = self.codec.signature_payload(call, **common)
        if ss58_encode(public_key, self.info.ss58_format) != decoded["address"] or not Keypair(
            ss58_address=decoded["address"]
        ).verify(payload, signature):
            raise TransactionInvalid("Invalid Transaction: Transaction has a bad signature")
        return call

    def _dispatch(self, who: str, call_bytes: bytes, call: dict[str, Any], block: int) -> list[dict[str, Any]]:
        """Apply the call with the chain's rules; the extrinsic's events (its last says success or failure)."""
        module, function = call.get("call_module"), call.get("call_function")
        args = {a["name"]: a["value"] for a in call.get("call_args") or []}
        fee = {"TransactionPayment": {"TransactionFeePaid": {"who": who, "actual_fee": 0, "tip": 0}}}
        if module != _SUBTENSOR or function not in _WEIGHT_CALLS:
            raise TransactionInvalid(f"Invalid Transaction: the resi local node does not take {module}.{function}")
        try:
            event = self._apply(who, function, args, block)
        except WeightsRefused as refusal:
            index = self._errors.get(refusal.reason)
            if index is None:
                raise TransactionInvalid(f"Invalid Transaction: {refusal}") from None
            failed = {
                "dispatch_error": {
                    "Module": {"index": self.pallet_index(_SUBTENSOR), "error": "0x" + bytes([index, 0, 0, 0]).hex()}
                },
                "dispatch_info": _DISPATCH_INFO,
            }
            return [fee, {"System": {"ExtrinsicFailed": failed}}]
        return [event, fee, {"System": {"ExtrinsicSuccess": {"dispatch_info": _DISPATCH_INFO}}}]

    def _apply(self, who: str, function: str, args: dict[str, Any], block: int) -> dict[str, Any]:
        """Apply a weights call as of ``block`` (the one the extrinsic goes into)."""
        netuid = int(args["netuid"])
        if int(args.get("mecid") or 0) != 0:
            raise WeightsRefused("MechanismDoesNotExist", "the subnet has one mechanism")
        if netuid not in self.netuids:
            raise WeightsRefused("SubnetNotExists", f"netuid {netuid} does not exist")
        store = self.store
        if function in ("set_weights", "set_mechanism_weights"):
            store.set_weights(
                netuid,
                who,
                [int(u) for u in args["dests"]],
                [int(w) for w in args["weights"]],
                int(args["version_key"]),
                block=block,
            )
            uid = next(n.uid for n in store.neurons(netuid) if n.hotkey == who)
            return {_SUBTENSOR: {"WeightsSet": [netuid, uid]}}
        if function in ("commit_weights", "commit_mechanism_weights"):
            store.commit(netuid, who, str(args["commit_hash"]), block=block)
            return {_SUBTENSOR: {"WeightsCommitted": [who, netuid, str(args["commit_hash"])]}}
        if function in ("reveal_weights", "reveal_mechanism_weights"):
            uids, values = [int(u) for u in args["uids"]], [int(v) for v in args["values"]]
            salt, version = [int(s) for s in args["salt"]], int(args["version_key"])
            store.reveal(netuid, who, _public_key(who), uids, values, salt, version, block=block)
            digest = reveal_hash(_public_key(who), netuid, uids, values, salt, version)
            return {_SUBTENSOR: {"WeightsRevealed": [who, netuid, digest]}}
        commit = args["commit"]
        payload = bytes.fromhex(commit.removeprefix("0x")) if isinstance(commit, str) else bytes(commit)
        digest = "0x" + hashlib.blake2b(payload, digest_size=32).hexdigest()
        reveal_round = int(args["reveal_round"])
        if int(args.get("commit_reveal_version") or 0) != COMMIT_REVEAL_VERSION:
            raise WeightsRefused("IncorrectCommitRevealVersion", f"the runtime takes version {COMMIT_REVEAL_VERSION}")
        store.commit(netuid, who, digest, reveal_round=reveal_round, payload=payload, block=block)
        return {_SUBTENSOR: {"TimelockedWeightsCommitted": [who, netuid, digest, reveal_round]}}


_WEIGHT_CALLS = (
    "set_weights",
    "set_mechanism_weights",
    "commit_weights",
    "commit_mechanism_weights",
    "reveal_weights",
    "reveal_mechanism_weights",
    "commit_timelocked_weights",
    "commit_timelocked_mechanism_weights",
)


def _public_key(address: str) -> bytes:
    key = ss58_decode(address)
    return bytes(key) if not isinstance(key, str) else bytes.fromhex(key.removeprefix("0x"))


def _compact_prefix(data: bytes) -> tuple[int, int]:
    """(value, bytes used) of the SCALE compact at the start of ``data``."""
    mode = data[0] & 3
    if mode == 0:
        return data[0] >> 2, 1
    if mode == 1:
        return int.from_bytes(data[:2], "little") >> 2, 2
    if mode == 2:
        return int.from_bytes(data[:4], "little") >> 2, 4
    size = (data[0] >> 2) + 4
    return int.from_bytes(data[1 : 1 + size], "little"), 1 + size
