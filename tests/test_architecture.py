"""The dependency rules of the design: neurons -> resi; resi/validation imports no network library and no
bittensor; only resi/chain imports bittensor; only resi/storage talks S3 (boto3).

The layers of ``resi/``: a module imports only from its own layer or below, and the packages import each
other without a cycle. Entry points (each package's ``cli.py`` and ``__main__.py``, ``ENTRY_FILES``) sit on
top of everything: they may import any layer, and nothing in ``resi/`` imports them.

A new package or top-level module gets its place in ``LAYERS`` (docs/architecture.md shows the same)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.kit import ROOT

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


def test_no_test_module_imports_another():
    """What tests share lives in the kit modules (``tests/kit.py``, ``servers.py``, ``e2e.py``, ...,
    ``tests/validation/epoch_data.py``), never in a test file: importing one ties two test files together and
    brings along the other's fixtures and module set-up."""
    wrong = [
        f"{path.relative_to(ROOT)} imports {node.module}"
        for path in modules("tests")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1].startswith("test_")
    ]
    assert wrong == [], "move what they share into a kit module beside them"


LAYERS = {
    # 0: the ground everything stands on: constants, time, small helpers, settings, logging
    "resi": 0,
    "constants": 0,
    "epochs": 0,
    "clock": 0,
    "arrays": 0,
    "moments": 0,
    "jsonsafe": 0,
    "sqlite": 0,
    "logs": 0,
    "config": 0,
    "extras": 0,
    "market": 0,
    "processes": 0,
    # 1: the outside world's shapes and doors: the listing schema and files, the chain, S3
    "listings": 1,
    "chain": 1,
    "storage": 1,
    # 2: pure judging, scraping a source, the API (client and reference server), metrics and health
    "validation": 2,
    "scraping": 2,
    "api": 2,
    "monitor": 2,
    # 3: the two neurons' loops and their stores
    "miner": 3,
    "validator": 3,
    # 4: what runs a neuron and reads its records: start-up, checks, status, the status pages
    "neuron": 4,
    "preflight": 4,
    "status": 4,
    "pages": 4,
    # 5: the local network and the consumers' data tool
    "localnet": 5,
    "data": 5,
}
ENTRY_NAMES = {"cli.py", "__main__.py"}
ENTRY_FILES = {"resi/launch.py", "resi/localnet/cheaters.py"}
"""Entry points by path: the neurons' launcher, and the local network's cheating miners (a process of their own
that runs the miner's CLI with another strategy)."""


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "resi":
        return None
    return "resi" if len(parts) == 1 else parts[1]


def _is_entry(path: Path) -> bool:
    return path.name in ENTRY_NAMES or path.relative_to(ROOT).as_posix() in ENTRY_FILES


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "resi"}


def _graph() -> dict[Path, set[str]]:
    return {path: _imports(path) for path in sorted((ROOT / "resi").rglob("*.py"))}


def test_every_package_has_a_layer():
    units = {_unit(_module(path)) for path in _graph() if not _is_entry(path)} - {None}
    assert units <= set(LAYERS), f"place these in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path, names in _graph().items():
        if _is_entry(path):
            continue
        mine = LAYERS[_unit(_module(path))]
        for name in names:
            unit = _unit(name)
            if unit in LAYERS and LAYERS[unit] > mine:
                upward.append(f"{path.relative_to(ROOT)} imports {name} (layer {LAYERS[unit]} > {mine})")
    assert upward == []


def test_nothing_imports_an_entry_point():
    entries = {_module(path) for path in _graph() if _is_entry(path)}
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in _graph().items()
        if not _is_entry(path)
        for name in names
        if name in entries or any(name.startswith(e + ".") for e in entries)
    ]
    assert wrong == []


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for path, names in _graph().items():
        if _is_entry(path):
            continue
        me = _unit(_module(path))
        edges[me].update(u for u in map(_unit, names) if u and u != me)
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in trail:
                cycles.append(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            elif len(trail) < len(LAYERS):
                visit(nxt, trail + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    assert cycles == []
