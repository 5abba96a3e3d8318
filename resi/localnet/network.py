"""A whole local subnet as real processes: SeaweedFS, the simulated chain, the reference API server, the
local listing site, miners and validators, each logging to its own file in the run folder.

Used by ``python -m resi.localnet`` and by the end-to-end tests. Every process is started in its own
process group and dies with its parent; :meth:`LocalNetwork.stop` stops them all.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from resi.chain.keys import KeypairSigner, create_wallet
from resi.chain.store import SimulatedChainStore
from resi.constants import NETUID
from resi.localnet.procs import ManagedProcess, python_module, wait_all
from resi.monitor.server import MonitorServer
from resi.pages import network_page
from resi.processes import free_port
from resi.storage.seaweed import LocalS3

DATA_BUCKET = "resi-sn46-data"
VALIDATOR_BUCKET = "resi-sn46-validated"
NEURON_START_SECONDS = 300.0
"""How long a neuron may take from launch to answering on its ``/healthz`` (its start-up checks done, its loop
about to run) before the local network gives up on it."""


@dataclass
class NetworkConfig:
    run_dir: Path
    epoch_minutes: float = 3.0
    listings_scale: float = 0.05
    """Per-zipcode counts are the production 200..3000 times this; the target scales with it."""
    seed: str = "resi"
    block_seconds: float = 12.0
    chain: str = "sim"
    """``sim``: neurons read the chain file directly; ``node``: through the local subtensor node's websocket
    (:mod:`resi.chain.node`), with the bittensor SDK, as on finney."""
    site_faults: dict = field(default_factory=dict)
    """Fault rates of the listing site, e.g. ``{"rate_limit": 0.05}`` (see ``resi.localnet.site.Faults``)."""
    api_args: list[str] = field(default_factory=list)

    @property
    def target_listings(self) -> int:
        return max(20, round(10_000 * self.listings_scale))

    @property
    def subnet_params(self) -> dict:
        """The subnet's hyperparameters on this chain: finney's rules, its block counts scaled to the epoch
        (an epoch is a tempo; weights may be set about three times per epoch)."""
        blocks = max(3, round(self.epoch_minutes * 60 / self.block_seconds))
        return {"tempo": blocks, "weights_rate_limit": max(1, blocks // 3), "immunity_period": blocks * 4}

    @property
    def churn(self) -> float:
        """Lifecycles sped up so that one local epoch sees the change of four real hours."""
        return 240.0 / self.epoch_minutes


@dataclass
class Participant:
    name: str
    signer: KeypairSigner
    uid: int
    process: ManagedProcess | None = None
    role: str = "miner"
    """``miner``, ``validator``, or ``replaced`` (its uid went to another hotkey)."""
    strategy: str | None = None
    successor_of: str | None = None
    """The participant whose uid this one took over."""
    monitor_url: str | None = None
    """Its ``/metrics``, ``/healthz`` (and, for validators, status page) origin."""


class LocalNetwork:
    def __init__(self, config: NetworkConfig, s3: LocalS3 | None = None):
        self.config = config
        self.run_dir = config.run_dir
        self.logs = self.run_dir / "logs"
        self._own_s3 = s3 is None
        self.s3 = s3
        self.chain_path = self.run_dir / "chain.db"
        self.chain_spec = f"sim:{self.chain_path}"
        """What neurons and the API server are given as their chain."""
        self.node: ManagedProcess | None = None
        self.wallet_path = self.run_dir / "wallets"
        self.api: ManagedProcess | None = None
        self.site: ManagedProcess | None = None
        self.api_url = self.site_url = ""
        self.api_monitor_url: str | None = None
        self.page: MonitorServer | None = None
        self.participants: list[Participant] = []

    # --- infrastructure ----------------------------------------------------------------------------------------

    def start_infrastructure(self) -> None:
        """S3 (unless given), the chain file and the listing site. Register neurons, then :meth:`start_api`:
        the server then knows every hotkey from its first request."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.s3 is None:
            self.s3 = LocalS3(self.run_dir / "s3").start(buckets=[DATA_BUCKET, VALIDATOR_BUCKET])
            logger.info(f"SeaweedFS S3 at {self.s3.endpoint}")
        self.chain = SimulatedChainStore(self.chain_path, block_seconds=self.config.block_seconds, create=True)
        self.chain.set_params(NETUID, **self.config.subnet_params)
        self.chain.block()
        if self.config.chain == "node":
            self.start_node()
        self.start_site()

    def start_node(self) -> None:
        port = free_port()
        self.chain_spec = f"ws://127.0.0.1:{port}"
        self.node = ManagedProcess(
            "chain-node",
            python_module("resi.chain.node", "--chain", str(self.chain_path), "--port", str(port)),
            self.logs / "chain-node.log",
        ).start()
        self.node.wait_http(f"http://127.0.0.1:{port}/health")
        logger.info(f"local subtensor node at {self.chain_spec}")

    def start_site(self) -> None:
        port = free_port()
        self.site_url = f"http://127.0.0.1:{port}"
        args = python_module(
            "resi.localnet.site",
            "--port",
            str(port),
            "--seed",
            self.config.seed,
            "--scale",
            str(self.config.listings_scale),
            "--churn",
            str(self.config.churn),
            "--request-log",
            str(self.run_dir / "site-requests.jsonl"),
        )
        for name, value in self.config.site_faults.items():
            args += [f"--fault-{name.replace('_', '-')}", str(value)]
        self.site = ManagedProcess("site", args, self.logs / "site.log").start()
        self.site.wait_http(self.site_url + "/healthz")
        logger.info(f"listing site at {self.site_url}")

    def start_api(self) -> None:
        if self.s3 is None:
            raise RuntimeError("start_infrastructure first: the API needs S3")
        s3 = self.s3
        port, monitor_port = free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api_monitor_url = f"http://127.0.0.1:{monitor_port}"
        c = self.config
        args = python_module(
            "resi.api.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-dir",
            str(self.run_dir / "api"),
            "--chain",
            self.chain_spec,
            "--epoch-minutes",
            str(c.epoch_minutes),
            "--listings-scale",
            str(c.listings_scale),
            "--target-listings",
            str(c.target_listings),
            "--cooldown-hours",
            str(c.epoch_minutes * 6 / 60),
            "--s3-endpoint",
            s3.endpoint,
            "--data-bucket",
            DATA_BUCKET,
            "--validator-bucket",
            VALIDATOR_BUCKET,
            "--metagraph-ttl",
            "5",
            "--metrics.port",
            str(monitor_port),
            *c.api_args,
        )
        env = {"RESI_S3_ACCESS_KEY": s3.access_key, "RESI_S3_SECRET_KEY": s3.secret_key}
        self.api = ManagedProcess("api", args, self.logs / "api.log", env).start()
        self.api.wait_http(self.api_url + "/healthcheck")
        logger.info(f"Resi API reference server at {self.api_url}")

    # --- neurons -------------------------------------------------------------------------------------------------

    def register(self, name: str, validator: bool = False, uid: int | None = None) -> Participant:
        signer = create_wallet(self.wallet_path, name, "default")
        uid = self.chain.register(
            signer.hotkey, signer.coldkey, stake=10_000.0 if validator else 0.0, validator=validator, uid=uid
        )
        participant = Participant(name, signer, uid, role="validator" if validator else "miner")
        self.participants.append(participant)
        return participant

    def replace(self, old: Participant, name: str) -> Participant:
        """A new hotkey takes ``old``'s uid (as a deregistration and a registration do on the chain): ``old``
        is stopped, the newcomer registered at its uid and started as an honest miner."""
        if old.process is not None:
            old.process.stop(grace=30)
        new = self.register(name, uid=old.uid)
        old.role, new.successor_of = "replaced", old.name
        return self.start_miner(new)

    def _neuron_args(self, participant: Participant) -> list[str]:
        """What every neuron is started with; a fresh monitoring port each start."""
        port = free_port()
        participant.monitor_url = f"http://127.0.0.1:{port}"
        return [
            "--wallet.name",
            participant.name,
            "--wallet.hotkey",
            "default",
            "--wallet.path",
            str(self.wallet_path),
            "--subtensor.chain_endpoint",
            self.chain_spec,
            "--api.url",
            self.api_url,
            "--logging.debug",
            "--metrics.port",
            str(port),
        ]

    def miner_args(self, participant: Participant, *extra: str) -> list[str]:
        upload_margin = max(10.0, self.config.epoch_minutes * 60 * 0.2)
        return [
            *self._neuron_args(participant),
            "--miner.data_dir",
            str(self.run_dir / "miners" / participant.name),
            "--source.url",
            self.site_url,
            "--source.max_rps",
            "0",
            "--miner.upload_margin",
            f"{upload_margin:g}",
            "--miner.poll_interval",
            "5",
            "--miner.zipcode_retry_pause",
            "2",
            *extra,
        ]

    def start_miner(self, participant: Participant, *extra: str, module: str = "neurons/miner.py") -> Participant:
        script = (
            [sys.executable, str(Path(__file__).resolve().parents[2] / module)]
            if module.endswith(".py")
            else python_module(module)
        )
        participant.process = ManagedProcess(
            participant.name, [*script, *self.miner_args(participant, *extra)], self.logs / f"{participant.name}.log"
        ).start()
        return participant

    def add_miner(self, name: str, *extra: str) -> Participant:
        return self.start_miner(self.register(name), *extra)

    def start_cheater(self, participant: Participant, strategy: str, victim: Participant | None = None) -> Participant:
        participant.strategy = strategy
        extra = ["--strategy", strategy]
        if victim is not None:
            extra += ["--victim-dir", str(self.run_dir / "miners" / victim.name)]
        return self.start_miner(participant, *extra, module="resi.localnet.cheaters")

    def validator_dir(self, participant: Participant) -> Path:
        return self.run_dir / "validators" / participant.name

    def start_validator(self, participant: Participant, *extra: str) -> Participant:
        grace = max(5.0, self.config.epoch_minutes * 60 * 0.1)
        args = [
            sys.executable,
            str(Path(__file__).resolve().parents[2] / "neurons" / "validator.py"),
            *self._neuron_args(participant),
            "--validator.data_dir",
            str(self.validator_dir(participant)),
            "--validator.grace",
            f"{grace:g}",
            "--validator.poll_interval",
            "2",
            "--source.url",
            self.site_url,
            "--source.max_rps",
            "0",
            *extra,
        ]
        participant.process = ManagedProcess(participant.name, args, self.logs / f"{participant.name}.log").start()
        return participant

    def wait_neurons_up(self, timeout: float = NEURON_START_SECONDS) -> None:
        """Wait until every running neuron answers on its ``/healthz``: its start-up checks are done and its loop
        runs. RuntimeError naming the neuron, with the end of its log, if one exits or stays silent."""
        deadline = time.monotonic() + timeout
        for p in self.participants:
            if p.process is not None and p.monitor_url is not None:
                try:
                    p.process.wait_http(p.monitor_url + "/healthz", max(0.1, deadline - time.monotonic()))
                except RuntimeError as exc:
                    raise RuntimeError(f"{p.name} did not come up: {exc}") from None

    # --- teardown ------------------------------------------------------------------------------------------------

    def stop(self) -> dict[str, int | None]:
        """Stop every process (neurons first, then the servers); their exit codes by name."""
        codes: dict[str, int | None] = {}
        neurons = [(p.name, p.process) for p in self.participants if p.process is not None]
        for _, process in neurons:  # all at once: each finishes its work in flight while the others do
            process.signal(signal.SIGTERM)
        servers = [
            (name, proc) for name, proc in (("api", self.api), ("site", self.site), ("chain-node", self.node)) if proc is not None
        ]
        wait_all([process for _, process in neurons], 30)  # each one's time noted as it ends
        for name, process in [*neurons, *servers]:
            codes[name] = process.stop(grace=30, signalled=True)
            logger.info(f"{name}: {process.how}")
        if self._own_s3 and self.s3 is not None:
            self.s3.stop()
            logger.info("SeaweedFS (S3): stopped")
        if self.page is not None:
            self.page.stop()
        return codes

    def serve_page(self, port: int = 0) -> str:
        """The network's status page (every validator's epochs and EMA chart, every miner's epochs, links to
        each neuron's monitoring endpoint), served from this process; its URL."""
        self.page = MonitorServer("127.0.0.1", port, pages={"/": lambda: network_page(self.describe(), self.run_dir)})
        self.page.start()
        return self.page.url + "/"

    def describe(self) -> dict:
        return {
            "api_url": self.api_url,
            "site_url": self.site_url,
            "chain": str(self.chain_path),
            "chain_spec": self.chain_spec,
            "s3_endpoint": self.s3.endpoint if self.s3 else None,
            "api_monitor_url": self.api_monitor_url,
            "page_url": self.page.url + "/" if self.page else None,
            "participants": [
                {
                    "name": p.name,
                    "role": p.role,
                    "uid": p.uid,
                    "hotkey": p.signer.hotkey,
                    "strategy": p.strategy,
                    "monitor_url": p.monitor_url,
                }
                for p in self.participants
            ],
        }

    def write_description(self) -> Path:
        path = self.run_dir / "network.json"
        path.write_text(json.dumps(self.describe(), indent=2))
        return path
