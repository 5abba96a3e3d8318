"""The dependency rules of the design: neurons -> resi; resi/validation imports no network library and no
bittensor; only resi/chain imports bittensor; only resi/storage talks S3 (boto3)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORK = {"aiohttp", "requests", "urllib3", "httpx", "socket", "boto3", "botocore", "bittensor", "homeharvest"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_validation_is_pure():
    for path in modules("resi/validation"):
        assert not imports(path) & NETWORK, path


def test_only_the_chain_package_imports_bittensor():
    for path in modules("resi") + modules("neurons"):
        if "resi/chain" not in path.as_posix():
            assert "bittensor" not in imports(path), path


def test_only_the_storage_package_talks_s3():
    for path in modules("resi") + modules("neurons"):
        if "resi/storage" not in path.as_posix():
            assert not imports(path) & {"boto3", "botocore"}, path


def test_neurons_are_thin():
    for path in modules("neurons"):
        assert len(path.read_text().splitlines()) < 30, path


def test_production_code_never_imports_the_cheaters():
    for path in modules("resi") + modules("neurons"):
        if "resi/localnet" not in path.as_posix():
            source = path.read_text()
            assert "cheaters" not in source or path.name == "strategy.py", path
