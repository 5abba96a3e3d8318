"""The README's local-network command starts, and Ctrl-C stops it with nothing left behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e import wait_for
from tests.kit import PYTHON, alive

pytestmark = pytest.mark.slow


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


def test_localnet_starts_every_link_answers_and_ctrl_c_stops_everything(tmp_path):
    """Every address the start-up output gives answers (none 404); Ctrl-C in the first seconds says why every
    process stopped, in words, and that no epoch was counted."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "resi.localnet",
            "--run-dir",
            str(run_dir),
            "--miners",
            "1",
            "--validators",
            "1",
            "--epoch-minutes",
            "1",
            "--scale",
            "0.02",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Ctrl-C stops everything" in line for line in lines), 120, what="the network to come up")
        description = json.loads((run_dir / "network.json").read_text())
        assert {p["role"] for p in description["participants"]} == {"miner", "validator"}
        links = sorted({u.rstrip(".") for u in re.findall(r"http://127\.0\.0\.1:\d+[^\s,;)]*", "".join(lines))})
        assert len(links) >= 5, lines  # S3, the site, the API, the page and its health (at least)
        for link in links:
            try:
                with urllib.request.urlopen(link, timeout=10) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code  # S3 answers its root 403 (no anonymous listing): an answer, not a dead link
            assert status != 404 and status < 500, (link, status)
        children = _children(proc.pid)
        assert len(children) >= 5  # weed, api, site, miner, validator (and their helpers)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
        reader.join(10)
        output = "".join(lines)
        assert code == 0, output[-2000:]
        assert "stopping every process: asked to stop (Ctrl-C or SIGTERM)" in output
        for name in ("miner1", "validator1", "api", "site"):
            assert f"{name}: stopped when asked, in " in output, output[-3000:]
        assert "exit code" not in output and "run verdict: no epoch was counted" in output
        time.sleep(1)
        assert [p for p in children if alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
