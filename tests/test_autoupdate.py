"""``scripts/autoupdate.py`` against a local bare git repository: a new commit on the branch is pulled, checked
and the neuron restarted on it; a commit whose ``--check`` fails is rolled back and the neuron keeps running the
previous one; the next good commit is taken again. With ``--pm2`` the restart goes through pm2."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e import wait_for
from tests.kit import ROOT, alive

SCRIPT = ROOT / "scripts" / "autoupdate.py"

# A neuron in miniature: its start-up check fails when VERSION says so; running, it records what it runs.
APP = """import json, os, sys, time
version = open("VERSION").read().strip()
if "--check" in sys.argv:
    sys.exit(2 if version == "broken" else 0)
with open(os.environ["STARTS"], "a") as out:
    out.write(json.dumps({"pid": os.getpid(), "version": version}) + "\\n")
while True:
    time.sleep(1)
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    ).stdout.strip()


class Repos:
    """A bare 'origin', a developer's clone that pushes to it, and the operator's checkout the updater keeps."""

    def __init__(self, root: Path):
        self.origin, self.dev, self.deploy = root / "origin.git", root / "dev", root / "deploy"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.origin))
        git(root, "clone", "-q", str(self.origin), str(self.dev))
        (self.dev / "app.py").write_text(APP)
        self.release("1")
        git(root, "clone", "-q", str(self.origin), str(self.deploy))

    def release(self, version: str) -> str:
        (self.dev / "VERSION").write_text(version + "\n")
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", f"version {version}")
        git(self.dev, "push", "-q", "origin", "HEAD:main")
        return git(self.dev, "rev-parse", "HEAD")

    def deployed(self) -> str:
        return git(self.deploy, "rev-parse", "HEAD")


def starts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_new_commits_are_pulled_and_restarted_and_a_broken_check_is_rolled_back(tmp_path):
    repos = Repos(tmp_path)
    record, log = tmp_path / "starts.jsonl", tmp_path / "autoupdate.log"
    with open(log, "w") as out:
        updater = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--repo",
                str(repos.deploy),
                "--interval",
                "0.5",
                "--grace",
                "5",
                "--install",
                f"{sys.executable} -c pass",
                "--",
                sys.executable,
                "app.py",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **GIT_ENV, "STARTS": str(record)},
        )
    try:
        first = wait_for(lambda: starts(record), 30, what="the neuron to start")[0]
        assert first["version"] == "1"

        good = repos.release("2")
        second = wait_for(lambda: starts(record)[1:], 60, what="the neuron to restart on version 2")[0]
        assert second["version"] == "2" and second["pid"] != first["pid"]
        assert repos.deployed() == good
        wait_for(lambda: not alive(first["pid"]), 10, interval=0.1, what="the old neuron to be gone")

        repos.release("broken")
        wait_for(lambda: "rolled back to" in log.read_text(), 60, what="the broken update to be rolled back")
        assert repos.deployed() == good and (repos.deploy / "VERSION").read_text().strip() == "2"
        assert len(starts(record)) == 2 and alive(second["pid"])  # still running version 2, never restarted
        assert "check failed (exit code 2)" in log.read_text()

        fixed = repos.release("4")
        third = wait_for(lambda: starts(record)[2:], 60, what="the neuron to restart on version 4")[0]
        assert third["version"] == "4" and repos.deployed() == fixed
    finally:
        updater.send_signal(signal.SIGTERM)
        code = updater.wait(30)
    assert code == 0 and "stopping the neuron" in log.read_text()
    assert not any(alive(s["pid"]) for s in starts(record))


def test_uncommitted_changes_are_never_overwritten(tmp_path):
    repos = Repos(tmp_path)
    (repos.deploy / "VERSION").write_text("an operator's edit\n")
    before = repos.deployed()
    out = tmp_path / "autoupdate.log"
    with open(out, "w") as log:
        updater = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--repo",
                str(repos.deploy),
                "--interval",
                "0.5",
                "--install",
                "true",
                "--",
                sys.executable,
                "app.py",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **GIT_ENV, "STARTS": str(tmp_path / "starts.jsonl")},
        )
    try:
        repos.release("2")
        wait_for(lambda: "uncommitted changes" in out.read_text(), 30, what="the refusal")
        assert repos.deployed() == before
        assert (repos.deploy / "VERSION").read_text() == "an operator's edit\n"
    finally:
        updater.send_signal(signal.SIGTERM)
        updater.wait(30)


def test_with_pm2_the_update_is_checked_then_pm2_restarts_the_process(tmp_path):
    """pm2 itself is not on this machine: a ``pm2`` on PATH records how it was called."""
    repos = Repos(tmp_path)
    calls = tmp_path / "pm2-calls"
    fake = tmp_path / "bin" / "pm2"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "autoupdate.log"
    env = {**os.environ, **GIT_ENV, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    with open(out, "w") as log:
        updater = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--repo",
                str(repos.deploy),
                "--interval",
                "0.5",
                "--install",
                "true",
                "--pm2",
                "resi-miner",
                "--",
                sys.executable,
                "app.py",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        good = repos.release("2")
        wait_for(lambda: calls.exists(), 30, what="pm2 restart")
        assert calls.read_text().split() == ["restart", "resi-miner", "--update-env"]
        assert repos.deployed() == good
        repos.release("broken")
        wait_for(lambda: "rolled back to" in out.read_text(), 30, what="the rollback")
        assert repos.deployed() == good and len(calls.read_text().splitlines()) == 1
    finally:
        updater.send_signal(signal.SIGTERM)
        assert updater.wait(30) == 0
