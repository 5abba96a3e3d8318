"""The lint rules, the format and the type checks of ``pyproject.toml`` hold (CI runs the suite, so it runs them
too): ruff on the whole project, mypy on ``resi/`` (strict on ``resi/validation`` and ``resi/chain``)."""

from __future__ import annotations

import subprocess

import pytest

from tests.kit import PYTHON, ROOT


def test_ruff_finds_nothing():
    found = subprocess.run([PYTHON, "-m", "ruff", "--version"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip("ruff is not installed here (python3 scripts/dev.py test installs it)")
    out = subprocess.run(
        [PYTHON, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "resi", "tests", "scripts", "neurons"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_the_code_is_formatted():
    """``ruff format`` was applied once; the code stays so (``.venv/bin/ruff format resi tests scripts neurons``
    formats a change)."""
    found = subprocess.run([PYTHON, "-m", "ruff", "--version"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip("ruff is not installed here (python3 scripts/dev.py test installs it)")
    out = subprocess.run(
        [PYTHON, "-m", "ruff", "format", "--check", "--no-cache", "resi", "tests", "scripts", "neurons", "setup.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, "run: .venv/bin/ruff format resi tests scripts neurons setup.py\n" + out.stdout[-4000:]


def test_mypy_finds_nothing():
    found = subprocess.run([PYTHON, "-m", "mypy", "--version"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip("mypy is not installed here (python3 scripts/dev.py test installs it)")
    out = subprocess.run(
        [PYTHON, "-m", "mypy", "--no-incremental", "--no-error-summary"], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


@pytest.mark.parametrize("module", ["resi/validation/scoring.py", "resi/chain/rules.py"])
def test_mypy_is_strict_where_the_config_says(module, tmp_path):
    """``strict`` is a global-only mypy option (inside an override it leaks to every package), so the override
    spells the strict flags out: an untyped function in these packages fails the check. The module is checked
    with a probe's text in its place (``--shadow-file``); the tree is never written."""
    probe = tmp_path / "probe.py"
    probe.write_text("def untyped(x):\n    return x\n")
    out = subprocess.run(
        [PYTHON, "-m", "mypy", "--no-incremental", "--no-error-summary", "--shadow-file", module, str(probe), module],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    if "No module named mypy" in out.stderr:
        pytest.skip("mypy is not installed here (python3 scripts/dev.py test installs it)")
    assert "no-untyped-def" in out.stdout, out.stdout + out.stderr
