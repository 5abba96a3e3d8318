"""The subtensor runtime the local chain node speaks: real metadata, fetched once from PyPI.

The bittensor SDK's source distribution (``bittensor==11.3.0`` on PyPI, Apache-2.0) ships a recording of a
subtensor node in ``tests/fixtures/golden.json``: its runtime metadata (V15, spec 461), genesis hash and
versions. The node serves that metadata, so the unmodified SDK encodes and decodes exactly what it would
against finney. Nothing of it is kept in this repository: :func:`load` downloads the sdist once (pinned by
sha256) into ``$RESI_CACHE_DIR`` (default ``~/.cache/resi``) and keeps only the recording's metadata and
network facts there. ``python -m resi.chain.runtime`` does it ahead of time (the README's set-up commands run
it, so that tests and the local network never wait for it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

SDIST_URL = (
    "https://files.pythonhosted.org/packages/f3/76/166ec4263a7889df2bb8796a57187906cec3aa3079e235b9e60517041c51/"
    "bittensor-11.3.0.tar.gz"
)
SDIST_SHA256 = "8ce05029a712866048c6cf3e3d5df1592ac896175f5b4227f63044b7e7b7edb3"
GOLDEN_MEMBER = "bittensor-11.3.0/tests/fixtures/golden.json"
CACHE_FILE = "subtensor-runtime-461.json"


class RuntimeUnavailable(RuntimeError):
    """The runtime metadata could not be obtained (no cache and no way to download it)."""


@dataclass(frozen=True)
class RuntimeInfo:
    metadata: bytes
    """Raw ``MetadataVersioned`` bytes (magic ``meta``, V15)."""
    spec_version: int
    transaction_version: int
    ss58_format: int
    spec_name: str = "node-subtensor"

    def with_epoch_consensus(self) -> RuntimeInfo:
        """This runtime as newer ones are for the SDK: with ``SubtensorModule.SubnetEpochConsensus`` (a map by
        netuid, which the bittensor 11.3 SDK's ``SetWeights`` preflight reads and spec 461 lacks). The entry
        ``ConsensusByMechanism`` (a netuid-keyed map the SDK never reads, with a name of the same length)
        takes its name, so nothing else in the metadata moves; the node never stores a value there, so it
        reads as its default, which the SDK takes as Yuma consensus."""
        old, new = b"\x50ConsensusByMechanism", b"\x50SubnetEpochConsensus"  # SCALE str: compact length 20
        if self.metadata.count(old) != 1:
            raise RuntimeUnavailable("this runtime's metadata has no single ConsensusByMechanism entry to rename")
        return replace(self, metadata=self.metadata.replace(old, new))


def cache_dir() -> Path:
    return Path(os.environ.get("RESI_CACHE_DIR") or Path.home() / ".cache" / "resi")


def _strip_option_opaque(data: bytes) -> bytes:
    """The ``meta...`` bytes inside a SCALE ``Option<OpaqueMetadata>`` (as ``Metadata_metadata_at_version``
    returns them)."""
    if data[:4] == b"meta":
        return data
    if not data or data[0] != 1:
        raise RuntimeUnavailable("the recorded metadata is not an Option<OpaqueMetadata>")
    data = data[1:]
    mode = data[0] & 3
    offset = {0: 1, 1: 2, 2: 4}.get(mode, 1 + (data[0] >> 2) + 4)
    return data[offset:]


def download(timeout: float = 120.0) -> Path:
    """Fetch the sdist, check it, keep the recording's metadata and network facts; the cache file."""
    target = cache_dir() / CACHE_FILE
    try:
        with urllib.request.urlopen(SDIST_URL, timeout=timeout) as resp:
            archive = resp.read(20 * 1024 * 1024)
    except OSError as exc:
        raise RuntimeUnavailable(f"cannot download {SDIST_URL}: {exc}") from None
    digest = hashlib.sha256(archive).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeUnavailable(f"bittensor-11.3.0.tar.gz has sha256 {digest}, expected {SDIST_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(GOLDEN_MEMBER)
        if member is None:
            raise RuntimeUnavailable(f"{GOLDEN_MEMBER} is not in the sdist")
        golden = json.load(member)
    kept = {
        "source": SDIST_URL,
        "licence": "Apache-2.0 (the bittensor SDK's recording of a subtensor node)",
        "network": golden["network"],
        "v15_hex": golden["metadata"]["v15_hex"],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(kept, fh)
    os.replace(tmp, target)
    return target


@lru_cache(maxsize=1)
def load() -> RuntimeInfo:
    """The runtime, from the cache (downloaded on first use)."""
    path = cache_dir() / CACHE_FILE
    if not path.exists():
        download()
    try:
        kept = json.loads(path.read_text())
        network = kept["network"]
        metadata = _strip_option_opaque(bytes.fromhex(kept["v15_hex"].removeprefix("0x")))
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeUnavailable(f"{path} is unreadable ({exc}); delete it to download it again") from None
    return RuntimeInfo(
        metadata=metadata,
        spec_version=int(network["spec_version"]),
        transaction_version=int(network["transaction_version"]),
        ss58_format=int(network["ss58_format"]),
    )


def main(argv: list[str] | None = None) -> int:
    """Download the runtime metadata into the cache unless it is there (silent then)."""
    argparse.ArgumentParser(
        prog="python -m resi.chain.runtime",
        description=(
            "Fetch the subtensor runtime metadata the local chain node serves (once, from the bittensor 11.3.0 sdist "
            f"on PyPI, pinned by sha256) into {cache_dir()} (or $RESI_CACHE_DIR); silent when it is there."
        ),
    ).parse_args(argv)
    path = cache_dir() / CACHE_FILE
    if path.exists():
        return 0
    try:
        download()
        info = load()
    except RuntimeUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"subtensor runtime spec {info.spec_version} ({len(info.metadata)} bytes of metadata) cached in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
