"""Real servers for tests, as subprocesses on free loopback ports (stopped by the fixtures that start them)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from resi.api.client import ResiApiClient
from resi.chain.keys import create_wallet
from resi.chain.store import SimulatedChainStore
from resi.localnet.procs import ManagedProcess, python_module
from resi.processes import free_port
from resi.storage.seaweed import LocalS3
from tests.kit import ROOT


class ApiServer:
    """``python -m resi.api.server`` against the session's SeaweedFS, with buckets of its own."""

    def __init__(self, workdir: Path, chain_path: Path | str, s3: LocalS3, *extra: str, prefix: tuple[str, ...] = ()):
        """``chain_path``: the simulated chain file, or any chain spec (``ws://...`` for a node).
        ``prefix``: a command the server runs under (``prlimit --fsize=...``)."""
        self.prefix = list(prefix)
        self.workdir = workdir
        self.chain = str(chain_path)
        self.s3 = s3
        self.extra = list(extra)
        # Shared by every server of the session: isolation comes from each test's own hotkeys (prefixes).
        self.data_bucket = "resi-test-data"
        self.validator_bucket = "resi-test-validated"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None

    def start(self) -> ApiServer:
        args = python_module(
            "resi.api.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.workdir / "api-state"),
            "--chain",
            self.chain,
            "--s3-endpoint",
            self.s3.endpoint,
            "--data-bucket",
            self.data_bucket,
            "--validator-bucket",
            self.validator_bucket,
            "--metagraph-ttl",
            "1",
            *self.extra,
        )
        env = {"RESI_S3_ACCESS_KEY": self.s3.access_key, "RESI_S3_SECRET_KEY": self.s3.secret_key}
        self.process = ManagedProcess("api", [*self.prefix, *args], self.workdir / "api.log", env).start()
        self.process.wait_http(self.url + "/healthcheck")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self, kill: bool = False) -> None:
        """Stop (``kill``: SIGKILL, nothing to clean up) and start again on the same state."""
        if kill and self.process is not None and self.process.proc is not None:
            self.process.proc.kill()
            self.process.proc.wait()
        self.stop()
        self.start()


class SiteThread:
    """The local listing site served from a background thread of this process (its state is inspectable)."""

    def __init__(self, config, faults=None):
        from resi.localnet.site import Faults, build_site
        from resi.localnet.world import ListingWorld

        self.world = ListingWorld(config)
        self.app = build_site(self.world, faults or Faults())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = None
        self._thread = None

    @property
    def state(self):
        from resi.localnet.site import STATE

        return self.app[STATE]

    def __enter__(self) -> SiteThread:
        import asyncio
        import threading

        from aiohttp import web

        ready = threading.Event()

        def serve():
            self._loop = asyncio.new_event_loop()
            runner = web.AppRunner(self.app, access_log=None)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._runner = runner
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def truth(self, zipcode: str) -> list[dict]:
        """The site's current for-sale listings of ``zipcode``, in Realtor's shape."""
        import time

        from resi.localnet.world import to_realtor

        return [to_realtor(h, self.url) for h in self.world.current(zipcode, time.time())]


class _LoopThread:
    """An asyncio loop in a daemon thread, for servers that live beside a test."""

    def __init__(self):
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class TcpProxy(_LoopThread):
    """Forwards loopback TCP to ``target_port``; while ``up`` is False, connections are cut at once."""

    def __init__(self, target_port: int):
        super().__init__()
        self.target_port = target_port
        self.up = True
        self.refused = 0
        self.port = free_port()
        self.server = self.call(self._start())

    async def _start(self):
        import asyncio

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer):
            if not self.up:
                self.refused += 1
                writer.transport.abort()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                writer.transport.abort()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        return await asyncio.start_server(handle, "127.0.0.1", self.port)

    def close(self) -> None:
        self.call(self._stop())
        super().close()

    async def _stop(self):
        self.server.close()


