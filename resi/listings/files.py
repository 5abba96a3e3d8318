"""``listings.parquet`` and ``metadata.json``: writing them, and reading them back with limits.

Reading is for untrusted files (validators read every miner's upload): the byte cap, the row cap and the
decoded-size budget are checked against the parquet footer before a single column is decoded, so a small
file that claims to expand to gigabytes is refused for the price of reading its footer. Decoding then
goes batch by batch against the same budget with strings kept dictionary-encoded until their written-out
size is known, so a footer that lies, or one huge value repeated on every row, is caught one batch in.
What a page header can still make the decoder allocate is bounded by the process: validators judge each
file in a child process with a memory limit (``resi/validator/sandbox.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resi import jsonsafe
from resi.constants import LISTINGS_FILE, METADATA_FILE, SCHEMA_VERSION
from resi.epochs import iso_z
from resi.listings.schema import LISTING_SCHEMA, READ_SCHEMA

ROW_GROUP_ROWS = 16_384
"""Rows per row group: about 0.5 MB compressed, small enough to stream, large enough to compress well."""


class FileRejected(Exception):
    """A file that may not be used; ``reason`` is a short stable code, the message says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ReadLimits:
    max_file_bytes: int = 64 * 1024 * 1024
    max_rows: int = 200_000
    max_decoded_bytes: int = 256 * 1024 * 1024
    max_row_groups: int = 1_000
    max_metadata_bytes: int = 1024 * 1024


class ScraperInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(max_length=128)
    version: str = Field(max_length=64)


class EpochMetadata(BaseModel):
    """``metadata.json``: what a miner claims about its upload (the validator checks every claim)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    hotkey: str = Field(max_length=64)
    epoch_id: str = Field(alias="epochId", max_length=64)
    nonce: str = Field(max_length=128)
    schema_version: str = Field(alias="schemaVersion", max_length=16)
    row_count: int = Field(alias="rowCount", ge=0, le=10_000_000)
    zipcode_counts: dict[Annotated[str, Field(max_length=16)], Annotated[int, Field(ge=0, le=10_000_000)]] = Field(
        alias="zipcodeCounts", max_length=100_000
    )
    parquet_sha256: str = Field(alias="parquetSha256", pattern=r"^[0-9a-f]{64}$")
    scraper: ScraperInfo
    started_at: str = Field(alias="startedAt", max_length=64)
    finished_at: str = Field(alias="finishedAt", max_length=64)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(by_alias=True), indent=2, sort_keys=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def table_from_rows(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=LISTING_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as ``listings.parquet`` bytes (zstd, row groups of :data:`ROW_GROUP_ROWS`)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.cast(LISTING_SCHEMA), sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class EpochFiles:
    parquet: bytes
    metadata: EpochMetadata

    @property
    def metadata_json(self) -> bytes:
        return self.metadata.to_json()

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write both files into ``folder`` (atomically: temp file, then rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in ((LISTINGS_FILE, self.parquet), (METADATA_FILE, self.metadata_json)):
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.replace(folder / name)
            paths.append(folder / name)
        return paths[0], paths[1]


def build_epoch_files(
    table: pa.Table,
    *,
    hotkey: str,
    epoch_id: str,
    nonce: str,
    scraper_name: str,
    scraper_version: str,
    started_at: datetime,
    finished_at: datetime,
) -> EpochFiles:
    data = parquet_bytes(table)
    counts: dict[str, int] = {}
    for zipcode in table.column("zipcode").to_pylist():
        counts[zipcode] = counts.get(zipcode, 0) + 1
    meta = EpochMetadata(
        hotkey=hotkey,
        epoch_id=epoch_id,
        nonce=nonce,
        schema_version=SCHEMA_VERSION,
        row_count=table.num_rows,
        zipcode_counts=dict(sorted(counts.items())),
        parquet_sha256=sha256_hex(data),
        scraper=ScraperInfo(name=scraper_name, version=scraper_version),
        started_at=iso_z(started_at),
        finished_at=iso_z(finished_at),
    )
    return EpochFiles(data, meta)


# --- reading untrusted files ---------------------------------------------------------------------------------

STRING_COLUMNS = [f.name for f in READ_SCHEMA if pa.types.is_string(f.type)]


def read_metadata(data: bytes, limits: ReadLimits = ReadLimits()) -> EpochMetadata:
    if len(data) > limits.max_metadata_bytes:
        raise FileRejected("metadata_too_large", f"{len(data)} bytes, the cap is {limits.max_metadata_bytes}")
    try:
        raw = jsonsafe.loads(data)
    except jsonsafe.JsonRejected as exc:
        raise FileRejected("metadata_unreadable", str(exc)) from None
    if not isinstance(raw, dict):
        raise FileRejected("metadata_unreadable", "not a JSON object")
    try:
        return EpochMetadata.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise FileRejected("metadata_invalid", f"{'.'.join(map(str, err['loc']))[:100]}: {err['msg']}") from None


def _plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def schema_difference(found: pa.Schema, expected: pa.Schema = LISTING_SCHEMA) -> str | None:
    """What differs between a file's schema and the listing schema (None when they agree)."""
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        return "duplicate column names"
    have = {f.name: _plain(f.type) for f in found}
    want = {f.name: f.type for f in expected}
    parts = []
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    if missing:
        parts.append(f"missing columns {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected columns {', '.join(n[:40] for n in extra[:10])}")
    for name in want:
        if name in have and have[name] != want[name] and {have[name], want[name]} != {pa.string(), pa.large_string()}:
            parts.append(f"column {name} is {have[name]}, expected {want[name]}")
    return "; ".join(parts)[:500] or None


