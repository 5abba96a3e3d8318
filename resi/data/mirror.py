"""``resi-data sync``: a local mirror of the validators' published epochs, each verified before it enters.

A published epoch (one validator's ``validated/`` folder) is mirrored when its manifest is signed by the hotkey
it names, that hotkey is trusted (a validator permit on the subnet, or a list given), and every file is the one
the manifest names (size and sha256) and a Parquet file of the declared schema and row count. Everything read
is bounded (the manifest at 1 MiB, each file at the size its manifest gives, at most ``max_file_bytes``), and
every name a manifest gives is checked before it becomes a path. What fails is not mirrored, and is named with
its reason in ``rejected.json``; it is tried again at the next sync.

Layout (Hive-style partitions, what DuckDB, Spark, Trino and Athena read as they are)::

    <mirror>/listings/epoch=<epoch>/validator=<hotkey>/listings.parquet
    <mirror>/observations/epoch=<epoch>/validator=<hotkey>/observations.parquet
    <mirror>/manifests/epoch=<epoch>/validator=<hotkey>/manifest.json    (written last: the epoch is in)
    <mirror>/rejected.json
    <mirror>/consensus/day=<day>/..., published.parquet, zipcodes.parquet  (derived: ``resi.data.consensus``)

Incremental (what is in is never fetched again) and resumable: files are written under a temporary name and
renamed, the manifest last; a sync killed in the middle leaves files without a manifest, which the next sync
removes before it starts, and which no query reads (the views read what the manifests name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from resi.api.signing import verify_manifest
from resi.chain.keys import is_ss58
from resi.listings.validated import (
    LISTINGS_FILE,
    MANIFEST_FILE,
    OBSERVATIONS_FILE,
    SCHEMAS,
    check_files,
)

MAX_MANIFEST_BYTES = 1 << 20
MAX_FILE_BYTES = 256 << 20
"""A published file larger than this is refused (10,000 listings are about 1 MB; read in memory, so bounded)."""
_EPOCH_ID = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}$")
TABLES = {LISTINGS_FILE: "listings", OBSERVATIONS_FILE: "observations"}


@dataclass(frozen=True)
class Published:
    """One validator's files of one epoch at a source: where it is (for messages) and each file's key."""

    where: str
    keys: dict[str, str]
    """File name (the manifest's and the two Parquet files') -> the source's key for it."""


class Source(Protocol):
    def find(self) -> Iterator[Published]: ...

    def read(self, key: str, max_bytes: int) -> bytes:
        """The bytes at ``key``; ValueError past ``max_bytes`` (nothing beyond it read)."""
        ...


class FolderSource:
    """Published epochs under a folder: a copy of the bucket, or a local network's run folder (any folder that
    holds ``manifest.json`` beside the two files)."""

    def __init__(self, root: Path):
        self.root = root

    def find(self) -> Iterator[Published]:
        for manifest in sorted(self.root.rglob(MANIFEST_FILE)):
            folder = manifest.parent
            if folder.name.endswith(".tmp") or folder.is_relative_to(self.root / "manifests"):
                continue  # a validator's folder being written, or a mirror's own manifests
            yield Published(str(folder), {name: str(folder / name) for name in (MANIFEST_FILE, *TABLES)})

    def read(self, key: str, max_bytes: int) -> bytes:
        with open(key, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"more than {max_bytes} bytes")
        return data


class BucketSource:
    """Published epochs in the validators' bucket (``validators/<hotkey>/<epoch>/validated/``)."""

    def __init__(self, reader, prefix: str = "validators/"):
        self.reader = reader
        self.prefix = prefix

    def find(self) -> Iterator[Published]:
        keys = {key for key, _ in self.reader.keys(self.prefix)}
        for key in sorted(keys):
            if key.endswith(f"/validated/{MANIFEST_FILE}"):
                folder = key[: -len(MANIFEST_FILE)]
                yield Published(
                    f"s3://{self.reader.settings.bucket}/{folder}", {name: folder + name for name in (MANIFEST_FILE, *TABLES)}
                )

    def read(self, key: str, max_bytes: int) -> bytes:
        from resi.storage import ObjectTooLarge

        try:
            return self.reader.read(key, max_bytes)
        except ObjectTooLarge as exc:
            raise ValueError(str(exc)) from None


