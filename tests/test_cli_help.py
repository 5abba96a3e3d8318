"""Every command an operator runs explains its flags; the console scripts point at real functions."""

from __future__ import annotations

import subprocess
from importlib.metadata import entry_points

import pytest

from tests.kit import PYTHON, ROOT

SHARED = [
    "--netuid",
    "--wallet.name",
    "--wallet.hotkey",
    "--wallet.path",
    "--subtensor.network",
    "--subtensor.chain_endpoint",
    "--logging.debug",
    "--logging.trace",
    "--api.url",
]


@pytest.mark.parametrize(
    "script,extra",
    [
        ("neurons/miner.py", ["--miner.data_dir", "--source.proxy"]),
        ("neurons/validator.py", ["--validator.grace", "--scoring.sample_size", "--weights.resync_blocks"]),
    ],
)
def test_neuron_help_shows_the_shared_flags(script, extra):
    out = subprocess.run([PYTHON, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in SHARED + extra:
        assert flag in out.stdout, flag
    assert "[env " in out.stdout  # environment variables are named


@pytest.mark.parametrize(
    "module", ["resi.api.server", "resi.localnet", "resi.localnet.site", "resi.scraping", "resi.chain.local", "resi.chain.node"]
)
def test_module_commands_have_help(module):
    out = subprocess.run([PYTHON, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr


def test_console_scripts_resolve():
    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("resi-")}
    assert {
        "resi-miner",
        "resi-validator",
        "resi-api-server",
        "resi-localnet",
        "resi-chain",
        "resi-chain-node",
        "resi-scrape",
    } <= set(scripts)
    for entry in scripts.values():
        assert callable(entry.load())


def test_a_missing_wallet_is_a_clear_error_not_a_traceback(tmp_path):
    out = subprocess.run(
        [PYTHON, str(ROOT / "neurons/miner.py"), "--wallet.path", str(tmp_path), "--wallet.name", "nobody"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "cannot load hotkey" in out.stderr and "Traceback" not in out.stderr
