"""The neurons' entry: their ``main`` imported with a one-line answer, not a traceback, when this Python lacks
the project's dependencies (``python3 neurons/miner.py`` outside the project's environment). Standard library
only: it runs before anything is known to be installed."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main_of(module: str) -> Callable[[], int]:
    """``module``'s ``main``; exit 2 with the fix when a package it needs is not installed."""
    try:
        return importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "resi":
            raise
        script = sys.argv[0] if sys.argv and sys.argv[0] else module
        print(
            f"{script}: the package {exc.name!r} is not installed for {sys.executable}: run it with the "
            f"project's environment ({ROOT / '.venv' / 'bin' / 'python'} {script}; `python3 scripts/dev.py test` "
            f"makes it) or install the project into this one (`pip install -e {ROOT}`)",
            file=sys.stderr,
        )
        sys.exit(2)
