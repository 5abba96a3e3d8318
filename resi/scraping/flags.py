"""The listing source's flags, shared by the miner, the validator and ``python -m resi.scraping``."""

from __future__ import annotations

import argparse

from resi.config import POSITIVE, env, number
from resi.scraping.realtor import RealtorSource


def add_source_args(parser: argparse.ArgumentParser, title: str) -> None:
    s = parser.add_argument_group(title)
    s.add_argument(
        "--source.url",
        dest="source_url",
        default=env("RESI_SOURCE_URL"),
        help="listing site origin; default Realtor.com, the local listing site in a local network [env RESI_SOURCE_URL]",
    )
    s.add_argument(
        "--source.proxy",
        dest="source_proxy",
        default=env("RESI_PROXY_URL"),
        help="HTTP(S) proxy URL, credentials included; prefer the environment [env RESI_PROXY_URL]",
    )
    s.add_argument(
        "--source.max_rps",
        dest="source_max_rps",
        type=number(float, 0),
        default=env("RESI_SOURCE_MAX_RPS", default="4"),
        help="requests per second to the source, at most; 0: no cap (a local site only) [env RESI_SOURCE_MAX_RPS]",
    )
    s.add_argument(
        "--source.timeout",
        dest="source_timeout",
        type=POSITIVE,
        default=15.0,
        help="seconds before one request to the source is abandoned (then retried)",
    )


def source_from_args(args: argparse.Namespace) -> RealtorSource:
    return RealtorSource(args.source_url, proxy=args.source_proxy, max_rps=args.source_max_rps, timeout=args.source_timeout)
