"""The README's local-network command starts, and Ctrl-C stops it with nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e import wait_for
from tests.helpers import PYTHON

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is not alive
        return "Z" not in open(f"/proc/{pid}/stat").read().split()[2]
    except OSError:
        return True


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.split("\n")[1:]
    table = [tuple(map(int, line.split())) for line in out if line.strip()]
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in table if pp == parent]
        found += kids
        frontier += kids
    return found


def test_localnet_starts_and_ctrl_c_stops_everything(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([PYTHON, "-m", "resi.localnet", "--run-dir", str(run_dir), "--miners", "1",
                             "--validators", "1", "--epoch-minutes", "1", "--scale", "0.02"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (run_dir / "network.json").exists(), 120, what="the network to come up")
        description = json.loads((run_dir / "network.json").read_text())
        assert {p["role"] for p in description["participants"]} == {"miner", "validator"}
        time.sleep(3)
        children = _children(proc.pid)
        assert len(children) >= 5  # weed, api, site, miner, validator (and their helpers)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
        output = proc.stdout.read()
        assert code == 0, output[-2000:]
        assert "stopping every process" in output
        time.sleep(1)
        assert [p for p in children if _alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