@dataclass
class SyncReport:
    mirrored: list[tuple[str, str]] = field(default_factory=list)
    """(epoch, validator) mirrored by this sync."""
    already: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    """Where -> why it was not mirrored."""


class Rejected(Exception):
    """A published epoch that does not enter the mirror; the message says why."""


class Mirror:
    def __init__(self, root: Path):
        self.root = root

    def folder(self, table: str, epoch_id: str, validator: str) -> Path:
        return self.root / table / f"epoch={epoch_id}" / f"validator={validator}"

    def manifest_path(self, epoch_id: str, validator: str) -> Path:
        return self.folder("manifests", epoch_id, validator) / MANIFEST_FILE

    def manifests(self) -> list[dict]:
        """Every mirrored epoch's manifest (the verified ones: only they are written here)."""
        out = []
        for path in sorted((self.root / "manifests").glob(f"epoch=*/validator=*/{MANIFEST_FILE}")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

    def files(self, table: str) -> list[str]:
        """The Parquet files of ``table`` (``listings``/``observations``) that a verified manifest names."""
        name = next(file for file, t in TABLES.items() if t == table)
        return [str(self.folder(table, m["epoch_id"], m["validator"]) / name) for m in self.manifests()]

    def clean(self) -> None:
        """Remove what a killed sync left: temporary files, and data without a manifest."""
        for table in TABLES.values():
            for folder in (self.root / table).glob("epoch=*/validator=*"):
                epoch_id, validator = folder.parent.name[6:], folder.name[10:]
                if not self.manifest_path(epoch_id, validator).exists():
                    shutil.rmtree(folder, ignore_errors=True)
        for tmp in self.root.rglob("*.partial"):
            tmp.unlink(missing_ok=True)
        for tmp in (self.root / "consensus").glob("*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    def sync(
        self,
        source: Source,
        trusted: Callable[[str], bool],
        progress: Callable[[int, int, SyncReport], None] | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> SyncReport:
        """Mirror every published epoch of ``source`` not mirrored yet; ``trusted(hotkey)``: whether a signer's
        epochs are accepted."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean()
        report = SyncReport()
        found = list(source.find())
        for i, published in enumerate(found, start=1):
            try:
                added = self._one(source, published, trusted, max_file_bytes)
            except Rejected as exc:
                report.rejected[published.where] = str(exc)
            else:
                if added is None:
                    report.already += 1
                else:
                    report.mirrored.append(added)
            if progress is not None:
                progress(i, len(found), report)
        self._write_json(self.root / "rejected.json", report.rejected)
        from resi.data.consensus import derive  # what the views read, brought up to date

        derive(self)
        return report

    def _one(
        self, source: Source, published: Published, trusted: Callable[[str], bool], max_file_bytes: int
    ) -> tuple[str, str] | None:
        raw = _read(source, published.keys[MANIFEST_FILE], MAX_MANIFEST_BYTES, MANIFEST_FILE)
        try:
            manifest = json.loads(raw)
        except (ValueError, RecursionError):
            raise Rejected("the manifest is not JSON") from None
        if not isinstance(manifest, dict):
            raise Rejected("the manifest is not a JSON object")
        epoch_id, validator = manifest.get("epoch_id"), manifest.get("validator")
        if not isinstance(epoch_id, str) or not _EPOCH_ID.match(epoch_id):
            raise Rejected(f"the manifest names no epoch id of the subnet's form ({str(epoch_id)[:40]!r})")
        if not isinstance(validator, str) or not is_ss58(validator):
            raise Rejected("the manifest names no hotkey")
        if self.manifest_path(epoch_id, validator).exists():
            return None
        if not verify_manifest(manifest):
            raise Rejected(f"the manifest's signature is not {validator}'s")
        if not trusted(validator):
            raise Rejected(
                f"signed by {validator}, which is not a trusted validator (no validator permit on the "
                "subnet, or not in --validators)"
            )
        for what in ("rows", "zipcodes", "expected"):
            _counts(manifest.get(what), what)
        if not isinstance(manifest.get("block"), int) or isinstance(manifest.get("block"), bool):
            raise Rejected("the manifest's block is not a number")
        files = {}
        for name in TABLES:
            entry = manifest["files"].get(name) if isinstance(manifest.get("files"), dict) else None
            size = entry.get("bytes") if isinstance(entry, dict) else None
            if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= max_file_bytes:
                raise Rejected(f"the manifest gives {name} no size of at most {max_file_bytes} bytes")
            files[name] = _read(source, published.keys[name], size, name)
        problem = check_files(manifest, files)
        if problem:
            raise Rejected(problem + (" (truncated)" if "bytes" in problem else ""))
        rows = manifest["rows"] if isinstance(manifest.get("rows"), dict) else {}
        for name, data in files.items():
            _check_parquet(name, data, rows.get(TABLES[name]))
        for name, data in files.items():
            self._write(self.folder(TABLES[name], epoch_id, validator) / name, data)
        self._write(self.manifest_path(epoch_id, validator), raw)
        return epoch_id, validator

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def _write_json(self, path: Path, value) -> None:
        self._write(path, json.dumps(value, indent=2, sort_keys=True).encode())


def _read(source: Source, key: str, max_bytes: int, name: str) -> bytes:
    try:
        return source.read(key, max_bytes)
    except ValueError as exc:
        raise Rejected(f"{name} is larger than it may be ({exc})") from None
    except OSError as exc:
        raise Rejected(f"{name} could not be read ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # the source's own errors (S3): named, never raised out of a sync
        raise Rejected(f"{name} could not be read ({exc})") from None


def _counts(value, what: str) -> None:
    """A manifest's counts: names (zipcodes, table names) to whole numbers, of a size nothing real exceeds."""
    if (
        not isinstance(value, dict)
        or len(value) > 100_000
        or not all(isinstance(k, str) and len(k) <= 32 and type(v) is int and 0 <= v < 2**53 for k, v in value.items())
    ):
        raise Rejected(f"the manifest's {what} are not counts")


def _check_parquet(name: str, data: bytes, rows) -> None:
    """The footer only (bounded memory): the declared schema and the manifest's row count."""
    try:
        meta = pq.read_metadata(pa.BufferReader(data))
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Rejected(f"{name} is not a readable Parquet file ({type(exc).__name__})") from None
    if not schema.remove_metadata().equals(SCHEMAS[name].remove_metadata()):
        raise Rejected(f"{name} is not of the published schema")
    if meta.num_rows != rows:
        raise Rejected(f"{name} has {meta.num_rows} rows, the manifest says {rows}")


def trust_list(hotkeys: Iterable[str]) -> Callable[[str], bool]:
    allowed = set(hotkeys)
    return allowed.__contains__


def print_progress(done: int, total: int, report: SyncReport) -> None:
    """A progress bar on stderr (a line per epoch when stderr is not a terminal)."""
    width = 30
    filled = width * done // max(total, 1)
    line = (
        f"[sync] [{'#' * filled}{'.' * (width - filled)}] {done}/{total} published epochs: "
        f"{len(report.mirrored)} new, {report.already} already here, {len(report.rejected)} rejected"
    )
    if sys.stderr.isatty():
        print("\r" + line, end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif done == total or done % 50 == 0:
        print(line, file=sys.stderr, flush=True)
