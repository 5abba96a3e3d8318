"""Run the reference Resi API server.

    python -m resi.api.server --host 127.0.0.1 --port 3000 --state-dir DIR --chain PATH_OR_URL \\
        [--epoch-minutes N] [--local]

``--chain`` is a simulated chain file (as ``python -m resi.chain.local`` takes it) or a bittensor network
(``finney``, ``test``, ``ws://...``). ``--local`` starts and owns a SeaweedFS for the server's lifetime;
without it the S3 endpoint and buckets come from flags and the keys from RESI_S3_ACCESS_KEY and
RESI_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from loguru import logger

from resi import constants as c
from resi.api.limits import DEFAULT_LIMITS, parse_limits
from resi.api.server.app import build_app
from resi.api.server.context import ServerConfig, ServerContext
from resi.api.server.state import StateStore
from resi.chain import ChainError, open_chain
from resi.config import Parser, env
from resi.logs import register_secret, setup_logging
from resi.monitor.metrics import ApiMetrics
from resi.monitor.server import MonitorServer, add_monitor_args, start_monitoring
from resi.storage.presigner import S3Presigner, S3Settings
from resi.storage.seaweed import LocalS3


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m resi.api.server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=3000, help="port to listen on")
    p.add_argument(
        "--state-dir",
        type=Path,
        required=True,
        help="folder for the SQLite state, the server secret and (with --local) the SeaweedFS data",
    )
    p.add_argument("--chain", required=True, help="simulated chain file (sim:PATH or a path) or finney/test/ws://...")
    p.add_argument("--netuid", type=int, default=c.NETUID, help="subnet whose hotkeys may call")
    p.add_argument(
        "--epoch-minutes",
        type=float,
        default=c.EPOCH_LENGTH.total_seconds() / 60,
        help="epoch length (240 in production; a few minutes for local networks)",
    )
    p.add_argument("--target-listings", type=int, default=c.TARGET_LISTINGS, help="expected listings per epoch")
    p.add_argument("--tolerance-percent", type=float, default=c.TOLERANCE_PERCENT, help="± around the target")
    p.add_argument(
        "--listings-scale",
        type=float,
        default=1.0,
        help="multiplies every zipcode's expected count (production range 200..3000); the local "
        "listing site must use the same value",
    )
    p.add_argument(
        "--cooldown-hours",
        type=float,
        default=c.ZIPCODE_COOLDOWN.total_seconds() / 3600,
        help="a zipcode rests this long after being assigned",
    )
    p.add_argument(
        "--states",
        default=env("RESI_STATES"),
        help="comma-separated states to draw zipcodes from (default every state) [env RESI_STATES]",
    )
    p.add_argument("--local", action="store_true", help="start and own a SeaweedFS S3 on loopback")
    p.add_argument("--s3-endpoint", default=env("RESI_S3_ENDPOINT"), help="S3 endpoint URL (default AWS) [env RESI_S3_ENDPOINT]")
    p.add_argument("--s3-region", default=env("RESI_S3_REGION", default="us-east-1"), help="[env RESI_S3_REGION]")
    p.add_argument("--data-bucket", default="resi-sn46-data", help="bucket of miners' uploads")
    p.add_argument("--validator-bucket", default="resi-sn46-validated", help="bucket of validators' results")
    p.add_argument(
        "--rate-limits",
        default="",
        help=f"overrides, e.g. 'status=5/60,assignment=10/60' (endpoints: {', '.join(DEFAULT_LIMITS)})",
    )
    p.add_argument("--metagraph-ttl", type=float, default=60.0, help="seconds between metagraph refreshes")
    p.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="seconds to shift this server's clock by, to rehearse clients against a skewed clock (its "
        "Date header and timestamp check)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a connection has to send a complete request head; slower ones are closed",
    )
    p.add_argument(
        "--upload-ttl-seconds",
        type=float,
        default=None,
        help="lifetime of upload credentials (default: two epochs, at most four hours)",
    )
    p.add_argument("--logging.debug", dest="debug", action="store_true", help="log at DEBUG level")
    p.add_argument("--log-file", type=Path, default=None, help="also log to this file")
    add_monitor_args(p, watchdog=False)
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    limits = dict(DEFAULT_LIMITS)
    limits.update(parse_limits(args.rate_limits))
    epoch_length = timedelta(minutes=args.epoch_minutes)
    return ServerConfig(
        state_dir=args.state_dir,
        netuid=args.netuid,
        epoch_length=epoch_length,
        target_listings=args.target_listings,
        tolerance_percent=args.tolerance_percent,
        listings_scale=args.listings_scale,
        cooldown=timedelta(hours=args.cooldown_hours),
        states=frozenset(s.strip().upper() for s in args.states.split(",") if s.strip()) if args.states else None,
        data_bucket=args.data_bucket,
        validator_bucket=args.validator_bucket,
        region=args.s3_region,
        upload_ttl=(
            timedelta(seconds=args.upload_ttl_seconds) if args.upload_ttl_seconds else min(c.EPOCH_LENGTH, epoch_length * 2)
        ),
        status_grace=min(timedelta(minutes=30), epoch_length / 2),
        rate_limits=limits,
        metagraph_ttl=args.metagraph_ttl,
        header_timeout=args.header_timeout,
        clock_offset=args.clock_offset,
    )


def server_secret(state_dir: Path) -> bytes:
    """RESI_SERVER_SECRET, else a random secret kept in the state folder (0600): nonces depend on it."""
    from_env = env("RESI_SERVER_SECRET")
    if from_env:
        register_secret(from_env)
        return from_env.encode()
    path = state_dir / "server_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


async def serve(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    local_s3: LocalS3 | None = None
    monitor: MonitorServer | None = None
    if args.local:
        local_s3 = await asyncio.to_thread(LocalS3(config.state_dir / "s3").start, [config.data_bucket, config.validator_bucket])
        settings = local_s3.settings
        logger.info(f"local S3 (SeaweedFS) at {settings.endpoint_url}")
    else:
        access = env("RESI_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        secret = env("RESI_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            logger.error("S3 keys missing: set RESI_S3_ACCESS_KEY and RESI_S3_SECRET_KEY, or use --local")
            return 2
        settings = S3Settings(args.s3_endpoint, config.region, access, secret)
    longest = max([r.window for r in config.rate_limits.values()] + [2 * c.TIMESTAMP_TOLERANCE_S + 60])
    try:
        store = StateStore(config.state_dir / "state.db", keep=longest)
    except RuntimeError as exc:
        logger.error(f"{exc}")
        return 2
    chain = open_chain(args.chain, config.netuid)
    try:
        presigner = S3Presigner(settings)
        if not args.local:
            for bucket in (config.data_bucket, config.validator_bucket):
                await asyncio.to_thread(presigner.ensure_bucket, bucket)
        metrics = ApiMetrics()
        ctx = ServerContext(config, store, chain, presigner, server_secret(config.state_dir), metrics)
        try:
            await ctx.metagraph.get()
        except ChainError as exc:
            logger.warning(f"chain not readable yet ({exc}); requests will retry it")
        # keepalive_timeout also closes a connection whose first request head is not complete in time
        runner = web.AppRunner(build_app(ctx), access_log=None, keepalive_timeout=config.header_timeout)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        logger.info(
            f"Resi API reference server listening on http://{args.host}:{args.port} "
            f"(epochs of {config.epoch_length}, chain {args.chain})"
        )
        monitor = start_monitoring(args, metrics.registry)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logger.info("shutting down")
        await runner.cleanup()
    finally:
        if monitor is not None:
            monitor.stop()
        store.close()
        await chain.close()
        if local_s3 is not None:
            await asyncio.to_thread(local_s3.stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(debug=args.debug, log_file=args.log_file, name="api")
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
