"""The small wrong turns of a newcomer each end in one line that names the fix: a mistyped flag, a missing
wallet, the neurons run with a Python that lacks the project, an unknown ``dev.py`` command, a relative
``--run-dir`` given to ``dev.py`` (which runs the network from the checkout), and ``--check`` (which makes
nothing)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from tests.kit import PYTHON, ROOT


def _dev():
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_line(out: subprocess.CompletedProcess, *words: str) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("script", ["miner.py", "validator.py"])
def test_a_mistyped_flag_is_one_line_with_the_flag_meant(script):
    out = subprocess.run(
        [PYTHON, str(ROOT / "neurons" / script), "--wallet.nmae", "x"], capture_output=True, text=True, timeout=60
    )
    _one_line(out, "unrecognized arguments: --wallet.nmae x", "did you mean --wallet.name?", "--help")


def test_a_missing_wallet_names_the_btcli_command_that_makes_it(tmp_path):
    out = subprocess.run(
        [
            PYTHON,
            str(ROOT / "neurons" / "miner.py"),
            "--wallet.path",
            str(tmp_path),
            "--wallet.name",
            "nobody",
            "--wallet.hotkey",
            "hk",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = next(line for line in out.stderr.splitlines() if "cannot load hotkey" in line)
    assert f"btcli wallet create --wallet nobody --wallet-hotkey hk --wallet-path {tmp_path}" in line
    assert "--wallet.path, --wallet.name and --wallet.hotkey" in line


@pytest.mark.skipif(not shutil.which("python3"), reason="needs a python3 on PATH")
def test_the_neurons_outside_the_projects_environment_say_how_to_run_them(tmp_path):
    """A bare interpreter (no site packages: -S -I) stands for a Python the project was never installed in."""
    for script in ("miner.py", "validator.py"):
        out = subprocess.run(
            [sys.executable, "-S", "-I", str(ROOT / "neurons" / script), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", "")},
        )
        _one_line(out, "is not installed for", f"{ROOT / '.venv' / 'bin' / 'python'} ", "pip install -e")


def test_an_unknown_dev_command_is_named_with_the_nearest_one():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dev.py"), "localnt"], capture_output=True, text=True, timeout=60
    )
    _one_line(out, "unknown command 'localnt'", "did you mean localnet?")


def test_dev_makes_a_relative_run_dir_absolute_against_where_it_was_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dev = _dev()
    assert dev.from_here(["--run-dir", "run", "--epochs", "2"], "--run-dir") == [
        "--run-dir",
        str(tmp_path / "run"),
        "--epochs",
        "2",
    ]
    assert dev.from_here(["--run-dir=a/b"], "--run-dir") == [f"--run-dir={tmp_path / 'a' / 'b'}"]
    assert dev.from_here(["--epochs", "2"], "--run-dir") == ["--epochs", "2"]
