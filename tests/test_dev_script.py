"""``scripts/dev.py localnet`` as a newcomer runs it: Ctrl-C (SIGINT) or SIGTERM to the script stops the whole
network gracefully, every process says it stopped, and nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kit import ROOT

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_dev_localnet_stops_gracefully_and_leaves_nothing_behind(tmp_path, sig):
    run_dir = tmp_path / "run"  # given relative to where the command runs, as a user types it
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "dev.py"),
            "localnet",
            "--run-dir",
            "run",
            "--miners",
            "1",
            "--validators",
            "1",
            "--epoch-minutes",
            "0.5",
            "--scale",
            "0.02",
            "--block-seconds",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "network.json").exists():  # written once every process is started
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        assert _processes_mentioning(str(run_dir))  # the neurons run with the run folder in their flags
        logs = [run_dir / "logs" / f"{name}.log" for name in ("miner1", "validator1")]
        while not all(log.exists() and "logging to" in log.read_text() for log in logs):  # past their checks
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert f"passing {signal.Signals(sig).name} on" in out
    assert "stopping every process: asked to stop (Ctrl-C or SIGTERM)" in out
    for name in ("miner1", "validator1", "api", "site"):
        assert f"{name}: stopped when asked, in " in out, "\n".join(x[40:] for x in out.splitlines() if "stop" in x)
    assert "exit code" not in out and "run verdict: no epoch was counted" in out
    assert (run_dir / ".gitignore").read_text().splitlines()[-1] == "*"  # the run stays out of git
    for name in ("miner1", "validator1"):  # its loop's stop, or (signalled just before the loop began) its start's
        log = (run_dir / "logs" / f"{name}.log").read_text()
        assert "stopping: finishing the work in flight" in log or "stopped during start-up" in log, log[-2000:]
    assert _processes_mentioning(str(run_dir)) == []
