"""The flags both neurons share, with bittensor's dotted names, and their environment variables.

Plain argparse: the SDK no longer adds flags. Every flag can also come from the environment (named in
its help text) so that pm2 ecosystem files and systemd units keep secrets and paths out of command lines.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from resi import constants as c


def env(*names: str, default: str | None = None) -> str | None:
    """The first of the environment variables ``names`` that is set and non-empty, else ``default``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def env_int(*names: str, default: int) -> int:
    value = env(*names)
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise SystemExit(f"environment variable {names[0]} must be an integer, got {value!r}") from None


def env_float(*names: str, default: float) -> float:
    value = env(*names)
    try:
        return float(value) if value is not None else default
    except ValueError:
        raise SystemExit(f"environment variable {names[0]} must be a number, got {value!r}") from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the description's line breaks."""


def add_shared_args(parser: argparse.ArgumentParser) -> None:
    """Add the flags every neuron takes."""
    net = parser.add_argument_group("network and wallet")
    net.add_argument(
        "--netuid", type=int, default=env_int("NET_UID", "RESI_NETUID", default=c.NETUID),
        help=f"subnet uid: {c.NETUID} on finney, {c.TESTNET_NETUID} on testnet [env NET_UID]",
    )
    net.add_argument(
        "--wallet.name", dest="wallet_name", default=env("BT_WALLET_NAME", default="default"),
        help="wallet (coldkey) name [env BT_WALLET_NAME]",
    )
    net.add_argument(
        "--wallet.hotkey", dest="wallet_hotkey", default=env("BT_WALLET_HOTKEY", default="default"),
        help="hotkey name inside the wallet [env BT_WALLET_HOTKEY]",
    )
    net.add_argument(
        "--wallet.path", dest="wallet_path", default=env("BT_WALLET_PATH", default="~/.bittensor/wallets"),
        help="folder that holds the wallets [env BT_WALLET_PATH]",
    )
    net.add_argument(
        "--subtensor.network", dest="subtensor_network", default=env("BT_NETWORK", default="finney"),
        help="finney, test or local [env BT_NETWORK]",
    )
    net.add_argument(
        "--subtensor.chain_endpoint", dest="subtensor_chain_endpoint", default=env("BT_CHAIN_ENDPOINT"),
        help="overrides --subtensor.network: a ws:// or wss:// endpoint, or sim:PATH for the simulated chain "
        "of a local network [env BT_CHAIN_ENDPOINT]",
    )
    api = parser.add_argument_group("Resi API")
    api.add_argument(
        "--api.url", dest="api_url", default=env("RESI_API_URL", "API_BASE_URL", default=c.DEFAULT_API_URL),
        help="base URL of the Resi Labs API [env RESI_API_URL or API_BASE_URL]",
    )
    api.add_argument(
        "--api.timeout", dest="api_timeout", type=float, default=env_float("RESI_API_TIMEOUT", default=30.0),
        help="seconds before one API request is abandoned (then retried) [env RESI_API_TIMEOUT]",
    )
    log = parser.add_argument_group("logging")
    log.add_argument("--logging.debug", dest="logging_debug", action="store_true", help="log at DEBUG level")
    log.add_argument("--logging.trace", dest="logging_trace", action="store_true", help="log at TRACE level")
    log.add_argument(
        "--logging.file", dest="logging_file", type=Path, default=env("RESI_LOG_FILE"),
        help="also write logs to this file (rotated at 50 MB) [env RESI_LOG_FILE]",
    )


@dataclass(frozen=True)
class SharedConfig:
    netuid: int
    wallet_name: str
    wallet_hotkey: str
    wallet_path: str
    network: str
    chain_endpoint: str | None
    api_url: str
    api_timeout: float
    debug: bool
    trace: bool
    log_file: Path | None

    @property
    def chain_spec(self) -> str:
        """What :func:`resi.chain.open_chain` takes: the endpoint if given, else the network name."""
        return self.chain_endpoint or self.network

    @property
    def btcli_flags(self) -> str:
        """The flags that point ``btcli`` at this neuron's wallet and chain (in one-line fixes)."""
        flags = f"--wallet.name {self.wallet_name} --wallet.hotkey {self.wallet_hotkey}"
        if self.wallet_path != "~/.bittensor/wallets":
            flags += f" --wallet.path {self.wallet_path}"
        if self.chain_endpoint:
            flags += f" --subtensor.chain_endpoint {self.chain_endpoint}"
        elif self.network != "finney":
            flags += f" --subtensor.network {self.network}"
        return flags

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SharedConfig:
        return cls(
            netuid=args.netuid,
            wallet_name=args.wallet_name,
            wallet_hotkey=args.wallet_hotkey,
            wallet_path=args.wallet_path,
            network=args.subtensor_network,
            chain_endpoint=args.subtensor_chain_endpoint,
            api_url=args.api_url.rstrip("/"),
            api_timeout=args.api_timeout,
            debug=args.logging_debug,
            trace=args.logging_trace,
            log_file=Path(args.logging_file) if args.logging_file else None,
        )
