"""When the local network counts as up: once every neuron answers on its ``/healthz`` (its start-up checks done),
not when it was launched. Real processes stand in for the neurons: one that takes a while to start serving, one
that fails before it ever answers."""

from __future__ import annotations

import time

import pytest

from resi.localnet.network import LocalNetwork, NetworkConfig, Participant
from resi.localnet.procs import ManagedProcess
from resi.processes import free_port
from tests.kit import PYTHON

SLOW_START = 1.5


def _neuron(tmp_path, name: str, code: str) -> Participant:
    port = free_port()
    process = ManagedProcess(name, [PYTHON, "-c", code.format(port=port)], tmp_path / f"{name}.log").start()
    return Participant(name, signer=None, uid=0, process=process, monitor_url=f"http://127.0.0.1:{port}")


SERVES_LATE = (
    f"import http.server, time; time.sleep({SLOW_START}); "
    "http.server.HTTPServer(('127.0.0.1', {port}), http.server.BaseHTTPRequestHandler).serve_forever()"
)
FAILS_AT_START = "import sys; print('wallet not registered on netuid 46'); sys.exit(3)"


@pytest.fixture
def net(tmp_path):
    n = LocalNetwork(NetworkConfig(run_dir=tmp_path))
    yield n
    for p in n.participants:
        p.process.stop()


def test_the_network_is_up_once_every_neuron_answers_not_when_launched(net, tmp_path):
    net.participants += [_neuron(tmp_path, "miner1", SERVES_LATE), _neuron(tmp_path, "validator1", SERVES_LATE)]
    launched = time.monotonic()
    net.wait_neurons_up(timeout=60)
    assert time.monotonic() - launched >= SLOW_START
    assert all(p.process.running for p in net.participants)


def test_a_neuron_that_fails_at_start_is_named_with_its_log(net, tmp_path):
    net.participants += [_neuron(tmp_path, "miner1", SERVES_LATE), _neuron(tmp_path, "miner2", FAILS_AT_START)]
    with pytest.raises(RuntimeError) as caught:
        net.wait_neurons_up(timeout=60)
    assert str(caught.value).startswith("miner2 did not come up: process exited with code 3")
    assert "wallet not registered on netuid 46" in str(caught.value)
