"""The validator's flags, wiring and signal handling (``neurons/validator.py`` calls :func:`main`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from loguru import logger

from resi.api.client import ResiApiClient
from resi.chain import Chain, open_chain
from resi.config import (
    COUNT,
    FRACTION,
    POSITIVE,
    SECONDS,
    Parser,
    SharedConfig,
    add_shared_args,
    env,
    number,
)
from resi.constants import WEIGHTS_VERSION_KEY
from resi.listings.files import ReadLimits
from resi.monitor.metrics import ValidatorMetrics
from resi.monitor.server import add_monitor_args, start_monitoring
from resi.monitor.watchdog import Heartbeat
from resi.neuron import entry, run_until_signal
from resi.pages import validator_page
from resi.preflight import begin
from resi.scraping.flags import add_source_args, source_from_args
from resi.status import status_command
from resi.validation.params import ValidationParams
from resi.validator.downloads import DownloadLimits
from resi.validator.loop import Validator, ValidatorConfig
from resi.validator.sandbox import SandboxLimits
from resi.validator.state import ValidatorState
from resi.validator.weights import WeightKeeper, WeightSchedule

DESCRIPTION = """RESI subnet 46 validator: after every epoch, fetch each miner's upload, gate and check it, compare
every row with its own scrape of the source, re-fetch a committed random sample, score, keep an EMA, set
weights, and upload validation_results.json and the epoch's validated listings (signed).

  python neurons/validator.py --wallet.name NAME --wallet.hotkey HOTKEY [--subtensor.network finney]
  python neurons/validator.py status [the same flags] [--json]     what it did lately and what the chain says
"""

MB = 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="neurons/validator.py", description=DESCRIPTION)
    add_shared_args(p)
    v = p.add_argument_group("validator")
    v.add_argument(
        "--validator.data_dir",
        dest="data_dir",
        default=env("RESI_VALIDATOR_DATA_DIR"),
        help="folder for the state database and the results (default ~/.resi/validator/<hotkey>) [env RESI_VALIDATOR_DATA_DIR]",
    )
    v.add_argument(
        "--validator.grace",
        dest="grace",
        type=SECONDS,
        default=env("RESI_VALIDATOR_GRACE", default="600"),
        help="seconds after an epoch's deadline before validating it [env RESI_VALIDATOR_GRACE]",
    )
    v.add_argument(
        "--validator.max_lag",
        dest="max_lag",
        type=POSITIVE,
        default=None,
        help="skip an epoch not reached within this many seconds of its deadline (default: one epoch)",
    )
    v.add_argument(
        "--validator.poll_interval",
        dest="poll_interval",
        type=POSITIVE,
        default=60.0,
        help="seconds between checks for a finished epoch",
    )
    v.add_argument(
        "--validator.download_concurrency", dest="download_concurrency", type=COUNT, default=8, help="miners downloaded at once"
    )
    v.add_argument(
        "--validator.download_timeout",
        dest="download_timeout",
        type=POSITIVE,
        default=180.0,
        help="seconds one miner's download may take before the miner scores 0 for the epoch",
    )
    v.add_argument(
        "--validator.max_listings_mb",
        dest="max_listings_mb",
        type=POSITIVE,
        default=64.0,
        help="byte cap of a listings.parquet, in MB",
    )
    v.add_argument(
        "--validator.max_metadata_kb",
        dest="max_metadata_kb",
        type=POSITIVE,
        default=1024.0,
        help="byte cap of a metadata.json, in KB",
    )
    v.add_argument(
        "--validator.max_rows",
        dest="max_rows",
        type=COUNT,
        default=200_000,
        help="rows a listings.parquet may have (checked from its footer)",
    )
    v.add_argument(
        "--validator.max_decoded_mb",
        dest="max_decoded_mb",
        type=POSITIVE,
        default=256.0,
        help="decoded size a listings.parquet may have, in MB (checked from its footer, then per batch)",
    )
    v.add_argument(
        "--validator.refetch_concurrency",
        dest="refetch_concurrency",
        type=COUNT,
        default=4,
        help="listings fetched again at once for the truth check",
    )
    v.add_argument(
        "--validator.judge_memory_mb",
        dest="judge_memory_mb",
        type=number(int, 64),
        default=1024,
        help="memory the child process that judges one miner's files may use beyond its own footprint, "
        "in MB; a file that needs more scores memory_limit_exceeded",
    )
    v.add_argument(
        "--validator.judge_timeout",
        dest="judge_timeout",
        type=POSITIVE,
        default=120.0,
        help="seconds judging one miner's files may take (judging_timeout past it)",
    )
    v.add_argument(
        "--validator.judge_workers",
        dest="judge_workers",
        type=COUNT,
        default=SandboxLimits().workers,
        help="judging children side by side (one per core to spare; each may use judge_memory_mb)",
    )
    d = p.add_argument_group("validated listings (published every epoch beside the results)")
    d.add_argument(
        "--data.keep_epochs",
        dest="keep_epochs",
        type=number(int, 0),
        default=env("RESI_DATA_KEEP_EPOCHS", default=str(ValidatorConfig.keep_epochs)),
        help="epochs of validated listings kept in <data_dir>/validated/ (0: all; 42 is a week) [env RESI_DATA_KEEP_EPOCHS]",
    )
    w = p.add_argument_group("weights")
    defaults_w = WeightSchedule()
    w.add_argument(
        "--weights.resync_blocks",
        dest="resync_blocks",
        type=COUNT,
        default=defaults_w.resync_blocks,
        help="blocks between two reads of the metagraph (also read right before weights are set)",
    )
    w.add_argument(
        "--weights.margin_blocks",
        dest="margin_blocks",
        type=number(int, 0),
        default=defaults_w.margin_blocks,
        help="weights are set again every WeightsSetRateLimit + this many blocks",
    )
    w.add_argument(
        "--weights.poll_seconds",
        dest="weights_poll",
        type=POSITIVE,
        default=defaults_w.poll_seconds,
        help="seconds between two looks at the chain head",
    )
    s = p.add_argument_group("scoring (consensus values: change only with the subnet)")
    defaults = ValidationParams()
    s.add_argument(
        "--scoring.sample_size",
        dest="sample_size",
        type=COUNT,
        default=defaults.sample_size,
        help="rows the snapshot lacks that are fetched again per miner",
    )
    s.add_argument(
        "--scoring.ema_alpha",
        dest="ema_alpha",
        type=number(float, 0, 1, above=True),
        default=defaults.ema_alpha,
        help="weight of the newest epoch in the EMA",
    )
    s.add_argument(
        "--scoring.fabrication_threshold",
        dest="fabrication_threshold",
        type=FRACTION,
        default=defaults.fabrication_threshold,
        help="estimated fabricated share above which a miner scores 0",
    )
    s.add_argument(
        "--scoring.false_penalty",
        dest="false_penalty",
        type=number(float, 0),
        default=defaults.false_penalty,
        help="times its share that a row proven false costs (truth factor = 1 - penalty x proven-false share)",
    )
    add_source_args(p, "listing source (the validator's own scrape and refetches)")
    add_monitor_args(p)
    return p


DATA_DIR = "~/.resi/validator/{hotkey}"


def main(argv: list[str] | None = None) -> int:
    """Run a validator (or ``status``)."""
    return entry(argv, build_parser, _run, status_command("validator", build_parser, DATA_DIR))


def _chain(shared: SharedConfig, signer) -> Chain:
    """The chain as the validator's own hotkey (it sets weights)."""
    return open_chain(
        shared.chain_spec,
        shared.netuid,
        hotkey=signer.hotkey,
        wallet=(shared.wallet_name, shared.wallet_hotkey, shared.wallet_path),
    )


