#!/usr/bin/env python3
"""Keep a miner or a validator on the newest commit of its branch.

    python scripts/autoupdate.py [--interval 300] -- .venv/bin/python neurons/validator.py --wallet.name V ...
    python scripts/autoupdate.py --pm2 resi-validator -- .venv/bin/python neurons/validator.py --wallet.name V ...

Every ``--interval`` seconds it fetches the tracked branch. When the branch moved: fast-forward to it,
reinstall (``--install``, by default ``pip install -e .`` with this interpreter), run the neuron's own start-up
checks from the new code (the neuron command with ``--check``: keys, chain, registration, API, clock), and
restart the neuron. If any of these fails, the checkout goes back to the commit it was on (reinstalled), the
running neuron is left alone, and that remote commit is not tried again; the next commit is.

Without ``--pm2`` the neuron runs as this script's child (pm2 runs this script: ``pm2/autoupdate.config.js``);
when the neuron exits by itself, this script exits with its code, so pm2's restart policy applies to both. With
``--pm2 NAME`` the neuron is pm2's process NAME and an update ends in ``pm2 restart NAME``.

A checkout with uncommitted changes to tracked files, or with commits the remote lacks, is never touched
(said once per remote commit). Changes to this script itself take effect when it is restarted.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def say(line: str) -> None:
    print(f"[autoupdate] {time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


def git(repo: Path, *args: str) -> str:
    """A git command's output (CalledProcessError with its message when it fails)."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def run_step(name: str, cmd: list[str], cwd: Path, timeout: float) -> bool:
    """Run one step of an update; False (said with the end of its output) when it fails."""
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"{name} failed: {exc}")
        return False
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-10:])
        say(f"{name} failed (exit code {out.returncode}):\n{tail}")
        return False
    return True


