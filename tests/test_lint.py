"""The lint rules of ``pyproject.toml`` hold for the whole project (CI runs the suite, so it runs them too)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    found = subprocess.run([PYTHON, "-m", "ruff", "--version"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip("ruff is not installed here (python3 scripts/dev.py test installs it)")
    out = subprocess.run([PYTHON, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "resi", "tests",
                          "scripts", "neurons"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
