"""Neurons check what they need before their loop and stop in seconds with one line that names the fix (exit
2); ``--check`` runs only the checks; flags out of range are refused with the allowed range."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

import pytest

from resi import __version__
from resi.api.client import ResiApiClient
from resi.chain.keys import create_wallet
from resi.preflight import check_api
from resi.processes import free_port
from tests.kit import ROOT, run
from tests.servers import ApiServer, NeuronWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory, local_s3):
    w = NeuronWorld(tmp_path_factory.mktemp("preflight"), local_s3)
    yield w
    w.server.stop()


def _refused(out: subprocess.CompletedProcess, seconds: float, *fix: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    assert seconds < 60 and "Traceback" not in out.stderr
    for words in fix:
        assert words in out.stderr, (words, out.stderr[-2000:])


@pytest.mark.parametrize("script,wallet", [("miner.py", "miner"), ("validator.py", "validator")])
def test_check_passes_on_a_good_setup_and_says_what_it_found(world, script, wallet):
    out, seconds = world.neuron(script, wallet, "--check")
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("ok ") for line in lines), lines
    assert "is writable" in lines[0] and "is uid" in lines[1] and "accepts hotkey" in lines[2] and "clock" in lines[3]


def test_check_makes_nothing(world, tmp_path):
    """``--check`` only looks: a data folder that does not exist yet is not made (it says it will be)."""
    folder = tmp_path / "home" / ".resi" / "miner"
    out, _ = world.neuron("miner.py", "miner", "--check", "--miner.data_dir", str(folder))
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert f"data folder {folder} does not exist yet; the neuron will make it" in out.stdout
    assert not (tmp_path / "home").exists()


def test_unregistered_hotkey_and_missing_permit(world):
    _refused(
        *world.neuron("miner.py", "stranger"),
        f"hotkey {world.stranger.hotkey} is not registered on netuid 46",
        "btcli subnets register --netuid 46 --wallet.name stranger --wallet.hotkey default",
    )
    _refused(*world.neuron("validator.py", "small"), "has no validator permit on netuid 46", "btcli stake add")


def test_unreachable_chain(world):
    port = free_port()  # nothing listens there
    _refused(
        *world.neuron("miner.py", "miner", chain=f"ws://127.0.0.1:{port}"),
        f"from the chain at ws://127.0.0.1:{port}",
        "check --subtensor.network / --subtensor.chain_endpoint",
    )
    _refused(
        *world.neuron("miner.py", "miner", chain=f"sim:{world.root / 'no-such-chain.db'}"), "cannot read netuid 46 from the chain"
    )


def test_unreachable_api(world):
    url = f"http://127.0.0.1:{free_port()}"
    _refused(*world.neuron("validator.py", "validator", api=url), f"the Resi API at {url} does not answer", "check --api.url")


def test_unknown_network_and_endpoints_that_are_not_endpoints(world):
    _refused(
        *world.neuron("miner.py", "miner", "--subtensor.network", "finey"),
        "unknown network 'finey'",
        "finney, test, local, archive",
    )
    _refused(*world.neuron("miner.py", "miner", chain="./chain.db"), "'./chain.db' is not an endpoint")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: no folder is unwritable")
def test_unwritable_folder(world, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    out, seconds = world.neuron("miner.py", "miner", "--miner.data_dir", str(locked / "data"))
    _refused(out, seconds, f"cannot write to {locked / 'data'}", "give a writable folder with --miner.data_dir")


def test_a_folder_that_is_a_file_is_unwritable(world, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out, seconds = world.neuron("validator.py", "validator", "--validator.data_dir", str(blocker / "v"))
    _refused(out, seconds, f"cannot write to {blocker / 'v'}", "--validator.data_dir")


@pytest.mark.parametrize(
    "script,flag,value,allowed",
    [
        ("miner.py", "--miner.concurrency", "0", "an integer >= 1"),
        ("miner.py", "--miner.poll_interval", "-5", "a number > 0"),
        ("miner.py", "--source.max_rps", "nan", "a number >= 0"),
        ("miner.py", "--source.timeout", "0", "a number > 0"),
        ("validator.py", "--scoring.ema_alpha", "1.5", "a number > 0 and <= 1"),
        ("validator.py", "--scoring.fabrication_threshold", "-0.1", "a number >= 0 and <= 1"),
        ("validator.py", "--validator.judge_workers", "0", "an integer >= 1"),
        ("validator.py", "--netuid", "70000", "an integer >= 0 and <= 65535"),
    ],
)
def test_out_of_range_flags_are_refused_with_the_allowed_range(world, script, flag, value, allowed):
    out, seconds = world.neuron(script, "miner", flag, value)
    _refused(out, seconds, f"argument {flag}: must be {allowed}, got '{value}'")


def test_a_clock_far_off_the_apis_is_refused_with_the_fix(world):
    async def go(offset: float):
        async with ResiApiClient(
            world.server.url, world.miner, clock=lambda: time.time() + offset, max_attempts=2, backoff_base=0.05
        ) as api:
            return await check_api(api, world.miner.hotkey, validator=False)

    near = run(go(5))
    assert all(f.ok for f in near) and "clock within" in near[-1].line
    far = run(go(-420))
    assert far[0].ok  # signed with the API's time: the API accepts the hotkey
    assert not far[-1].ok and any(f"clock is {s} s behind the API's" in far[-1].line for s in (419, 420, 421))
    assert "timedatectl set-ntp true" in far[-1].line


@pytest.mark.slow
def test_a_neuron_whose_clock_is_far_off_the_apis_stops_with_the_fix(world, local_s3, tmp_path):
    skewed = ApiServer(
        tmp_path, world.root / "chain.db", local_s3, "--listings-scale", "0.05", "--clock-offset", "420"
    ).start()  # the API's clock runs 7 minutes ahead of this machine's
    try:
        out, seconds = world.neuron("miner.py", "miner", api=skewed.url)
        _refused(out, seconds, "behind the API's: sync it (`sudo timedatectl set-ntp true`)")
        assert any(f"clock is {s} s behind" in out.stderr for s in (419, 420, 421)), out.stderr[-2000:]
    finally:
        skewed.stop()


def test_version():
    out = subprocess.run(
        [sys.executable, str(ROOT / "neurons" / "validator.py"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_a_running_neuron_logs_to_a_rotated_file_in_its_data_folder_that_starts_with_its_version(world):
    data = world.root / "logging-miner"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "neurons" / "miner.py"),
            "--wallet.name",
            "miner",
            "--wallet.path",
            str(world.wallets),
            "--subtensor.chain_endpoint",
            f"sim:{world.chain.path}",
            "--api.url",
            world.server.url,
            "--miner.data_dir",
            str(data),
            "--source.url",
            "http://127.0.0.1:9",
            "--miner.poll_interval",
            "30",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    log = data / "logs" / "miner.log"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and "epoch" in log.read_text()):
            time.sleep(0.2)
        lines = log.read_text().splitlines()
        assert f"resi miner {__version__}: logging to {log}" in lines[0] and any("epoch" in x for x in lines)
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


@pytest.mark.slow
def test_a_registration_the_api_has_not_seen_yet_is_waited_for(world):
    newcomer = create_wallet(world.wallets, "newcomer")

    async def go(wallet, patience: float, register_after: float | None):
        async with ResiApiClient(world.server.url, wallet, max_attempts=1) as api:
            check = asyncio.create_task(
                check_api(api, wallet.hotkey, validator=False, registered=True, patience=patience, pause=0.5)
            )
            if register_after is not None:
                await asyncio.sleep(register_after)  # refused meanwhile: the API does not know the hotkey yet
                world.chain.register(wallet.hotkey, wallet.coldkey, stake=1)
            return await check

    assert all(f.ok for f in run(go(newcomer, 30, register_after=1.5)))
    started = time.monotonic()
    never = run(go(world.stranger, 2, register_after=None))
    assert not never[0].ok and "refuses hotkey" in never[0].line and 2 <= time.monotonic() - started < 10


@pytest.mark.slow
def test_the_lean_install_runs_the_neurons_without_the_twins(world, tmp_path):
    """``pip install .`` into a fresh venv: no boto3, no zipcodes, no weed binary, no test tools; the miner's
    --help and --check work (against this test's chain and API server); the twins say what to install."""
    lean = tmp_path / "lean"
    subprocess.run([sys.executable, "-m", "venv", str(lean)], check=True, timeout=120)
    python = lean / "bin" / "python"
    source = tmp_path / "src"  # a copy: the build leaves nothing in the working tree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache", "localnet-run"
        ),
    )
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(source)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = "import importlib.util as u; print([m for m in ('boto3', 'zipcodes', 'pytest') if u.find_spec(m)])"
    assert subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"
    assert not (lean / "bin" / "weed").exists()
    outside = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 120}  # the installed copy runs
    assert subprocess.run([str(lean / "bin" / "resi-miner"), "--help"], **outside).returncode == 0
    out = subprocess.run(
        [
            str(lean / "bin" / "resi-miner"),
            "--check",
            "--wallet.name",
            "miner",
            "--wallet.path",
            str(world.wallets),
            "--subtensor.chain_endpoint",
            f"sim:{world.chain.path}",
            "--api.url",
            world.server.url,
            "--miner.data_dir",
            str(tmp_path / "data"),
        ],
        **outside,
    )
    assert out.returncode == 0 and out.stdout.count("ok ") == 4, out.stdout + out.stderr[-2000:]
    twin = subprocess.run([str(lean / "bin" / "resi-localnet"), "--help"], **outside)
    assert twin.returncode != 0 and "pip install '.[localnet]'" in twin.stderr and "Traceback" not in twin.stderr
