"""Start a whole local subnet 46 with one command: SeaweedFS (S3), the simulated chain, the reference Resi
API, the local listing site, miners and validators. After each epoch a summary table is printed.

    python -m resi.localnet [--miners 3] [--validators 2] [--epoch-minutes 3] [--epochs K]
                            [--cheaters fabricate,copy,...|all] [--run-dir DIR]

Every process logs to RUN_DIR/logs/<name>.log. Ctrl-C stops everything. With --epochs K it stops after K
full epochs (begun after the neurons started) were validated, writes RUN_DIR/summary.json and exits
non-zero if a process failed.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from loguru import logger

from resi.config import Parser
from resi.constants import NETUID
from resi.epochs import epoch_at, epoch_from_id, utcnow
from resi.localnet.cheaters import STRATEGIES
from resi.localnet.network import VALIDATOR_BUCKET, LocalNetwork, NetworkConfig, Participant
from resi.localnet.summary import epoch_summary, render, results_of, run_verdict, weights_set, write
from resi.logs import setup_logging
from resi.miner.checkpoint import miner_epochs
from resi.validator.weights import WeightSchedule


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m resi.localnet", description=__doc__)
    p.add_argument("--run-dir", type=Path, default=None, help="folder for everything (default ./localnet-run/<time>)")
    p.add_argument("--miners", type=int, default=3, help="honest miners")
    p.add_argument("--validators", type=int, default=2, help="validators")
    p.add_argument("--epoch-minutes", type=float, default=3.0, help="epoch length (4 hours in production)")
    p.add_argument("--epochs", type=int, default=0, help="stop after this many validated epochs (0: run until Ctrl-C)")
    p.add_argument("--cheaters", default="", help=f"cheating miners to add: 'all' or some of {', '.join(STRATEGIES)}")
    p.add_argument("--scale", type=float, default=0.05, help="listing counts as a share of production (10,000)")
    p.add_argument("--seed", default="resi", help="the listing site's world seed")
    p.add_argument("--block-seconds", type=float, default=12.0, help="seconds per block of the simulated chain")
    p.add_argument(
        "--chain",
        choices=("sim", "node"),
        default="sim",
        help="sim: neurons read the chain file; node: through the local subtensor node's websocket "
        "with the bittensor SDK, as on finney",
    )
    p.add_argument(
        "--replace-after",
        type=int,
        default=0,
        metavar="K",
        help="after K validated epochs a new hotkey takes the last honest miner's uid (0: never)",
    )
    p.add_argument(
        "--page-port",
        type=int,
        default=0,
        help="port of the network's status page on 127.0.0.1 (0: a free one; the URL is printed at start)",
    )
    p.add_argument(
        "--site-faults",
        default="",
        help="fault rates of the listing site, e.g. 'rate_limit=0.05,"
        "server_error=0.02' (see python -m resi.localnet.site --help)",
    )
    return p


def parse_faults(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out


PROGRESS_SECONDS = 20.0


def progress_line(net: LocalNetwork, length: timedelta) -> str:
    """Where the epoch is, and each honest miner's zipcodes done in it (from their checkpoints)."""
    epoch = epoch_at(utcnow(), length)
    parts = []
    for p in net.participants:
        if p.role != "miner" or p.strategy:
            continue
        try:
            recent = miner_epochs(net.run_dir / "miners" / p.name / "checkpoint.db", 1)
        except sqlite3.Error:  # the miner is writing it: said on the next progress line
            recent = []
        now = recent[0] if recent and recent[0]["epoch_id"] == epoch.id else None
        parts.append(f"{p.name} {now['zipcodes_done']} of {now['zipcodes']}" if now else f"{p.name} not begun")
    return (
        f"epoch {epoch.id} ends {epoch.end:%H:%M:%S} UTC (in {(epoch.end - utcnow()).total_seconds():.0f} s); "
        "zipcodes scraped by the honest miners: " + ", ".join(parts)
    )


@dataclass
class Cast:
    """Who takes part in a local network."""

    honest: list[Participant]
    cheats: list[Participant]
    validators: list[Participant]