def _run(args: argparse.Namespace) -> int:
    ready = begin(args, "validator", DATA_DIR, _chain)
    if isinstance(ready, int):
        return ready
    shared, signer, data_dir, chain = ready.shared, ready.signer, ready.data_dir, ready.chain
    params = ValidationParams(
        sample_size=args.sample_size,
        ema_alpha=args.ema_alpha,
        fabrication_threshold=args.fabrication_threshold,
        false_penalty=args.false_penalty,
        limits=ReadLimits(
            max_file_bytes=int(args.max_listings_mb * MB),
            max_rows=args.max_rows,
            max_decoded_bytes=int(args.max_decoded_mb * MB),
            max_metadata_bytes=int(args.max_metadata_kb * 1024),
        ),
    )
    config = ValidatorConfig(
        data_dir=data_dir,
        grace=args.grace,
        max_lag=args.max_lag,
        download_concurrency=args.download_concurrency,
        refetch_concurrency=args.refetch_concurrency,
        poll_interval=args.poll_interval,
        limits=DownloadLimits(
            max_listings_bytes=int(args.max_listings_mb * MB),
            max_metadata_bytes=int(args.max_metadata_kb * 1024),
            per_miner_timeout=args.download_timeout,
        ),
        sandbox=SandboxLimits(memory_mb=args.judge_memory_mb, seconds=args.judge_timeout, workers=args.judge_workers),
        params=params,
        keep_epochs=args.keep_epochs,
    )
    api = ResiApiClient(shared.api_url, signer, timeout=shared.api_timeout)
    source = source_from_args(args)
    state = ValidatorState(data_dir / "state.db")
    metrics, heartbeat = ValidatorMetrics(), Heartbeat()
    keeper = WeightKeeper(
        chain,
        state,
        signer.hotkey,
        WEIGHTS_VERSION_KEY,
        WeightSchedule(resync_blocks=args.resync_blocks, margin_blocks=args.margin_blocks, poll_seconds=args.weights_poll),
        wallet_hint=shared.btcli_flags,
        metrics=metrics,
    )
    validator = Validator(signer.hotkey, api, chain, source, state, config, keeper=keeper, metrics=metrics, heartbeat=heartbeat)
    monitor = start_monitoring(
        args, metrics.registry, heartbeat, {"/": lambda: validator_page(signer.hotkey, data_dir / "state.db")}
    )
    logger.info(
        f"validator {signer.hotkey} (netuid {shared.netuid}, chain {shared.chain_spec}) against "
        f"{shared.api_url}, source {source.origin}, data in {data_dir}"
    )

    async def cleanup() -> None:
        await api.close()
        await chain.close()

    # Scores are committed per epoch: an epoch interrupted now resumes with its stored inputs on restart.
    try:
        asyncio.run(run_until_signal(validator.run, 5.0, source.close, cleanup))
    finally:
        if monitor is not None:
            monitor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
