"""The flags both neurons share, with bittensor's dotted names, and their environment variables.

Plain argparse: the SDK no longer adds flags. Every flag can also come from the environment (named in
its help text) so that pm2 ecosystem files and systemd units keep secrets and paths out of command lines.
"""

from __future__ import annotations

import argparse
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from resi import __version__
from resi import constants as c


def env(*names: str, default: str | None = None) -> str | None:
    """The first of the environment variables ``names`` that is set and non-empty, else ``default``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def number(kind: type = float, low: float | None = None, high: float | None = None, *, above: bool = False, below: bool = False):
    """An argparse ``type``: a number of ``kind`` in the range (``above``/``below``: the bound itself is out),
    refused with the allowed range otherwise."""
    left = "" if low is None else f"{'>' if above else '>='} {low:g}"
    right = "" if high is None else f"{'<' if below else '<='} {high:g}"
    allowed = f"{'an integer' if kind is int else 'a number'} {' and '.join(x for x in (left, right) if x)}".strip()

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if (
            value != value
            or (low is not None and (value <= low if above else value < low))
            or (high is not None and (value >= high if below else value > high))
        ):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


POSITIVE = number(float, 0, above=True)
"""Seconds, sizes: more than 0."""
COUNT = number(int, 1)
"""Workers, concurrency, sample sizes: at least 1."""
FRACTION = number(float, 0, 1)
"""Thresholds: 0 to 1."""
SECONDS = number(float, 0)
"""Pauses and margins: 0 or more."""


def chain_name(text: str) -> str:
    """``--subtensor.network``: a name bittensor knows or a ``ws(s)://`` endpoint (a typo is not a file)."""
    if text in c.NETWORKS or text.startswith(("ws://", "wss://")):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown network {text!r}: use one of {', '.join(c.NETWORKS)} or a ws:// or wss:// endpoint"
    )


def chain_endpoint(text: str) -> str:
    """``--subtensor.chain_endpoint``: a ``ws(s)://`` endpoint, or ``sim:PATH`` for a local network's chain."""
    if text.startswith(("ws://", "wss://", "sim:")):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not an endpoint: give ws://HOST:PORT, wss://HOST:PORT or sim:PATH")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the description's line breaks."""


class Parser(argparse.ArgumentParser):
    """A command line parser whose error is the one line that matters (with the nearest flag when one was
    mistyped), not the usage of every flag before it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        unknown = message.removeprefix("unrecognized arguments: ") if message.startswith("unrecognized") else ""
        flags = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        near = [difflib.get_close_matches(arg.split("=")[0], flags, n=1) for arg in unknown.split() if arg.startswith("-")]
        hint = "; did you mean " + " ".join(n[0] for n in near if n) + "?" if any(near) else ""
        self.exit(2, f"{self.prog}: {message}{hint} (every flag: {self.prog} --help)\n")


def add_shared_args(parser: argparse.ArgumentParser) -> None:
    """Add the flags every neuron takes."""
    net = parser.add_argument_group("network and wallet")
    net.add_argument(
        "--netuid",
        type=number(int, 0, 65535),
        default=env("NET_UID", "RESI_NETUID", default=str(c.NETUID)),
        help=f"subnet uid: {c.NETUID} on finney, {c.TESTNET_NETUID} on testnet [env NET_UID]",
    )
    net.add_argument(
        "--wallet.name",
        dest="wallet_name",
        default=env("BT_WALLET_NAME", default="default"),
        help="wallet (coldkey) name [env BT_WALLET_NAME]",
    )
    net.add_argument(
        "--wallet.hotkey",
        dest="wallet_hotkey",
        default=env("BT_WALLET_HOTKEY", default="default"),
        help="hotkey name inside the wallet [env BT_WALLET_HOTKEY]",
    )
    net.add_argument(
        "--wallet.path",
        dest="wallet_path",
        default=env("BT_WALLET_PATH", default="~/.bittensor/wallets"),
        help="folder that holds the wallets [env BT_WALLET_PATH]",
    )
    net.add_argument(
        "--subtensor.network",
        dest="subtensor_network",
        type=chain_name,
        default=env("BT_SUBTENSOR_NETWORK", "BT_NETWORK", default="finney"),
        help=f"{', '.join(c.NETWORKS)}, or a ws(s):// endpoint [env BT_SUBTENSOR_NETWORK or BT_NETWORK]",
    )
    net.add_argument(
        "--subtensor.chain_endpoint",
        dest="subtensor_chain_endpoint",
        type=chain_endpoint,
        default=env("BT_SUBTENSOR_CHAIN_ENDPOINT", "BT_CHAIN_ENDPOINT"),
        help="overrides --subtensor.network: a ws:// or wss:// endpoint, or sim:PATH for the simulated chain "
        "of a local network [env BT_SUBTENSOR_CHAIN_ENDPOINT or BT_CHAIN_ENDPOINT]",
    )
    api = parser.add_argument_group("Resi API")
    api.add_argument(
        "--api.url",
        dest="api_url",
        default=env("RESI_API_URL", "API_BASE_URL", default=c.DEFAULT_API_URL),
        help="base URL of the Resi Labs API [env RESI_API_URL or API_BASE_URL]",
    )
    api.add_argument(
        "--api.timeout",
        dest="api_timeout",
        type=POSITIVE,
        default=env("RESI_API_TIMEOUT", default="30"),
        help="seconds before one API request is abandoned (then retried) [env RESI_API_TIMEOUT]",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--check",
        action="store_true",
        help="only run the start-up checks (folder, chain, registration, API, clock), print what they "
        "found and exit: 0 when all pass, 2 otherwise",
    )
    run.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    log = parser.add_argument_group("logging")
    log.add_argument("--logging.debug", dest="logging_debug", action="store_true", help="log at DEBUG level")
    log.add_argument("--logging.trace", dest="logging_trace", action="store_true", help="log at TRACE level")
    log.add_argument(
        "--logging.file",
        dest="logging_file",
        type=Path,
        default=env("RESI_LOG_FILE"),
        help="write logs to this file instead of the default one (rotated at 50 MB) [env RESI_LOG_FILE]",
    )
    log.add_argument(
        "--logging.logging_dir",
        dest="logging_dir",
        type=Path,
        default=env("RESI_LOG_DIR"),
        help="folder of the neuron's log file, <role>.log, rotated at 50 MB, five kept (default: logs/ in its "
        "data folder) [env RESI_LOG_DIR]",
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
    log_dir: Path | None = None

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
            log_dir=Path(args.logging_dir).expanduser() if getattr(args, "logging_dir", None) else None,
        )


def data_dir(args: argparse.Namespace, default: str, hotkey: str) -> Path:
    """A neuron's data folder: its ``--<role>.data_dir``, else ``default`` (``~/.resi/<role>/{hotkey}``)."""
    return Path(args.data_dir or default.format(hotkey=hotkey)).expanduser()
