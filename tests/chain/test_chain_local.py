"""The simulated chain shared by several processes through one SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest
from bittensor.sp_core import Keypair

from resi.chain import open_chain
from resi.chain.base import ChainError, WeightsRefused
from resi.chain.rules import reveal_hash
from resi.chain.store import SimulatedChainStore
from tests.kit import PYTHON, run


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "resi.chain.local", *args], capture_output=True, text=True, timeout=60)


def test_another_process_registers_and_this_one_sees_it(tmp_path, wallets):
    chain_file = tmp_path / "chain.db"
    miner, validator = wallets("miner"), wallets("validator")
    out = _cli(
        "register", "--chain", str(chain_file), "--hotkey", miner.hotkey, "--coldkey", miner.coldkey, "--block-seconds", "0.2"
    )
    assert out.returncode == 0, out.stderr
    out = _cli(
        "register",
        "--chain",
        f"sim:{chain_file}",
        "--hotkey",
        validator.hotkey,
        "--coldkey",
        validator.coldkey,
        "--stake",
        "1000",
        "--validator",
    )
    assert out.returncode == 0, out.stderr

    chain = open_chain(str(chain_file), 46)
    graph = run(chain.metagraph())
    assert [(n.uid, n.hotkey, n.validator_permit) for n in graph.neurons] == [
        (0, miner.hotkey, False),
        (1, validator.hotkey, True),
    ]
    assert graph.by_hotkey(validator.hotkey).stake == 1000
    assert run(chain.is_registered(miner.hotkey)) and not run(chain.is_registered(wallets("x").hotkey))


def test_blocks_advance_and_hashes_are_stable(tmp_path):
    store = SimulatedChainStore(tmp_path / "c.db", block_seconds=0.1, create=True)
    store.block()
    chain = open_chain(str(store.path), 46)
    first = run(chain.block())
    time.sleep(0.35)
    second = run(chain.block())
    assert second >= first + 3
    assert run(chain.block_hash(second)) == SimulatedChainStore(store.path).block_hash(second)
    assert run(chain.block_hash(first)) != run(chain.block_hash(second))
    with pytest.raises(ChainError, match="does not exist yet"):
        run(chain.block_hash(second + 1000))


def test_weights_refused_without_permit_and_recorded_with_it(tmp_path, wallets):
    chain_file = tmp_path / "chain.db"
    miner, validator = wallets("miner"), wallets("validator")
    assert _cli("register", "--chain", str(chain_file), "--hotkey", miner.hotkey, "--coldkey", miner.coldkey).returncode == 0
    assert (
        _cli(
            "register",
            "--chain",
            str(chain_file),
            "--hotkey",
            validator.hotkey,
            "--coldkey",
            validator.coldkey,
            "--validator",
            "--stake",
            "500",
        ).returncode
        == 0
    )

    as_miner = open_chain(str(chain_file), 46, hotkey=miner.hotkey)
    with pytest.raises(WeightsRefused) as refused:
        run(as_miner.set_weights([0, 1], [0.5, 0.5], 1))
    assert refused.value.reason == "NeuronNoValidatorPermit"

    as_validator = open_chain(str(chain_file), 46, hotkey=validator.hotkey)
    done = run(as_validator.set_weights([0, 1], [0.75, 0.25], 1000))
    assert done.success and done.block is not None

    records = SimulatedChainStore(chain_file).weights(46)
    assert [(r["hotkey"], r["uids"], r["weights"]) for r in records] == [(validator.hotkey, [0, 1], [65535, 21845])]
    graph = run(as_validator.metagraph())
    assert graph.by_hotkey(validator.hotkey).last_update == done.block
    assert graph.by_hotkey(miner.hotkey).incentive == pytest.approx(0.75, abs=1e-6)
    shown = _cli("show", "--chain", str(chain_file))
    assert shown.returncode == 0 and "0:65535, 1:21845" in shown.stdout and validator.hotkey in shown.stdout


@pytest.fixture
def subnet(tmp_path, wallets):
    """A chain whose head does not move (1000-second blocks): each rule is tested at the blocks it names.
    uid 0: a validator (permit), uids 1..3: miners."""
    store = SimulatedChainStore(tmp_path / "c.db", block_seconds=1000, create=True)
    people = [wallets(f"n{i}") for i in range(4)]
    for i, who in enumerate(people):
        store.register(who.hotkey, who.coldkey, stake=5000 if i == 0 else 0, validator=i == 0)
    store.set_params(46, weights_rate_limit=10, weights_version_key=7, min_allowed_weights=3, max_weights_limit=0.5)
    return store, [p.hotkey for p in people]


def _refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(WeightsRefused) as refused:
        fn(*args, **kwargs)
    return refused.value.reason


def test_set_weights_applies_subtensors_rules_in_its_order(subnet):
    store, (v, m1, m2, m3) = subnet
    ok = ([1, 2, 3], [300, 200, 100])
    assert _refusal(store.set_weights, 46, v, [1, 2], [1], 7, block=100) == "WeightVecNotEqualSize"
    assert _refusal(store.set_weights, 46, v, [0, 1, 2, 3, 1], [1] * 5, 7, block=100) == "UidsLengthExceedUidsInSubNet"
    assert _refusal(store.set_weights, 46, "5" + "x" * 47, *ok, 7, block=100) == "HotKeyNotRegisteredInSubNet"
    assert _refusal(store.set_weights, 46, v, *ok, 6, block=100) == "IncorrectWeightVersionKey"
    assert _refusal(store.set_weights, 46, m1, *ok, 7, block=100) == "NeuronNoValidatorPermit"
    assert store.set_weights(46, m1, [1], [5], 7, block=100) == 100  # a self weight needs no permit
    assert _refusal(store.set_weights, 46, v, [1, 1, 2], [1, 1, 1], 7, block=100) == "DuplicateUids"
    assert _refusal(store.set_weights, 46, v, [1, 2, 9], [1, 1, 1], 7, block=100) == "UidVecContainInvalidOne"
    assert _refusal(store.set_weights, 46, v, [1, 2], [1, 1], 7, block=100) == "WeightVecLengthIsLow"
    assert _refusal(store.set_weights, 46, v, [1, 2, 3], [900, 50, 50], 7, block=100) == "MaxWeightExceeded"
    assert store.set_weights(46, v, *ok, 7, block=100) == 100
    assert store.current_weights(46)[0] == ([1, 2, 3], [65535, 43690, 21845])  # max-upscaled u16
    assert _refusal(store.set_weights, 46, v, *ok, 7, block=109) == "SettingWeightsTooFast"
    assert store.set_weights(46, v, *ok, 8, block=110) == 110  # a newer version key is fine
    store.set_params(46, commit_reveal=True)
    assert _refusal(store.set_weights, 46, v, *ok, 7, block=200) == "CommitRevealEnabled"


def test_validator_permits_go_to_the_largest_stakes(subnet, wallets):
    store, (v, *_) = subnet
    store.set_params(46, max_validators=2)
    big, small = wallets("big"), wallets("small")
    store.register(big.hotkey, big.coldkey, stake=9000)
    store.register(small.hotkey, small.coldkey, stake=1500)
    permits = {n.hotkey: n.validator_permit for n in store.neurons(46)}
    assert permits[big.hotkey] and permits[v] and not permits[small.hotkey]  # 9000 and 5000 beat 1500
    lean = wallets("lean")
    store.register(lean.hotkey, lean.coldkey, stake=999)
    store.set_params(46, max_validators=64)
    assert not next(n for n in store.neurons(46) if n.hotkey == lean.hotkey).validator_permit  # under the minimum


def test_a_full_subnet_replaces_the_lowest_emission_uid_past_immunity(tmp_path, wallets):
    store = SimulatedChainStore(tmp_path / "c.db", block_seconds=0.05, create=True)
    store.set_params(46, max_uids=3, immunity_period=1_000_000, weights_rate_limit=0, min_allowed_weights=1)
    v, a, b = wallets("v"), wallets("a"), wallets("b")
    for who in (v, a, b):
        store.register(who.hotkey, who.coldkey, validator=who is v)
    late = wallets("late")
    with pytest.raises(ChainError, match="still immune"):
        store.register(late.hotkey, late.coldkey)
    store.set_weights(46, v.hotkey, [1, 2], [1, 3], 0)  # uid 1 earns less than uid 2
    store.set_params(46, immunity_period=0)
    time.sleep(0.1)
    assert store.register(late.hotkey, late.coldkey) == 1
    graph = {n.uid: n for n in store.neurons(46)}
    assert graph[1].hotkey == late.hotkey and graph[1].last_update == 0
    # the validator's weight for uid 1 was set before the newcomer registered: outdated, it earns nothing
    assert graph[1].incentive == 0 and graph[2].incentive == pytest.approx(1.0)


def test_hash_commit_reveal_follows_the_epochs(subnet):
    store, (v, *_) = subnet
    store.set_params(46, commit_reveal=True, tempo=9, reveal_period_epochs=1)  # epochs of 10 blocks
    pub = bytes(Keypair(ss58_address=v).public_key)
    uids, values, salt = [1, 2, 3], [300, 200, 100], [7, 7, 7]
    digest = reveal_hash(pub, 46, uids, values, salt, 7)
    assert _refusal(store.reveal, 46, v, pub, uids, values, salt, 7, block=20) == "NoWeightsCommitFound"
    commit_block = 23  # epoch (23 + 47) // 10 = 7
    assert store.commit(46, v, digest, block=commit_block) == commit_block
    assert store.neurons(46)[0].last_update == commit_block  # a commit is the uid's update
    assert _refusal(store.commit, 46, v, digest, block=commit_block + 5) == "CommittingWeightsTooFast"
    assert _refusal(store.reveal, 46, v, pub, uids, values, salt, 7, block=26) == "RevealTooEarly"
    assert _refusal(store.reveal, 46, v, pub, uids, values, [1, 1, 1], 7, block=33) == "InvalidRevealCommitHashNotMatch"
    assert store.reveal(46, v, pub, uids, values, salt, 7, block=33) == 33  # epoch 8
    assert store.current_weights(46)[0] == (uids, [65535, 43690, 21845])
    assert store.neurons(46)[0].last_update == commit_block
    assert _refusal(store.reveal, 46, v, pub, uids, values, salt, 7, block=34) == "NoWeightsCommitFound"
    store.commit(46, v, digest, block=40)  # epoch 8: due in epoch 9, expired after it
    assert _refusal(store.reveal, 46, v, pub, uids, values, salt, 7, block=63) == "ExpiredWeightCommit"


def test_block_hashes_cannot_be_read_ahead_from_the_file(tmp_path):
    """A hash is made, with fresh randomness, only once its block exists: a copy of the chain file taken
    before then says nothing about it."""
    store = SimulatedChainStore(tmp_path / "c.db", block_seconds=0.2, create=True)
    head = store.block()
    store.block_hash(head)
    copy = tmp_path / "copy.db"
    copy.write_bytes(store.path.read_bytes())
    future = head + 3
    assert SimulatedChainStore(copy).block_number_of("0x" + "00" * 32) is None
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT COUNT(*) FROM blocks WHERE number >= ?", (future,)).fetchone()[0] == 0
    time.sleep(0.8)
    real = store.block_hash(future)
    assert SimulatedChainStore(copy).block_hash(future) != real  # the copy rolls its own dice
    assert store.block_hash(future) == real  # and the chain keeps its own


def test_register_replacing_a_uid_changes_its_hotkey(tmp_path, wallets):
    store = SimulatedChainStore(tmp_path / "c.db", create=True)
    a, b = wallets("a"), wallets("b")
    assert store.register(a.hotkey, a.coldkey) == 0
    assert store.register(b.hotkey, b.coldkey, uid=0) == 0
    assert [n.hotkey for n in store.neurons()] == [b.hotkey]


def test_a_missing_chain_file_is_an_error_not_a_new_chain(tmp_path):
    chain = open_chain(str(tmp_path / "typo.db"), 46)
    with pytest.raises(ChainError, match="no simulated chain"):
        run(chain.metagraph())
    assert not (tmp_path / "typo.db").exists()


def test_cli_rejects_a_bad_address(tmp_path):
    out = _cli("register", "--chain", str(tmp_path / "c.db"), "--hotkey", "nope", "--coldkey", "nope")
    assert out.returncode == 2 and "not a valid ss58" in out.stderr
