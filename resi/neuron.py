"""What the miner and the validator entry points share: the listing-source flags, their keys and logging,
waiting that a stop can interrupt, and running a loop until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from loguru import logger

from resi import __version__
from resi.chain import KeyLoadError, KeypairSigner, load_signer
from resi.chain.base import Metagraph
from resi.config import POSITIVE, SharedConfig, env, number
from resi.logs import add_log_file, register_secret, setup_logging
from resi.scraping.realtor import RealtorSource
from resi.status import add_status_args, status_main


def add_source_args(parser: argparse.ArgumentParser, title: str) -> None:
    s = parser.add_argument_group(title)
    s.add_argument("--source.url", dest="source_url", default=env("RESI_SOURCE_URL"),
                   help="listing site origin; default Realtor.com, the local listing site in a local network "
                   "[env RESI_SOURCE_URL]")
    s.add_argument("--source.proxy", dest="source_proxy", default=env("RESI_PROXY_URL"),
                   help="HTTP(S) proxy URL, credentials included; prefer the environment [env RESI_PROXY_URL]")
    s.add_argument("--source.max_rps", dest="source_max_rps", type=number(float, 0),
                   default=env("RESI_SOURCE_MAX_RPS", default="4"),
                   help="requests per second to the source, at most; 0: no cap (a local site only) "
                   "[env RESI_SOURCE_MAX_RPS]")
    s.add_argument("--source.timeout", dest="source_timeout", type=POSITIVE, default=15.0,
                   help="seconds before one request to the source is abandoned (then retried)")


def source_from_args(args: argparse.Namespace) -> RealtorSource:
    return RealtorSource(args.source_url, proxy=args.source_proxy, max_rps=args.source_max_rps,
                         timeout=args.source_timeout)


def entry(argv: list[str] | None, role: str, build_parser: Callable[[], argparse.ArgumentParser],
          default_dir: str, run: Callable[[argparse.Namespace], int]) -> int:
    """What both neurons' ``main`` does: ``status [flags]``, or ``run`` with the parsed flags until stopped."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["status"]:
        parser = build_parser()
        parser.prog += " status"
        add_status_args(parser)
        return status_main(parser.parse_args(argv[1:]), role, default_dir)
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


def registration_problem(graph: Metagraph, hotkey: str, *, validator: bool, hint: str = "") -> str | None:
    """One line saying what to do when ``hotkey`` cannot take part on ``graph``'s subnet (not registered; for
    a validator, no validator permit); None when it can. ``hint``: the wallet flags to put in the command."""
    me = graph.by_hotkey(hotkey)
    flags = f" {hint}" if hint else ""
    if me is None:
        return (f"hotkey {hotkey} is not registered on netuid {graph.netuid}: register it with "
                f"`btcli subnets register --netuid {graph.netuid}{flags}`, then start again")
    if validator and not me.validator_permit:
        return (f"hotkey {hotkey} (uid {me.uid}) has no validator permit on netuid {graph.netuid}: permits go to "
                f"the largest stakes at each tempo; add stake with `btcli stake add --netuid {graph.netuid}{flags}`, "
                "then start again")
    return None


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    if seconds > 0 and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


async def run_until_signal(
    work: Callable[[asyncio.Event], Awaitable[None]],
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
