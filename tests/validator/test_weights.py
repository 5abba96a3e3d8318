"""The validator's chain logic: weights from the EMA as the chain requires them, set on the rate limit's
cadence, the metagraph resynced on its own; the start-up registration check of both neurons."""

from __future__ import annotations

import subprocess
import sys

import pytest
from loguru import logger

from resi.chain.local import LocalChain
from resi.chain.registration import registration_problem
from resi.chain.store import SimulatedChainStore
from resi.validation.scoring import chain_weights
from resi.validator.state import ValidatorState
from resi.validator.weights import WeightKeeper, WeightSchedule
from tests.kit import ROOT, FakeClock, run

# --- the vector (pure) ---------------------------------------------------------------------------------------


def test_chain_weights_take_only_the_ema_of_the_hotkey_holding_the_uid():
    ema = {0: ("a", 0.3), 1: ("b", 0.5), 2: ("c", 0.2), 3: ("d", 0.0)}
    uids, weights = chain_weights(ema, {0: "a", 1: "B-new", 2: "c", 3: "d"}, min_allowed=1)
    assert uids == [0, 2] and weights == [0.6, 0.4]  # uid 1 changed hands: nothing from b's EMA
    uids, _ = chain_weights(ema, {0: "a", 2: "c"}, min_allowed=1)
    assert uids == [0, 2]  # never an unregistered uid
    assert chain_weights({0: ("a", 0.0)}, {0: "a"}, min_allowed=1) == ([], [])


def test_chain_weights_pad_to_min_allowed_with_a_floor_that_survives_u16():
    from resi.chain.base import SubnetParams
    from resi.chain.weights import conform

    registered = {u: f"hk{u}" for u in range(6)}
    uids, weights = chain_weights({2: ("hk2", 0.9)}, registered, min_allowed=4)
    assert uids == list(range(6)) and sum(weights) == pytest.approx(1.0)
    assert weights[2] == max(weights) and all(w > 0 for w in weights)
    dests, values = conform(uids, weights, SubnetParams(), own_uid=0)
    assert dests == uids and values[2] == 65535 and all(v >= 1 for v in values)  # none quantized away
    assert chain_weights({2: ("hk2", 0.9)}, {2: "hk2", 3: "x"}, min_allowed=8)[0] == [2, 3]  # at most the subnet


def test_registration_problem_says_what_to_do(wallets):
    from resi.chain.base import Metagraph, Neuron

    graph = Metagraph(46, 10, (Neuron(0, "v", "c", 5000.0, True), Neuron(1, "m", "c", 0.0, False)))
    assert registration_problem(graph, "v", validator=True) is None
    assert registration_problem(graph, "m", validator=False) is None
    line = registration_problem(graph, "x", validator=False, hint="--wallet.name w --wallet.hotkey h")
    assert "`btcli subnets register --netuid 46 --wallet.name w --wallet.hotkey h`" in line and "\n" not in line
    assert "no validator permit" in registration_problem(graph, "m", validator=True)


# --- the keeper, on a chain whose clock the test moves -------------------------------------------------------


def at_block(clock: FakeClock, block: int) -> None:
    """The chain's clock (one-second blocks from 1,000,000) in the middle of ``block``."""
    clock.t = 1_000_000.0 + block + 0.5


class CountingChain:
    """The real simulated chain; it only counts the metagraph reads."""

    def __init__(self, chain: LocalChain):
        self.chain, self.reads = chain, []

    def __getattr__(self, name):
        return getattr(self.chain, name)

    async def metagraph(self):
        graph = await self.chain.metagraph()
        self.reads.append(graph.block)
        return graph


@pytest.fixture
def setup(tmp_path, wallets):
    clock = FakeClock()
    store = SimulatedChainStore(tmp_path / "chain.db", block_seconds=1, create=True, clock=clock)
    people = {n: wallets(n) for n in ("v", "m1", "m2", "m3")}
    for name, who in people.items():
        store.register(who.hotkey, who.coldkey, validator=name == "v")
    store.set_params(46, weights_rate_limit=10, min_allowed_weights=1)
    state = ValidatorState(tmp_path / "state.db")
    chain = CountingChain(LocalChain(store, hotkey=people["v"].hotkey))
    keeper = WeightKeeper(
        chain, state, people["v"].hotkey, 1000, WeightSchedule(resync_blocks=5, margin_blocks=5, retry_blocks=3)
    )
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    yield clock, store, state, chain, keeper, people, lines
    logger.remove(sink)
    state.close()


def _count(state: ValidatorState, epoch_id: str, ema: dict) -> None:
    state.begin(epoch_id, 1, "0x00", [(u, hk) for u, (hk, _) in ema.items()])
    state.commit(epoch_id, [], ema, ([], []))


def _walk(clock: FakeClock, keeper: WeightKeeper, blocks) -> None:
    for block in blocks:
        at_block(clock, block)
        run(keeper.tick())


