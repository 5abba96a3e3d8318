"""A neuron whose loop is blocked (stuck in blocking code: nothing else in its event loop runs) says so on
``/healthz`` (503) and ends itself with exit code 3 after ``--watchdog.exit_seconds``, so that pm2 restarts it.
The neuron is the real one, past its real start-up checks; only its loop is replaced by one that blocks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from resi.monitor.watchdog import STALLED_EXIT
from resi.processes import free_port
from tests.e2e import wait_for
from tests.kit import ROOT
from tests.servers import NeuronWorld

pytestmark = pytest.mark.slow

BLOCKED = """
import sys, time
import {module} as loop

async def blocked(self, stop):
    self.heartbeat.beat("about to block")
    time.sleep(3600)  # blocking code in the event loop: no await, no progress

loop.{cls}.run = blocked
from {cli} import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory, local_s3):
    w = NeuronWorld(tmp_path_factory.mktemp("watchdog"), local_s3)
    yield w
    w.server.stop()


def health(url: str) -> tuple[int | None, dict]:
    """/healthz's status and body; (None, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None, {}


@pytest.mark.parametrize("role", ["miner", "validator"])
def test_a_blocked_loop_turns_healthz_503_and_exits_3(world, role, tmp_path):
    module, cls, cli = (
        ("resi.miner.loop", "Miner", "resi.miner.cli")
        if role == "miner"
        else ("resi.validator.loop", "Validator", "resi.validator.cli")
    )
    port = free_port()
    wallet = "miner" if role == "miner" else "validator"
    log = tmp_path / "neuron.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                BLOCKED.format(module=module, cls=cls, cli=cli),
                "--wallet.name",
                wallet,
                "--wallet.path",
                str(world.wallets),
                "--subtensor.chain_endpoint",
                f"sim:{world.chain.path}",
                "--api.url",
                world.server.url,
                f"--{role}.data_dir",
                str(tmp_path / "data"),
                "--metrics.port",
                str(port),
                "--watchdog.stall_seconds",
                "2",
                "--watchdog.exit_seconds",
                "8",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_for(
            lambda: health(url)[0] is not None or proc.poll() is not None, 120, interval=0.2, what="the monitoring port to answer"
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        wait_for(lambda: health(url)[0] == 503, 30, interval=0.2, what="/healthz to report the stall")
        with urllib.request.urlopen(url.replace("/healthz", "/metrics"), timeout=2) as resp:
            assert resp.status == 200  # the endpoint still answers while the loop is stuck
        status, detail = health(url)
        assert status == 503 and detail["status"] == "stalled" and detail["last_progress"] == "about to block"
        started = time.monotonic()
        code = proc.wait(60)
        assert code == STALLED_EXIT, log.read_text()[-3000:]
        assert time.monotonic() - started < 60
        assert "watchdog: no progress for" in log.read_text() and "so that pm2 restarts it" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
