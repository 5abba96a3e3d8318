"""The simulated chain shared by several processes through one SQLite file."""

from __future__ import annotations

import subprocess
import time

import pytest

from resi.chain import open_chain
from resi.chain.base import ChainError
from resi.chain.local import SimulatedChainStore
from tests.helpers import PYTHON, run


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "resi.chain.local", *args], capture_output=True, text=True, timeout=60)


def test_another_process_registers_and_this_one_sees_it(tmp_path, wallets):
    chain_file = tmp_path / "chain.db"
    miner, validator = wallets("miner"), wallets("validator")
    out = _cli("register", "--chain", str(chain_file), "--hotkey", miner.hotkey, "--coldkey", miner.coldkey,
               "--block-seconds", "0.2")
    assert out.returncode == 0, out.stderr
    out = _cli("register", "--chain", f"sim:{chain_file}", "--hotkey", validator.hotkey, "--coldkey",
               validator.coldkey, "--stake", "1000", "--validator")
    assert out.returncode == 0, out.stderr

    chain = open_chain(str(chain_file), 46)
    graph = run(chain.metagraph())
    assert [(n.uid, n.hotkey, n.validator_permit) for n in graph.neurons] == [
        (0, miner.hotkey, False), (1, validator.hotkey, True)]
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
    assert _cli("register", "--chain", str(chain_file), "--hotkey", validator.hotkey, "--coldkey",
                validator.coldkey, "--validator", "--stake", "500").returncode == 0

    as_miner = open_chain(str(chain_file), 46, hotkey=miner.hotkey)
    refused = run(as_miner.set_weights([0, 1], [0.5, 0.5], 1))
    assert not refused.success and "no validator permit" in refused.message

    as_validator = open_chain(str(chain_file), 46, hotkey=validator.hotkey)
    done = run(as_validator.set_weights([0, 1], [0.75, 0.25], 1))
    assert done.success and done.block is not None

    records = SimulatedChainStore(chain_file).weights(46)
    assert [(r["hotkey"], r["uids"], r["weights"]) for r in records] == [(validator.hotkey, [0, 1], [0.75, 0.25])]
    shown = _cli("show", "--chain", str(chain_file))
    assert shown.returncode == 0 and "0:0.7500, 1:0.2500" in shown.stdout and validator.hotkey in shown.stdout


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
