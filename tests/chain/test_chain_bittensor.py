"""The bittensor adapter, without a live chain: wallets from keyfiles, the SetWeights intent, fast failure."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from resi.chain import ChainError, open_chain
from resi.chain.bittensor_chain import BittensorChain, build_set_weights, is_bittensor_spec
from resi.chain.local import LocalChain
from tests.kit import closed_port, run


def test_specs_pick_the_implementation(tmp_path):
    assert is_bittensor_spec("finney") and is_bittensor_spec("test") and is_bittensor_spec("ws://127.0.0.1:9944")
    assert isinstance(open_chain("finney", 46), BittensorChain)
    assert isinstance(open_chain(f"sim:{tmp_path / 'c.db'}", 46), LocalChain)
    assert isinstance(open_chain(str(tmp_path / "c.db"), 46), LocalChain)


def test_wallet_is_loaded_from_keyfiles(wallets):
    signer = wallets("owner", "validator1")
    chain = open_chain("ws://127.0.0.1:9", 46, wallet=("owner", "validator1", str(wallets.path)))
    assert chain.wallet.hotkey.ss58_address == signer.hotkey
    assert chain.wallet.coldkeypub.ss58_address == signer.coldkey


def test_set_weights_intent_carries_what_the_validator_gives():
    intent = build_set_weights(46, [3, 0, 7], [0.5, 0.2, 0.3], version_key=4)
    assert intent.netuid == 46 and intent.version_key == 4
    assert dict(zip(intent.uids, intent.weights)) == {3: 0.5, 0: 0.2, 7: 0.3}
    assert intent.op == "set_weights"


def test_unreachable_endpoint_fails_fast():
    chain = BittensorChain(f"ws://127.0.0.1:{closed_port()}", 46, connect_timeout=3)
    start = time.monotonic()
    with pytest.raises(ChainError, match="cannot reach subtensor"):
        run(chain.metagraph())
    assert time.monotonic() - start < 5


def test_silent_endpoint_times_out():
    """A port that accepts TCP but never speaks: the handshake would hang without a deadline."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        chain = BittensorChain(f"ws://127.0.0.1:{server.getsockname()[1]}", 46, connect_timeout=3)
        start = time.monotonic()
        with pytest.raises(ChainError):
            run(chain.block())
        assert time.monotonic() - start < 5
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_unknown_network_name_is_a_chain_error():
    with pytest.raises(ChainError, match="Unknown network"):
        run(BittensorChain("not-a-network", 46).block())