class FaultyHttpProxy(_LoopThread):
    """A reverse proxy to ``target`` that answers the next requests with scripted faults.

    ``faults`` is a list of ``(path_substring, status, body)``: a request whose path contains the substring
    takes the first matching fault (which is then used up) instead of reaching the target.
    """

    def __init__(self, target: str):
        super().__init__()
        self.target = target.rstrip("/")
        self.faults: list[tuple[str, int, str]] = []
        self.faulted = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runner = self.call(self._start())

    async def _start(self):
        import aiohttp
        from aiohttp import web

        async def handle(request: web.Request):
            for i, (part, status, body) in enumerate(self.faults):
                if part in request.path:
                    del self.faults[i]
                    self.faulted += 1
                    headers = {"Retry-After": "1"} if status == 429 else {}
                    return web.Response(status=status, text=body, content_type="application/json", headers=headers)
            async with aiohttp.ClientSession() as session:
                async with session.request(
                    request.method,
                    self.target + request.path_qs,
                    data=await request.read(),
                    headers={"Content-Type": request.headers.get("Content-Type", "")},
                ) as r:
                    body = await r.read()
                    headers = {k: v for k, v in r.headers.items() if k.lower().startswith("x-ratelimit")}
                    return web.Response(status=r.status, body=body, content_type="application/json", headers=headers)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    def close(self) -> None:
        self.call(self.runner.cleanup())
        super().close()


class ChainNode:
    """``python -m resi.chain.node``: the local subtensor node over a simulated chain file."""

    def __init__(self, workdir: Path, chain_path: Path, *extra: str, port: int | None = None):
        self.extra = list(extra)
        self.workdir = workdir
        self.chain_path = chain_path
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None

    def start(self) -> ChainNode:
        args = python_module(
            "resi.chain.node", "--chain", str(self.chain_path), "--port", str(self.port), "--logging.debug", *self.extra
        )
        self.process = ManagedProcess("chain-node", args, self.workdir / "chain-node.log").start()
        self.process.wait_http(f"http://127.0.0.1:{self.port}/health")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class ApiNet:
    """A simulated chain with eight miners, three validators and an unregistered key, and the reference API server
    on it; :meth:`client` is the real client for one of them."""

    def __init__(self, root, s3, *server_args: str):
        self.root = root
        self.chain = SimulatedChainStore(root / "chain.db", create=True)
        self.miners = [create_wallet(root / "w", f"miner{i}") for i in range(8)]
        self.validators = [create_wallet(root / "w", f"val{i}") for i in range(3)]
        self.stranger = create_wallet(root / "w", "stranger")
        for m in self.miners:
            self.chain.register(m.hotkey, m.coldkey, stake=1)
        for v in self.validators:
            self.chain.register(v.hotkey, v.coldkey, stake=1000, validator=True)
        self.server = ApiServer(
            root, root / "chain.db", s3, "--listings-scale", "0.05", "--target-listings", "500", *server_args
        ).start()

    def client(self, signer, **kw) -> ResiApiClient:
        return ResiApiClient(self.server.url, signer, max_attempts=2, backoff_base=0.05, **kw)


class NeuronWorld:
    """A simulated chain with a miner, a validator with a permit and one without, an unregistered key, and the
    reference API server on it; :meth:`neuron` runs ``neurons/<script>`` against them (a short command such as
    ``--check`` or ``status``) and says how long it took."""

    def __init__(self, root: Path, s3):
        self.root = root
        self.wallets = root / "wallets"
        self.chain = SimulatedChainStore(root / "chain.db", create=True)
        self.miner = create_wallet(self.wallets, "miner")
        self.validator = create_wallet(self.wallets, "validator")
        self.small = create_wallet(self.wallets, "small")
        self.stranger = create_wallet(self.wallets, "stranger")
        self.chain.register(self.miner.hotkey, self.miner.coldkey, stake=1)
        self.chain.register(self.validator.hotkey, self.validator.coldkey, stake=1000, validator=True)
        self.chain.register(self.small.hotkey, self.small.coldkey, stake=1)
        self.server = ApiServer(root, root / "chain.db", s3, "--listings-scale", "0.05").start()

    def neuron(
        self, script: str, wallet: str, *extra: str, chain: str | None = None, api: str | None = None
    ) -> tuple[subprocess.CompletedProcess, float]:
        data = ["--miner.data_dir" if script == "miner.py" else "--validator.data_dir", str(self.root / wallet)]
        started = time.monotonic()
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "neurons" / script),
                "--wallet.name",
                wallet,
                "--wallet.path",
                str(self.wallets),
                "--subtensor.chain_endpoint",
                chain or f"sim:{self.chain.path}",
                "--api.url",
                api or self.server.url,
                *data,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        return out, time.monotonic() - started