class Neuron:
    """The neuron this script runs as its child (restart: SIGTERM, ``grace`` seconds, SIGKILL, start)."""

    def __init__(self, cmd: list[str], cwd: Path, grace: float):
        self.cmd, self.cwd, self.grace = cmd, cwd, grace
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd)
        say(f"neuron started (pid {self.proc.pid}): {shlex.join(self.cmd)}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(self.grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> bool:
        code = self.stop()
        say(f"neuron stopped (exit code {code}) for the update")
        self.start()
        return True

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


class Pm2:
    """The neuron is pm2's process ``name``."""

    def __init__(self, name: str, cwd: Path):
        self.name, self.cwd = name, cwd

    def restart(self) -> bool:
        return run_step(f"pm2 restart {self.name}", ["pm2", "restart", self.name, "--update-env"], self.cwd, 120)

    def exited(self) -> None:
        return None


class Updater:
    def __init__(
        self,
        repo: Path,
        remote: str,
        branch: str,
        install: list[str],
        check: list[str],
        neuron: Neuron | Pm2,
        step_timeout: float = 900,
    ):
        self.repo, self.remote, self.branch = repo, remote, branch
        self.install, self.check, self.neuron = install, check, neuron
        self.step_timeout = step_timeout
        self.refused: str | None = None
        """The remote commit whose update failed (or that could not be applied): not tried again."""

    def poll(self) -> None:
        """One look at the remote; update when it moved."""
        try:
            git(self.repo, "fetch", "--quiet", self.remote, self.branch)
            target, current = git(self.repo, "rev-parse", "FETCH_HEAD"), git(self.repo, "rev-parse", "HEAD")
        except subprocess.CalledProcessError as exc:
            say(f"cannot fetch {self.remote} {self.branch}: {exc.stderr.strip()}; trying again later")
            return
        if target == current or target == self.refused:
            return
        if git(self.repo, "status", "--porcelain", "--untracked-files=no"):
            self.refused = target
            say(f"{self.repo} has uncommitted changes: not updating to {target[:10]} (commit or stash them)")
            return
        if subprocess.run(["git", "-C", str(self.repo), "merge-base", "--is-ancestor", current, target]).returncode:
            self.refused = target
            say(f"{self.repo} has commits {self.remote}/{self.branch} lacks: not updating to {target[:10]}")
            return
        self.update(current, target)

    def update(self, current: str, target: str) -> bool:
        say(f"{self.remote}/{self.branch} moved: {current[:10]} -> {target[:10]}; updating")
        try:
            git(self.repo, "merge", "--ff-only", "--quiet", target)
        except subprocess.CalledProcessError as exc:
            self.refused = target
            say(f"cannot fast-forward to {target[:10]}: {exc.stderr.strip()}")
            return False
        for name, cmd in (("install", self.install), ("check", self.check)):
            if not run_step(name, cmd, self.repo, self.step_timeout):
                self.rollback(current, target, name)
                return False
        if not self.neuron.restart():
            self.rollback(current, target, "restart")
            return False
        say(f"running {target[:10]}")
        return True

    def rollback(self, previous: str, target: str, step: str) -> None:
        self.refused = target
        git(self.repo, "reset", "--hard", "--quiet", previous)
        reinstalled = run_step("install (rollback)", self.install, self.repo, self.step_timeout)
        say(
            f"update to {target[:10]} failed at its {step}: rolled back to {previous[:10]}"
            + ("" if reinstalled else " (its reinstall failed too: look at the lines above)")
            + "; the neuron keeps running it"
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/autoupdate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repo", type=Path, default=ROOT, help="the checkout to keep up to date (default: this one)")
    p.add_argument("--remote", default="origin", help="git remote to follow")
    p.add_argument("--branch", default=None, help="branch to follow (default: the checkout's current branch)")
    p.add_argument("--interval", type=float, default=300.0, help="seconds between two looks at the remote")
    p.add_argument(
        "--install", default=None, help="command that installs the new code (default: this interpreter's pip install -e REPO)"
    )
    p.add_argument(
        "--check", default=None, help="command that must pass before the restart (default: the neuron command with --check)"
    )
    p.add_argument(
        "--pm2",
        metavar="NAME",
        default=None,
        help="the neuron runs under pm2 as NAME: restart it with pm2 instead of running it here",
    )
    p.add_argument("--grace", type=float, default=30.0, help="seconds a stopping neuron gets before SIGKILL")
    p.add_argument("neuron", nargs=argparse.REMAINDER, help="-- then the neuron's command")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.neuron[1:] if args.neuron[:1] == ["--"] else args.neuron
    if not command:
        print("give the neuron's command after --, e.g. -- .venv/bin/python neurons/miner.py --wallet.name M", file=sys.stderr)
        return 2
    repo = args.repo.resolve()
    try:
        branch = args.branch or git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"{repo} is not a git checkout ({exc}): give --repo", file=sys.stderr)
        return 2
    install = shlex.split(args.install) if args.install else [sys.executable, "-m", "pip", "install", "-q", "-e", str(repo)]
    check = shlex.split(args.check) if args.check else [*command, "--check"]
    neuron = Pm2(args.pm2, repo) if args.pm2 else Neuron(command, repo, args.grace)
    updater = Updater(repo, args.remote, branch, install, check, neuron)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    say(
        f"following {args.remote}/{branch} in {repo} every {args.interval:g} s"
        + (f"; the neuron is pm2's {args.pm2}" if args.pm2 else "")
    )
    if isinstance(neuron, Neuron):
        neuron.start()
    next_look = time.monotonic()
    while not stopping:
        code = neuron.exited()
        if code is not None:
            say(f"the neuron exited by itself (exit code {code}); exiting with it")
            return code
        if time.monotonic() >= next_look:
            updater.poll()
            next_look = time.monotonic() + args.interval
        time.sleep(0.5)
    if isinstance(neuron, Neuron):
        say(f"stopping (signal {stopping[0]}): stopping the neuron")
        neuron.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
