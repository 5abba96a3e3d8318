"""The bittensor adapter over a real websocket to the local subtensor node: the unmodified SDK reads the
metagraph, blocks and hyperparameters, and its signed extrinsics are checked and applied with the chain's
rules; every refusal comes back as a ChainError with the chain's own reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time

import bittensor
import pytest
from bittensor.wallet import Wallet

from resi.chain.base import ChainError, WeightsRefused
from resi.chain.bittensor_chain import BittensorChain
from resi.chain.rules import reveal_hash
from resi.chain.store import SimulatedChainStore
from resi.chain.weights import conform
from tests.e2e import wait_for
from tests.kit import ROOT
from tests.servers import ChainNode

pytestmark = pytest.mark.slow

BLOCK_SECONDS = 0.5


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("node")
    store = SimulatedChainStore(root / "chain.db", block_seconds=BLOCK_SECONDS, create=True)
    store.block()
    server = ChainNode(root, store.path).start()
    yield server, store
    server.stop()


@pytest.fixture
def people(node, wallets):
    """A fresh validator (permit), two miners and an unregistered hotkey on the node's chain, with the
    default rules reset."""
    _, store = node
    store.set_params(
        46,
        weights_rate_limit=4,
        weights_version_key=0,
        min_allowed_weights=1,
        max_weights_limit=1.0,
        commit_reveal=False,
        tempo=9,
        reveal_period_epochs=1,
    )
    made = {name: wallets(name) for name in ("validator", "miner1", "miner2", "stranger")}
    uids = {
        name: store.register(
            made[name].hotkey, made[name].coldkey, stake=4000 if name == "validator" else 25, validator=name == "validator"
        )
        for name in ("validator", "miner1", "miner2")
    }
    handles = {name: Wallet(name=name, hotkey="default", path=str(wallets.path)) for name in made}
    return made, uids, handles


def _chain(node, wallet=None, **kwargs) -> BittensorChain:
    server, _ = node
    return BittensorChain(server.url, 46, wallet=wallet, **kwargs)


async def _with(chain: BittensorChain, coro_fn):
    try:
        return await coro_fn(chain)
    finally:
        await chain.close()


def run(chain: BittensorChain, coro_fn):
    return asyncio.run(_with(chain, coro_fn))


def test_metagraph_has_the_chains_neurons_in_its_units(node, people):
    _, store = node
    made, uids, _ = people
    store.set_weights(46, made["validator"].hotkey, [uids["miner1"], uids["miner2"]], [3, 1], 0)
    graph = run(_chain(node), lambda c: c.metagraph())
    expected = {n.uid: n for n in store.neurons(46)}
    assert [n.uid for n in graph.neurons] == sorted(expected)
    for n in graph.neurons:
        want = expected[n.uid]
        assert (n.hotkey, n.coldkey, n.validator_permit, n.last_update, n.registered_at) == (
            want.hotkey,
            want.coldkey,
            want.validator_permit,
            want.last_update,
            want.registered_at,
        )
        assert n.stake == pytest.approx(want.stake)  # alpha, in the subnet's own unit (never .tao)
        assert n.incentive == pytest.approx(want.incentive, abs=2e-5)  # u16 fixed point on the wire
    me = graph.by_hotkey(made["validator"].hotkey)
    assert me.validator_permit and me.stake == pytest.approx(4000) and me.last_update > 0
    assert graph.by_hotkey(made["miner1"].hotkey).stake == pytest.approx(25)
    assert abs(graph.block - store.block()) <= 4


def test_blocks_hashes_and_first_block_at_match_the_chain(node):
    _, store = node
    chain = _chain(node)

    async def probe(c: BittensorChain):
        head = await c.block()
        moment = store.block_timestamp(head - 6) + BLOCK_SECONDS / 3
        return head, await c.block_hash(head - 2), await c.first_block_at(moment), moment, await c.params()

    wait_for(lambda: store.block() > 10, 30, what="ten blocks")
    head, block_hash, first, moment, params = run(chain, probe)
    assert block_hash == store.block_hash(head - 2)
    assert first == store.first_block_at(moment) == head - 5
    assert params.tempo == 9 and params.weights_rate_limit == 4 and not params.commit_reveal

    async def future(c: BittensorChain):
        return await c.block_hash(await c.block() + 1000)

    with pytest.raises(ChainError, match="does not exist"):
        run(_chain(node), future)


def test_weights_land_and_every_refusal_carries_the_chains_reason(node, people):
    _, store = node
    made, uids, wallets = people
    targets = [uids["miner1"], uids["miner2"]]
    as_validator = _chain(node, wallets["validator"])

    async def twice(c: BittensorChain):
        first = await c.set_weights(targets, [0.75, 0.25], 1000)
        with pytest.raises(WeightsRefused) as refused:
            await c.set_weights(targets, [0.5, 0.5], 1000)
        return first, refused.value

    result, too_fast = run(as_validator, twice)
    assert result.success and result.block is not None
    assert store.current_weights(46)[uids["validator"]] == (targets, [65535, 21845])
    held = run(_chain(node), lambda c: c.weights_of([uids["validator"], uids["miner1"]]))  # read back over the wire
    assert held == {uids["validator"]: list(zip(targets, [65535, 21845])), uids["miner1"]: []}
    me = next(n for n in store.neurons(46) if n.hotkey == made["validator"].hotkey)
    assert me.last_update == result.block  # the block the extrinsic went into
    assert too_fast.reason == "SettingWeightsTooFast"

    def refusal(wallet_name: str, *args, **params) -> str:
        if params:
            store.set_params(46, **params)
        wait_for(lambda: store.block() - me.last_update > 5, 30, what="the rate limit to pass")
        with pytest.raises(WeightsRefused) as refused:
            run(_chain(node, wallets[wallet_name]), lambda c: c.set_weights(*args))
        assert isinstance(refused.value, ChainError)
        return refused.value.reason

    assert refusal("miner1", targets, [0.5, 0.5], 1000) == "NeuronNoValidatorPermit"
    assert refusal("stranger", targets, [0.5, 0.5], 1000) == "HotKeyNotRegisteredInSubNet"
    assert refusal("validator", targets, [0.5, 0.5], 999, weights_version_key=1000) == "IncorrectWeightVersionKey"
    assert refusal("validator", [uids["miner1"]], [1.0], 1000, min_allowed_weights=2) == "WeightVecLengthIsLow"
    assert refusal("validator", [*targets, 250], [0.3, 0.3, 0.4], 1000, min_allowed_weights=1) == "UidVecContainInvalidOne"
    assert store.current_weights(46)[uids["validator"]] == (targets, [65535, 21845])  # nothing refused landed


def test_max_weight_limit_conformed_by_the_adapter_and_enforced_by_the_node(node, people):
    _, store = node
    made, uids, wallets = people
    store.set_params(46, max_weights_limit=0.6)
    targets = [uids["miner1"], uids["miner2"]]
    result = run(_chain(node, wallets["validator"]), lambda c: c.set_weights(targets, [0.9, 0.1], 1000))
    _, values = store.current_weights(46)[uids["validator"]]
    assert result.success and max(values) / sum(values) <= 0.6 + 1e-4  # clipped, mass redistributed
    params = store.params(46)
    assert (targets, values) == tuple(conform(targets, [0.9, 0.1], params, uids["validator"]))

    raw = bittensor.calls.SubtensorModule.set_mechanism_weights(
        netuid=46, mecid=0, dests=targets, weights=[65535, 1000], version_key=1000
    )
    wait_for(lambda: store.block() - result.block > 5, 30, what="the rate limit to pass")

    async def submit(c: BittensorChain):
        client = await c._connected()
        return await client.submit_call(raw, wallets["validator"], signer="hotkey", wait_for_finalization=False)

    outcome = run(_chain(node), submit)
    assert not outcome.success and outcome.error.name == "MaxWeightExceeded"


def test_timelocked_commit_when_commit_reveal_is_on(node, people):
    _, store = node
    made, uids, wallets = people
    store.set_params(46, commit_reveal=True)
    result = run(_chain(node, wallets["validator"]), lambda c: c.set_weights([uids["miner1"], uids["miner2"]], [0.5, 0.5], 1000))
    commits = [c for c in store.commits(46) if c["hotkey"] == made["validator"].hotkey]
    assert result.success and len(commits) == 1
    assert commits[0]["kind"] == "timelocked" and commits[0]["reveal_round"] > 0 and not commits[0]["revealed"]
    me = next(n for n in store.neurons(46) if n.hotkey == made["validator"].hotkey)
    assert me.last_update == result.block == commits[0]["block"]
    assert uids["validator"] not in store.current_weights(46)  # nothing set until it is revealed


def test_hash_commit_then_reveal_in_the_next_epoch(node, people):
    """The legacy salt-based path end to end through the SDK: a commit, a reveal too early (refused with the
    chain's reason), the reveal in the epoch after the commit's."""
    _, store = node
    made, uids, wallets = people
    tempo = 9
    store.set_params(46, commit_reveal=True, tempo=tempo, reveal_period_epochs=1)
    targets, values, salt, version = [uids["miner1"], uids["miner2"]], [65535, 32768], [3, 1, 4], 1000
    pub = bytes(wallets["validator"].hotkey.public_key)
    digest = reveal_hash(pub, 46, targets, values, salt, version)

    def epoch_of(block: int) -> int:
        return (block + 46 + 1) // (tempo + 1)

    async def flow(c: BittensorChain):
        client = await c._connected()
        commit = bittensor.calls.SubtensorModule.commit_mechanism_weights(netuid=46, mecid=0, commit_hash=digest)
        while (await c.block() + 47) % (tempo + 1) > tempo - 4:  # noqa: ASYNC110 - commit early in an epoch
            await asyncio.sleep(BLOCK_SECONDS / 2)
        committed = await client.submit_call(commit, wallets["validator"], signer="hotkey", wait_for_finalization=False)
        reveal = bittensor.RevealWeights(netuid=46, uids=targets, weights=[1.0, 0.5], salt=salt, version_key=version)
        early = await client.execute(reveal, wallets["validator"], wait_for_finalization=False)
        commit_block = next(x["block"] for x in store.commits(46) if x["commit_hash"] == digest)
        while epoch_of(await c.block() + 1) <= epoch_of(commit_block):  # noqa: ASYNC110 - blocks follow the clock
            await asyncio.sleep(BLOCK_SECONDS / 2)
        late = await client.execute(reveal, wallets["validator"], wait_for_finalization=False)
        return committed, early, late

    committed, early, late = run(_chain(node), flow)
    assert committed.success
    assert not early.success and early.error.name == "RevealTooEarly"
    assert late.success, late.message
    assert store.current_weights(46)[uids["validator"]] == (targets, values)
    assert [c["revealed"] for c in store.commits(46) if c["commit_hash"] == digest] == [True]


def test_the_commit_hash_is_subtensors(node, people):
    """BlakeTwo256 of the SCALE tuple (hotkey, netuid, uids, values, salt, version_key), encoded here by the
    SDK's codec from the runtime's metadata, not by the node's own code."""
    from bittensor._transport.codec import RuntimeCodec

    from resi.chain.runtime import load

    _, store = node
    made, _, wallets = people
    info = load()
    codec = RuntimeCodec(
        info.metadata, spec_version=info.spec_version, transaction_version=info.transaction_version, ss58_format=info.ss58_format
    )
    data = codec.encode(
        "(AccountId, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [made["validator"].hotkey, 46, [1, 2], [65535, 7], [9, 9], 1000]
    )
    pub = bytes(wallets["validator"].hotkey.public_key)
    assert reveal_hash(pub, 46, [1, 2], [65535, 7], [9, 9], 1000) == "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def test_the_adapter_connects_again_after_the_node_restarts(node, people):
    server, store = node
    chain = _chain(node, call_timeout=5, connect_timeout=5)

    async def across_restart(c: BittensorChain):
        before = await c.block()
        server.stop()
        started = time.monotonic()
        with pytest.raises(ChainError):
            await c.block()
        failed_in = time.monotonic() - started
        server.start()  # from this thread: a node started from a worker thread dies with the thread
        after = await c.block()
        graph = await c.metagraph()
        return before, after, failed_in, graph

    before, after, failed_in, graph = run(chain, across_restart)
    assert after > before and failed_in < 12
    assert graph.by_hotkey(people[0]["validator"].hotkey) is not None


def test_every_failure_of_the_sdk_is_a_chain_error(node, people):
    """What the SDK raises (a TypeError, the alpha-is-not-TAO UnitMismatchError an adapter once hit at its
    first real metagraph) is a ChainError naming it; the handle keeps working."""

    async def tao_of_alpha(client):
        graph = await client.subnets.metagraph(46, commitments=False)
        return graph.neurons[0].total_stake.tao

    async def broken(client):
        raise TypeError("unsupported operand type(s)")

    async def probe(c: BittensorChain):
        with pytest.raises(ChainError, match="UnitMismatchError"):
            await c._call("stake", tao_of_alpha)
        with pytest.raises(ChainError, match="TypeError: unsupported operand"):
            await c._call("probe", broken)
        return await c.block()

    assert run(_chain(node), probe) > 0


@pytest.fixture(scope="module")
def modern_node(tmp_path_factory):
    """A node whose runtime has ``SubtensorModule.SubnetEpochConsensus``, as runtimes newer than spec 461 do."""
    root = tmp_path_factory.mktemp("modern")
    store = SimulatedChainStore(root / "chain.db", block_seconds=BLOCK_SECONDS, create=True)
    store.set_params(46, weights_rate_limit=4, min_allowed_weights=1)
    store.block()
    server = ChainNode(root, store.path, "--epoch-consensus").start()
    yield server, store
    server.stop()


def test_with_epoch_consensus_the_sdks_own_set_weights_runs_and_its_refusals_carry_the_reason(modern_node, wallets):
    server, store = modern_node
    made = {name: wallets(name) for name in ("validator", "miner1", "miner2", "stranger")}
    uids = [
        store.register(made[n].hotkey, made[n].coldkey, stake=4000 if n == "validator" else 0, validator=n == "validator")
        for n in ("validator", "miner1", "miner2")
    ]
    handle = {n: Wallet(name=n, hotkey="default", path=str(wallets.path)) for n in made}
    targets = uids[1:]

    async def flow(c: BittensorChain):
        done = await c.set_weights(targets, [0.75, 0.25], 1000)
        with pytest.raises(WeightsRefused) as too_fast:  # refused by the SDK's preflight, before signing
            await c.set_weights(targets, [0.5, 0.5], 1000)
        return done, too_fast.value, c._direct

    done, too_fast, direct = run(BittensorChain(server.url, 46, wallet=handle["validator"]), flow)
    assert done.success and not direct  # the intent itself, not the direct extrinsic
    assert store.current_weights(46)[uids[0]] == (targets, [65535, 21845])
    assert too_fast.reason == "SettingWeightsTooFast"

    def refusal(name: str) -> str:
        with pytest.raises(WeightsRefused) as refused:
            run(BittensorChain(server.url, 46, wallet=handle[name]), lambda c: c.set_weights(targets, [1, 1], 1000))
        return refused.value.reason

    assert refusal("stranger") == "HotKeyNotRegisteredInSubNet"  # the SDK's preflight
    assert refusal("miner1") == "NeuronNoValidatorPermit"  # the chain, through the SDK's result


def test_status_reads_the_uid_and_the_weights_it_was_given_from_the_node(node, people, tmp_path):
    server, _ = node
    made, uids, wallets = people
    run(_chain(node, wallets["validator"]), lambda c: c.set_weights([uids["miner1"], uids["miner2"]], [0.75, 0.25], 0))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "neurons" / "miner.py"),
            "status",
            "--json",
            "--wallet.name",
            "miner1",
            "--wallet.path",
            str(wallets["miner1"].path),
            "--subtensor.chain_endpoint",
            server.url,
            "--miner.data_dir",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    chain = report["chain"]
    assert chain["registered"] and chain["uid"] == uids["miner1"] and report["epochs"] == []
    assert chain["weights_from_validators"][str(uids["validator"])] == pytest.approx(0.75, abs=1e-4)
