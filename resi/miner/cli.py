"""The miner's flags, wiring and signal handling (``neurons/miner.py`` calls :func:`main`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from loguru import logger

from resi.api.client import ResiApiClient
from resi.chain import KeyLoadError, load_signer
from resi.config import HelpFormatter, SharedConfig, add_shared_args, env, env_float, env_int
from resi.logs import register_secret, setup_logging
from resi.miner.checkpoint import Checkpoint
from resi.miner.loop import Miner, MinerConfig
from resi.miner.upload import Uploader
from resi.scraping.realtor import RealtorSource

DESCRIPTION = """RESI subnet 46 miner: every epoch, scrape the assigned zipcodes' current listings from a real
source, upload listings.parquet + metadata.json through the Resi API's presigned POST, report status.

  python neurons/miner.py --wallet.name NAME --wallet.hotkey HOTKEY [--subtensor.network finney]
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurons/miner.py", description=DESCRIPTION, formatter_class=HelpFormatter)
    add_shared_args(p)
    m = p.add_argument_group("miner")
    m.add_argument("--miner.data_dir", dest="data_dir", default=env("RESI_MINER_DATA_DIR"),
                   help="folder for the checkpoint and local epoch files (default ~/.resi/miner/<hotkey>) "
                   "[env RESI_MINER_DATA_DIR]")
    m.add_argument("--miner.concurrency", dest="concurrency", type=int, default=env_int("RESI_MINER_CONCURRENCY", default=4),
                   help="zipcodes scraped at once [env RESI_MINER_CONCURRENCY]")
    m.add_argument("--miner.upload_margin", dest="upload_margin", type=float,
                   default=env_float("RESI_MINER_UPLOAD_MARGIN", default=900.0),
                   help="seconds before the deadline at which scraping stops and what there is gets uploaded "
                   "[env RESI_MINER_UPLOAD_MARGIN]")
    m.add_argument("--miner.poll_interval", dest="poll_interval", type=float, default=60.0,
                   help="seconds between assignment checks (the API allows 10 per minute)")
    m.add_argument("--miner.retention_days", dest="retention_days", type=float, default=7.0,
                   help="local epoch data older than this is deleted")
    m.add_argument("--miner.zipcode_retry_pause", dest="zipcode_retry_pause", type=float, default=30.0,
                   help="seconds between rounds of retrying zipcodes whose scrape failed")
    m.add_argument("--miner.shutdown_grace", dest="shutdown_grace", type=float, default=20.0,
                   help="seconds given to the work in flight after SIGINT/SIGTERM (keep under pm2's kill_timeout)")
    s = p.add_argument_group("listing source (Realtor.com through homeharvest)")
    s.add_argument("--source.url", dest="source_url", default=env("RESI_SOURCE_URL"),
                   help="site origin; default Realtor.com, the local listing site in a local network [env RESI_SOURCE_URL]")
    s.add_argument("--source.proxy", dest="source_proxy", default=env("RESI_PROXY_URL"),
                   help="HTTP(S) proxy URL, credentials included; prefer the environment [env RESI_PROXY_URL]")
    s.add_argument("--source.max_rps", dest="source_max_rps", type=float, default=env_float("RESI_SOURCE_MAX_RPS", default=4.0),
                   help="requests per second to the source, at most [env RESI_SOURCE_MAX_RPS]")
    s.add_argument("--source.timeout", dest="source_timeout", type=float, default=15.0,
                   help="seconds before one request to the source is abandoned (then retried)")
    return p


async def serve(miner: Miner, source: RealtorSource, api: ResiApiClient, grace: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(miner.run(stop))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    logger.info("stopping: finishing the work in flight")
    source.close()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    except asyncio.TimeoutError:
        logger.warning(f"work still running after {grace:g} s: cancelling (finished zipcodes are checkpointed)")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stopper.cancel()
    await api.close()


def main(argv: list[str] | None = None, strategy=None) -> int:
    """Run a miner; ``strategy`` is the honest one unless a local network's cheater passes its own."""
    args = build_parser().parse_args(argv)
    shared = SharedConfig.from_args(args)
    setup_logging(shared.debug, shared.trace, shared.log_file, name="miner")
    register_secret(args.source_proxy)
    try:
        signer = load_signer(shared.wallet_name, shared.wallet_hotkey, shared.wallet_path)
    except KeyLoadError as exc:
        logger.error(str(exc))
        return 2
    data_dir = Path(args.data_dir or f"~/.resi/miner/{signer.hotkey}").expanduser()
    config = MinerConfig(data_dir=data_dir, concurrency=args.concurrency, upload_margin=args.upload_margin,
                         poll_interval=args.poll_interval, retention_days=args.retention_days,
                         zipcode_retry_pause=args.zipcode_retry_pause)
    api = ResiApiClient(shared.api_url, signer, timeout=shared.api_timeout)
    source = RealtorSource(args.source_url, proxy=args.source_proxy, max_rps=args.source_max_rps,
                           timeout=args.source_timeout)
    miner = Miner(signer.hotkey, api, source, Checkpoint(data_dir / "checkpoint.db"), Uploader(api, signer.hotkey),
                  config, strategy)
    logger.info(f"miner {signer.hotkey} (netuid {shared.netuid}) against {shared.api_url}, source "
                f"{source.origin}, data in {data_dir}")
    asyncio.run(serve(miner, source, api, args.shutdown_grace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