def start(net: LocalNetwork, args: argparse.Namespace, cheaters: list[str]) -> Cast:
    """The servers, every participant registered, then every neuron started (validators last)."""
    net.start_infrastructure()
    cast = Cast(
        [net.register(f"miner{i + 1}") for i in range(args.miners)],
        [net.register(f"cheat-{name}") for name in cheaters],
        [net.register(f"validator{i + 1}", validator=True) for i in range(args.validators)],
    )
    net.start_api()
    for p in cast.honest:
        net.start_miner(p)
    for p, name in zip(cast.cheats, cheaters):
        if name == "nothing":
            p.strategy = name  # registered, never uploads
        else:
            net.start_cheater(p, name, victim=cast.honest[0] if cast.honest else None)
    for p in cast.validators:
        net.start_validator(p)
    return cast


def announce(net: LocalNetwork, args: argparse.Namespace, cast: Cast) -> None:
    """The status page served, ``network.json`` written, and where everything is."""
    page = net.serve_page(args.page_port)
    net.write_description()
    run_dir = net.run_dir
    logger.info(f"local network up: run folder {run_dir}, API {net.api_url}, site {net.site_url}")
    logger.info(
        f"status page: {page} (one row per miner: score, EMA, weight, the verdict in words and its "
        "own upload record; the EMA chart; each validator; every neuron's /metrics and /healthz linked)"
    )
    logger.info(
        f"logs: {run_dir / 'logs'}; chain {net.chain_spec}; metagraph: "
        f"{sys.executable} -m resi.chain.local show --chain {net.chain_path}"
    )
    logger.info(
        f"{len(cast.honest)} miners, {len(cast.cheats)} cheaters, {len(cast.validators)} validators; epochs "
        f"of {args.epoch_minutes:g} min. Ctrl-C stops everything."
    )


def note_failures(net: LocalNetwork, failed: list[str]) -> None:
    """Add to ``failed`` (and log) every process that ended by itself since the last look."""
    for p in net.participants:
        if p.role != "replaced" and p.process is not None and not p.process.running and p.name not in failed:
            failed.append(p.name)
            logger.error(f"{p.name} exited with code {p.process.returncode}; see {p.process.log_path}")
    for name, proc in (("api", net.api), ("site", net.site), ("chain-node", net.node)):
        if proc is not None and not proc.running and name not in failed:
            failed.append(name)
            logger.error(f"{name} exited with code {proc.returncode}")


class Reporter:
    """Prints each epoch once every validator has written its results (and set its weights, or a few
    rate-limit windows passed); keeps the counted ones (begun after every neuron answered on its ``/healthz``:
    made when they have)."""

    def __init__(self, net: LocalNetwork, validators: list[Participant], length: timedelta, block_seconds: float):
        self.net, self.validators, self.length = net, validators, length
        self.neurons_up = utcnow()
        self.settle = 2 * (net.config.subnet_params["weights_rate_limit"] + WeightSchedule().margin_blocks) * block_seconds + 10
        self.summaries: list[dict] = []
        self._reported: set[str] = set()
        self._first_seen: dict[str, float] = {}

    def report_new(self, failed: list[str]) -> None:
        if not self.validators:
            return
        documents = {v.name: results_of(self.net, v) for v in self.validators}
        for epoch_id in sorted(set.intersection(*(set(d) for d in documents.values())) - self._reported):
            seen = self._first_seen.setdefault(epoch_id, time.monotonic())
            if not all(weights_set(self.net, v, epoch_id) for v in self.validators) and time.monotonic() - seen < self.settle:
                continue  # the chain's rate limit may hold the weights back for a few blocks
            summary = epoch_summary(self.net, epoch_id, {v: documents[v][epoch_id] for v in documents})
            self._reported.add(epoch_id)
            if epoch_from_id(epoch_id, self.length).start < self.neurons_up:
                summary["note"] = "began before the network was up: not one of the epochs this run counts"
                print(render(summary), flush=True)
                continue
            self.summaries.append(summary)
            print(render(summary), flush=True)
            write(self.net.run_dir, self.summaries, failed)


