"""What the miner and the validator entry points share: their command (run or status), their keys and logging,
and running a loop until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from loguru import logger

from resi import __version__
from resi.chain import KeyLoadError, KeypairSigner, load_signer
from resi.config import SharedConfig
from resi.logs import add_log_file, register_secret, setup_logging


def entry(
    argv: list[str] | None,
    build_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], int],
    status: Callable[[list[str]], int],
) -> int:
    """What both neurons' ``main`` does: ``status [flags]`` (each CLI brings its own), or ``run`` with the parsed
    flags until stopped."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        return status(argv[1:])
    args = build_parser().parse_args(argv)
    return until_stopped(lambda: run(args))


def until_stopped(run: Callable[[], int]) -> int:
    """A neuron's ``run`` (start-up, then its loop); SIGINT or SIGTERM before the loop takes them over ends it
    cleanly (exit 0, one log line) instead of killing it mid-way."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        return run()
    except KeyboardInterrupt:
        logger.info("stopped during start-up")
        return 0


def start(args: argparse.Namespace, name: str) -> tuple[SharedConfig, KeypairSigner] | None:
    """Logging configured and secrets registered; the shared settings and the hotkey (None if it cannot load)."""
    shared = SharedConfig.from_args(args)
    setup_logging(shared.debug, shared.trace, shared.log_file, name=name)
    logger.info(f"resi {name} {__version__} (netuid {shared.netuid}, chain {shared.chain_spec}, API {shared.api_url})")
    register_secret(getattr(args, "source_proxy", None))
    try:
        return shared, load_signer(shared.wallet_name, shared.wallet_hotkey, shared.wallet_path)
    except KeyLoadError as exc:
        logger.error(str(exc))
        return None


def log_to_folder(shared: SharedConfig, data_dir: Path, name: str) -> None:
    """The neuron's own log file, rotated (unless ``--logging.file`` named another): ``<name>.log`` in
    ``--logging.logging_dir``, by default ``logs/`` in its data folder."""
    path = shared.log_file or (shared.log_dir or data_dir / "logs") / f"{name}.log"
    if shared.log_file is not None or add_log_file(path):
        logger.info(f"resi {name} {__version__}: logging to {path}")  # the file's first line says the version


async def run_until_signal(
    work: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    grace: float,
    on_stop: Callable[[], None],
    cleanup: Callable[[], Awaitable[None]],
) -> None:
    """Run ``work(stop)`` until it returns or SIGINT/SIGTERM sets ``stop``; then ``on_stop()``, up to ``grace``
    seconds for the work to wind down (then it is cancelled), and ``cleanup()``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(work(stop))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    logger.info("stopping: finishing the work in flight")
    on_stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    except asyncio.TimeoutError:
        logger.warning(f"work still running after {grace:g} s: cancelling it")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stopper.cancel()
    await cleanup()
