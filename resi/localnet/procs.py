"""Child processes of a local network (and of tests): started in their own process group, logging to a
file, killed by the kernel if their parent dies, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from resi.processes import die_with_parent, wait_http


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,
            )
        return self

    @property
    def running(self) -> bool:
        """Whether it runs; the first look that finds it ended notes when (``exited_at``)."""
        alive = self.proc is not None and self.proc.poll() is None
        if not alive and self.proc is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return alive

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    asked_at: float | None = field(default=None, repr=False)
    """When it was asked to stop (monotonic), if it was."""
    exited_at: float | None = field(default=None, repr=False)
    """When it was first seen ended (monotonic)."""
    how: str = "not started"
    """How it ended, in words: asked to stop and did (in how long), killed after the grace, or exited by itself."""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.running:
            if sig in (signal.SIGTERM, signal.SIGINT) and self.asked_at is None:
                self.asked_at = time.monotonic()
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, as far as the process can tell)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def stop(self, grace: float = 10.0, signalled: bool = False) -> int | None:
        """SIGTERM (unless ``signalled`` already: a second one could land after the process restored the default
        handler on its way out), then SIGKILL after ``grace`` seconds; the exit code (None if never started).
        ``how`` says which happened."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None and self.asked_at is None:
            self.how = f"had exited by itself (exit code {self.proc.returncode})"
            return self.proc.returncode
        try:
            if not signalled or self.asked_at is None:
                self.signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait_all([self], max(0.0, (self.asked_at or time.monotonic()) + grace - time.monotonic())):
            self.kill()
            self.how = f"killed: still running {grace:g} s after it was asked to stop"
            return self.proc.returncode
        code = self.proc.wait()
        took = (self.exited_at or time.monotonic()) - (self.asked_at or time.monotonic())
        by_signal = "" if code in (0, -signal.SIGTERM, -signal.SIGINT) else f" (exit code {code})"
        self.how = f"stopped when asked, in {took:.1f} s{by_signal}"
        return code

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Wait until ``url`` answers; RuntimeError with the end of the process's log if it does not (or the
        process exits first)."""
        try:
            wait_http(url, timeout, self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_all(processes: list[ManagedProcess], seconds: float) -> bool:
    """Wait up to ``seconds`` for every one of ``processes`` to end, noting when each did; whether all did."""
    end = time.monotonic() + seconds
    while any([p.running for p in processes]):  # a list: every process is looked at on every round
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