def check_parquet_footer(data: bytes, limits: ReadLimits = ReadLimits()) -> pq.ParquetFile:
    """Open ``data`` as parquet and check everything the footer tells, without decoding any column. String
    columns will be read dictionary-encoded, so that a repeated value is not copied onto every row."""
    if len(data) > limits.max_file_bytes:
        raise FileRejected("file_too_large", f"{len(data)} bytes, the cap is {limits.max_file_bytes}")
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        meta = pf.metadata
        arrow_schema = pf.schema_arrow
    except Exception as exc:  # pyarrow raises several types for broken files
        raise FileRejected("parquet_unreadable", str(exc)[:300]) from None
    if meta.num_rows > limits.max_rows or meta.num_rows < 0:
        raise FileRejected("too_many_rows", f"footer claims {meta.num_rows} rows, the cap is {limits.max_rows}")
    if meta.num_row_groups > limits.max_row_groups:
        raise FileRejected("too_many_row_groups", f"{meta.num_row_groups} row groups, the cap is {limits.max_row_groups}")
    difference = schema_difference(arrow_schema)
    if difference:
        raise FileRejected("schema_mismatch", difference)
    decoded = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        claimed = max(group.total_byte_size, sum(group.column(j).total_uncompressed_size for j in range(group.num_columns)))
        decoded += max(claimed, 0)
    if decoded > limits.max_decoded_bytes:
        raise FileRejected(
            "decoded_size_over_budget", f"footer claims {decoded} decoded bytes, the budget is {limits.max_decoded_bytes}"
        )
    try:
        return pq.ParquetFile(pa.BufferReader(data), read_dictionary=STRING_COLUMNS)
    except Exception as exc:
        raise FileRejected("parquet_unreadable", str(exc)[:300]) from None


def decoded_bytes(batch: pa.RecordBatch) -> int:
    """What ``batch`` occupies once every dictionary-encoded string is written out on its row."""
    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
            total += int(pc.sum(lengths).as_py() or 0) + 8 * len(column)
        else:
            total += column.nbytes
    return total


def read_listings(data: bytes, limits: ReadLimits = ReadLimits()) -> pa.Table:
    """The listings of an untrusted ``listings.parquet``, or :class:`FileRejected` with the reason.

    Decoding goes batch by batch with strings still dictionary-encoded; their decoded size is counted against
    the budget before any of them is written out, so a footer that lies, or one value repeated on every row,
    is refused one batch in. Strings must be valid UTF-8."""
    pf = check_parquet_footer(data, limits)
    batches = []
    decoded = rows = 0
    try:
        for batch in pf.iter_batches(batch_size=8192):
            decoded += decoded_bytes(batch)
            rows += batch.num_rows
            if decoded > limits.max_decoded_bytes:
                raise FileRejected("decoded_size_over_budget", f"more than {limits.max_decoded_bytes} bytes decoded")
            if rows > limits.max_rows:
                raise FileRejected("too_many_rows", f"more than {limits.max_rows} rows decoded")
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=pf.schema_arrow) if batches else None
    except (FileRejected, MemoryError):  # out of memory is the process's limit speaking, not a broken file
        raise
    except Exception as exc:
        raise FileRejected("parquet_unreadable", str(exc)[:300]) from None
    if table is None:
        return READ_SCHEMA.empty_table()
    try:
        table = table.select(list(READ_SCHEMA.names)).cast(READ_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError) as exc:
        raise FileRejected("schema_mismatch", str(exc)[:300]) from None
    try:
        table.validate(full=True)
    except pa.ArrowInvalid as exc:
        reason = "invalid_utf8" if "utf8" in str(exc).lower() else "parquet_unreadable"
        raise FileRejected(reason, str(exc)[:300]) from None
    return table
