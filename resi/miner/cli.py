"""The miner's flags, wiring and signal handling (``neurons/miner.py`` calls :func:`main`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from loguru import logger

from resi.api.client import ResiApiClient
from resi.chain import open_chain
from resi.config import COUNT, POSITIVE, SECONDS, Parser, add_shared_args, env
from resi.miner.checkpoint import Checkpoint
from resi.miner.loop import Miner, MinerConfig
from resi.miner.upload import Uploader
from resi.monitor.metrics import MinerMetrics
from resi.monitor.server import add_monitor_args, start_monitoring
from resi.monitor.watchdog import Heartbeat
from resi.neuron import entry, run_until_signal
from resi.preflight import begin
from resi.scraping.flags import add_source_args, source_from_args
from resi.status import status_command

DESCRIPTION = """RESI subnet 46 miner: every epoch, scrape the assigned zipcodes' current listings from a real
source, upload listings.parquet + metadata.json through the Resi API's presigned POST, report status.

  python neurons/miner.py --wallet.name NAME --wallet.hotkey HOTKEY [--subtensor.network finney]
  python neurons/miner.py status [the same flags] [--json]     what it did lately and what the chain says
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="neurons/miner.py", description=DESCRIPTION)
    add_shared_args(p)
    m = p.add_argument_group("miner")
    m.add_argument(
        "--miner.data_dir",
        dest="data_dir",
        default=env("RESI_MINER_DATA_DIR"),
        help="folder for the checkpoint and local epoch files (default ~/.resi/miner/<hotkey>) [env RESI_MINER_DATA_DIR]",
    )
    m.add_argument(
        "--miner.concurrency",
        dest="concurrency",
        type=COUNT,
        default=env("RESI_MINER_CONCURRENCY", default="4"),
        help="zipcodes scraped at once [env RESI_MINER_CONCURRENCY]",
    )
    m.add_argument(
        "--miner.upload_margin",
        dest="upload_margin",
        type=SECONDS,
        default=env("RESI_MINER_UPLOAD_MARGIN", default="900"),
        help="seconds before the deadline at which scraping stops and what there is gets uploaded [env RESI_MINER_UPLOAD_MARGIN]",
    )
    m.add_argument(
        "--miner.poll_interval",
        dest="poll_interval",
        type=POSITIVE,
        default=60.0,
        help="seconds between assignment checks (the API allows 10 per minute)",
    )
    m.add_argument(
        "--miner.retention_days",
        dest="retention_days",
        type=POSITIVE,
        default=7.0,
        help="local epoch data older than this is deleted",
    )
    m.add_argument(
        "--miner.zipcode_retry_pause",
        dest="zipcode_retry_pause",
        type=SECONDS,
        default=30.0,
        help="seconds between rounds of retrying zipcodes whose scrape failed",
    )
    m.add_argument(
        "--miner.shutdown_grace",
        dest="shutdown_grace",
        type=SECONDS,
        default=20.0,
        help="seconds given to the work in flight after SIGINT/SIGTERM (keep under pm2's kill_timeout)",
    )
    add_source_args(p, "listing source (Realtor.com through homeharvest)")
    add_monitor_args(p)
    return p


DATA_DIR = "~/.resi/miner/{hotkey}"


def main(argv: list[str] | None = None, strategy=None) -> int:
    """Run a miner (or ``status``); ``strategy`` is the honest one unless a local network's cheater passes its
    own."""
    return entry(argv, build_parser, lambda args: _run(args, strategy), status_command("miner", build_parser, DATA_DIR))


def _run(args: argparse.Namespace, strategy) -> int:
    ready = begin(args, "miner", DATA_DIR, lambda shared, _: open_chain(shared.chain_spec, shared.netuid))
    if isinstance(ready, int):
        return ready
    shared, signer, data_dir = ready.shared, ready.signer, ready.data_dir
    config = MinerConfig(
        data_dir=data_dir,
        concurrency=args.concurrency,
        upload_margin=args.upload_margin,
        poll_interval=args.poll_interval,
        retention_days=args.retention_days,
        zipcode_retry_pause=args.zipcode_retry_pause,
    )
    api = ResiApiClient(shared.api_url, signer, timeout=shared.api_timeout)
    source = source_from_args(args)
    metrics, heartbeat = MinerMetrics(), Heartbeat()

    def upload_retried() -> None:  # retrying is progress too: the watchdog must not end an upload in flight
        metrics.upload_retries.inc()
        heartbeat.beat("upload retry")

    uploader = Uploader(api, signer.hotkey, on_retry=upload_retried)
    miner = Miner(
        signer.hotkey, api, source, Checkpoint(data_dir / "checkpoint.db"), uploader, config, strategy, metrics, heartbeat
    )
    monitor = start_monitoring(args, metrics.registry, heartbeat)
    logger.info(
        f"miner {signer.hotkey} (netuid {shared.netuid}) against {shared.api_url}, source {source.origin}, data in {data_dir}"
    )
    try:
        asyncio.run(run_until_signal(miner.run, args.shutdown_grace, source.close, api.close))
    finally:
        if monitor is not None:
            monitor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