def closing_lines(net: LocalNetwork, summaries: list[dict], failed: list[str]) -> None:
    print(run_verdict(summaries, failed), flush=True)
    run_dir = net.run_dir
    logger.info(f"the tables and the verdict: {run_dir / 'summary.txt'}; every figure: {run_dir / 'summary.json'}")
    if summaries:
        logger.info(
            f"validated listings of each epoch (listings.parquet, observations.parquet, manifest.json): "
            f"{run_dir / 'validators'}/<validator>/validated/<epoch>/, uploaded to S3 as "
            f"validators/<hotkey>/<epoch>/validated/ in bucket {VALIDATOR_BUCKET}"
        )
        logger.info(
            f"query them: {sys.executable} -m resi.data --mirror {run_dir / 'data'} sync --from "
            f"{run_dir / 'validators'} --subtensor.chain_endpoint {net.chain_spec} --netuid {NETUID} && "
            f"{sys.executable} -m resi.data --mirror {run_dir / 'data'} sql "
            '"SELECT zipcode, count(*) AS listings, median(price) FROM latest GROUP BY zipcode"'
        )
    if failed:
        logger.error(f"failed: {', '.join(failed)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(name="localnet")
    cheaters = list(STRATEGIES) if args.cheaters == "all" else [c for c in args.cheaters.split(",") if c]
    unknown = [c for c in cheaters if c not in STRATEGIES]
    if unknown:
        print(f"unknown cheaters: {', '.join(unknown)} (known: {', '.join(STRATEGIES)})", file=sys.stderr)
        return 2
    if args.validators < 1 and args.epochs:
        print("--epochs needs at least one validator", file=sys.stderr)
        return 2
    run_dir = (args.run_dir or Path("localnet-run") / time.strftime("%Y%m%d-%H%M%S")).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".gitignore").write_text("# a local network's run: nothing here belongs in git\n*\n")
    net = LocalNetwork(
        NetworkConfig(
            run_dir=run_dir,
            epoch_minutes=args.epoch_minutes,
            listings_scale=args.scale,
            seed=args.seed,
            block_seconds=args.block_seconds,
            chain=args.chain,
            site_faults=parse_faults(args.site_faults),
        )
    )
    stopping = {"flag": False}

    def on_signal(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed: list[str] = []
    reporter: Reporter | None = None
    try:
        cast = start(net, args, cheaters)
        length = timedelta(minutes=args.epoch_minutes)
        announce(net, args, cast)
        net.wait_neurons_up()
        logger.info("every neuron is up: the epochs that begin from now on are counted")
        reporter = Reporter(net, cast.validators, length, args.block_seconds)
        stall_limit = 3 * args.epoch_minutes * 60 + 300  # no epoch validated for this long: something is stuck
        progressed, counted, said_at = time.monotonic(), 0, 0.0
        while not stopping["flag"]:
            note_failures(net, failed)
            if time.monotonic() - said_at > PROGRESS_SECONDS:
                said_at = time.monotonic()
                logger.info(progress_line(net, length))
            reporter.report_new(failed)
            done = len(reporter.summaries)
            if args.replace_after and done == args.replace_after and cast.honest and cast.honest[-1].role == "miner":
                old = cast.honest[-1]  # not the copy cheater's victim (honest[0])
                successor = net.replace(old, f"{old.name}-successor")
                net.write_description()
                logger.info(f"{successor.name} ({successor.signer.hotkey}) took uid {successor.uid} from {old.name}")
            if args.epochs and done >= args.epochs:
                break
            if done > counted:
                progressed, counted = time.monotonic(), done
            if args.epochs and time.monotonic() - progressed > stall_limit:
                logger.error(
                    f"no epoch validated in {stall_limit:.0f} s ({done} of {args.epochs} so far): "
                    f"see the logs in {run_dir / 'logs'}"
                )
                failed.append("stalled")
                break
            time.sleep(2)
    except Exception:
        logger.exception("the local network failed")
        failed.append("localnet")
    finally:
        summaries = reporter.summaries if reporter else []
        why = (
            "asked to stop (Ctrl-C or SIGTERM)"
            if stopping["flag"]
            else ("the epochs asked for are done" if args.epochs and len(summaries) >= args.epochs else "a failure")
        )
        logger.info(f"stopping every process: {why}")
        net.stop()
        write(run_dir, summaries, failed)
    closing_lines(net, summaries, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
