#!/usr/bin/env python3
"""Set up and run this project on a machine that has only Python 3.10+.

    python3 scripts/dev.py localnet [flags]   start the local network (SeaweedFS, chain, API, site, neurons)
    python3 scripts/dev.py test [pytest args] run the test suite
    python3 scripts/dev.py test --fast        everything but the tests marked slow (whole local networks)

``test`` runs the test files side by side (3 at a time; RESI_TEST_WORKERS=1 runs them one after another).

Ctrl-C (or SIGTERM to this script) is passed on, and the local network stops gracefully: every process
finishes its work in flight and says so; nothing is left running.

Each command first makes ``.venv`` (if missing or older than the requirements) and installs the project
into it with ``pip install -e .[test]``, and caches the subtensor runtime metadata the local chain node
serves (``python -m resi.chain.runtime``: once, from PyPI); then it runs inside it. Nothing else is installed
outside ``.venv``, except for ``test`` run as root on Debian: Debian's ``chromium`` (apt), for the status page's
browser test (elsewhere that test skips and says why).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".resi-installed"
INPUTS = [
    "setup.py",
    "pyproject.toml",
    "requirements.txt",
    "requirements-localnet.txt",
    "requirements-data.txt",
    "requirements-test.txt",
]


def _python() -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / "python"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    if sys.version_info < (3, 10):  # noqa: UP036 - this script runs on whatever python3 a machine has
        sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}")
    python = _python()
    if not python.exists():
        print(f"[dev] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not STAMP.exists() or STAMP.read_text() != _fingerprint():
        print(
            "[dev] installing the project and its dependencies into .venv (a minute or two the first time; pip's lines follow)",
            flush=True,
        )
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--progress-bar", "off", "-e", f"{ROOT}[test]"], check=True)
        STAMP.write_text(_fingerprint())
    # The local chain node serves the subtensor runtime's metadata, fetched once from PyPI into a cache.
    if subprocess.call([str(python), "-m", "resi.chain.runtime"], cwd=ROOT) != 0:
        print(
            "[dev] warning: the subtensor runtime metadata is not cached; the local chain node cannot start",
            file=sys.stderr,
            flush=True,
        )
    return python


BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def ensure_browser() -> None:
    """Headless Chromium for the page test: Debian's package, installed when this runs as root with apt."""
    if any(shutil.which(name) for name in BROWSERS):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(
            "[dev] chromium is not installed: the status page's browser test will skip (install Debian's "
            "chromium: sudo apt-get install chromium)",
            flush=True,
        )
        return
    print("[dev] installing Debian's chromium for the status page's browser test (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    ok = (
        subprocess.call(["apt-get", "update", "-qq"], env=env) == 0
        and subprocess.call(["apt-get", "install", "-y", "-qq", "chromium"], env=env, stdout=subprocess.DEVNULL) == 0
    )
    if not ok:
        print("[dev] warning: chromium could not be installed; the browser test will skip", flush=True)


def run(cmd: list[str]) -> int:
    """Run ``cmd`` to its end. SIGINT and SIGTERM to this script are passed on to it, once, and it is waited
    for (the local network stops gracefully); if this script is killed outright, it gets SIGTERM."""

    def detach() -> None:  # its own process group: a terminal's Ctrl-C reaches it only through this script
        os.setsid()
        if sys.platform.startswith("linux"):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    child = subprocess.Popen(cmd, preexec_fn=detach)

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            print(f"[dev] passing {signal.Signals(signum).name} on; waiting for a graceful stop", flush=True)
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()


COMMANDS = ("localnet", "test")
WORKERS = 3
"""Test files run side by side (``RESI_TEST_WORKERS`` overrides; 1: one after the other). Most of the suite waits
on real processes (servers, neurons, epochs of seconds), so more files than cores run well; a file's tests stay
together in one worker (its servers and networks are module fixtures)."""


def side_by_side(args: list[str]) -> list[str]:
    """pytest-xdist's flags for ``WORKERS`` workers, one test file each at a time, unless ``args`` choose
    their own (``-n``, ``-p no:xdist``) or ask for help."""
    workers = int(os.environ.get("RESI_TEST_WORKERS", WORKERS))
    if (
        workers <= 1
        or any(a == "-n" or a.startswith(("-n", "--numprocesses", "-h", "--help")) for a in args)
        or "no:xdist" in args
    ):
        return []
    return ["-n", str(workers), "--dist", "loadfile"]


def from_here(args: list[str], flag: str) -> list[str]:
    """``args`` with the folder after ``flag`` (``--flag DIR`` or ``--flag=DIR``) made absolute against the
    folder this script was run from: the command itself runs in the checkout."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == flag and i + 1 < len(out):
            out[i + 1] = str(Path(out[i + 1]).expanduser().resolve())
        elif arg.startswith(flag + "="):
            out[i] = f"{flag}={Path(arg.split('=', 1)[1]).expanduser().resolve()}"
    return out


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if not argv:
        print(__doc__)
        return 2
    if argv[0] not in COMMANDS:
        near = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        print(
            f"dev.py: unknown command {argv[0]!r}{hint}; the commands are {' and '.join(COMMANDS)} "
            "(python3 scripts/dev.py --help)",
            file=sys.stderr,
        )
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "test":
        ensure_browser()
        if "-h" in rest or "--help" in rest:  # this script's own options first, then pytest's
            print(__doc__, flush=True)
        if "--fast" in rest:
            rest = [arg for arg in rest if arg != "--fast"] + ["-m", "not slow"]
        cmd = [str(python), "-m", "pytest", *side_by_side(rest), *rest]
    else:
        cmd = [str(python), "-m", "resi.localnet", *from_here(rest, "--run-dir")]
    os.chdir(ROOT)
    return run(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