def test_weights_follow_the_ema_and_are_set_again_on_the_rate_limit_cadence(setup):
    clock, store, state, chain, keeper, p, lines = setup
    _walk(clock, keeper, range(0, 3))
    assert store.weights(46) == [] and "nothing to set" in " ".join(lines)  # no EMA yet
    _count(state, "E1", {1: (p["m1"].hotkey, 0.6), 2: (p["m2"].hotkey, 0.4)})
    _walk(clock, keeper, range(3, 12))
    _count(state, "E2", {1: (p["m1"].hotkey, 0.3), 2: (p["m2"].hotkey, 0.7)})  # a new EMA at block 12
    _walk(clock, keeper, range(12, 60))
    records = store.weights(46)
    # E1 at once (never set before); E2 as soon as the rate limit allows (10 blocks after); then every
    # rate limit + margin blocks with no new epoch at all: the validator never goes quiet
    assert [r["block"] for r in records] == [3, 13, 28, 43, 58]
    assert [r["weights"] for r in records] == [[65535, 43690]] + [[28086, 65535]] * 4
    assert any("included at block 3" in line for line in lines)
    assert state.epoch("E2")["weights_set"]


def test_the_metagraph_is_resynced_on_its_cadence_and_before_weights(setup):
    clock, store, state, chain, keeper, p, lines = setup
    _walk(clock, keeper, range(0, 21))
    assert chain.reads == [0, 5, 10, 15, 20]  # nothing to set: resyncs only
    _count(state, "E1", {1: (p["m1"].hotkey, 1.0)})
    chain.reads.clear()
    _walk(clock, keeper, [21])
    assert chain.reads == [21] and len(store.weights(46)) == 1  # read again right before setting
    store.register(p["v"].hotkey, p["v"].coldkey, stake=0)  # the validator loses its permit
    _walk(clock, keeper, range(22, 40))
    problems = [line for line in lines if "no validator permit" in line]
    assert len(problems) == 1 and "btcli stake add --netuid 46" in problems[0]  # said once, at a resync
    assert len(store.weights(46)) == 1


def test_a_replaced_hotkey_takes_nothing_from_the_old_ema(setup, wallets):
    clock, store, state, chain, keeper, p, lines = setup
    _count(state, "E1", {1: (p["m1"].hotkey, 0.5), 2: (p["m2"].hotkey, 0.5)})
    _walk(clock, keeper, [1])
    assert store.weights(46)[-1]["uids"] == [1, 2]
    newcomer = wallets("newcomer")
    at_block(clock, 5)
    assert store.register(newcomer.hotkey, newcomer.coldkey, uid=2) == 2
    _walk(clock, keeper, range(5, 17))
    last = store.weights(46)[-1]
    # set again at the first block the rate limit allows (11), not on the cadence (16): the resync at
    # block 5 saw uid 2 change hands, and the newcomer must stop receiving the old hotkey's EMA
    assert [r["block"] for r in store.weights(46)] == [1, 11]
    assert last["uids"] == [1] and last["weights"] == [65535]
    incentive = {n.uid: n.incentive for n in store.neurons(46)}
    assert incentive[2] == 0 and incentive[1] == pytest.approx(1.0)


def test_a_newer_version_key_on_chain_is_said_once_and_refusals_are_not_retried_every_block(setup):
    clock, store, state, chain, keeper, p, lines = setup
    store.set_params(46, weights_version_key=2000)
    _count(state, "E1", {1: (p["m1"].hotkey, 1.0)})
    _walk(clock, keeper, range(0, 12))
    assert [line for line in lines if "requires weights version key 2000" in line][:1] and len(
        [line for line in lines if "requires weights version key 2000" in line]
    ) == 1
    refused = [line for line in lines if "IncorrectWeightVersionKey" in line]
    assert len(refused) == 1 and store.weights(46) == []


# --- start-up checks -------------------------------------------------------------------------------------


def _neuron(script: str, chain_file, wallets, name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "neurons" / script),
            "--wallet.name",
            name,
            "--wallet.path",
            str(wallets.path),
            "--subtensor.chain_endpoint",
            f"sim:{chain_file}",
            "--api.url",
            "http://127.0.0.1:9",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_neurons_refuse_to_start_unregistered_with_one_line_that_says_what_to_do(tmp_path, wallets):
    store = SimulatedChainStore(tmp_path / "chain.db", create=True)
    miner, validator = wallets("miner"), wallets("validator")
    store.register(validator.hotkey, validator.coldkey, stake=10)  # registered, no permit
    out = _neuron("miner.py", store.path, wallets, "miner")
    assert out.returncode == 2
    assert f"hotkey {miner.hotkey} is not registered on netuid 46" in out.stderr
    assert "btcli subnets register --netuid 46 --wallet.name miner --wallet.hotkey default" in out.stderr
    out = _neuron("validator.py", store.path, wallets, "validator", "--validator.data_dir", str(tmp_path / "v"))
    assert out.returncode == 2 and "has no validator permit on netuid 46" in out.stderr
    assert "Traceback" not in out.stderr
