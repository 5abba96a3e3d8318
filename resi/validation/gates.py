"""File gates: any failure scores the epoch 0, with the reason. Checked before a single row is looked at."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from resi.arrays import tally
from resi.constants import SCHEMA_VERSION
from resi.listings.files import EpochMetadata, FileRejected, read_listings, read_metadata, sha256_hex
from resi.listings.upload import Submission
from resi.validation.params import EpochContext, ValidationParams


@dataclass(frozen=True)
class GateResult:
    reason: str | None
    detail: str = ""
    table: pa.Table | None = None
    metadata: EpochMetadata | None = None
    sha256: str | None = None

    @property
    def passed(self) -> bool:
        return self.reason is None


def check_gates(sub: Submission, ctx: EpochContext, params: ValidationParams) -> GateResult:
    if sub.listings is None and sub.metadata is None and sub.fetch_error is None:
        return GateResult("no_upload", "nothing under the epoch folder")
    if sub.fetch_error:
        return GateResult(sub.fetch_error)
    if sub.listings is None or sub.metadata is None:
        missing = "listings.parquet" if sub.listings is None else "metadata.json"
        return GateResult("missing_file", f"{missing} is missing")
    last_second = ctx.deadline.replace(microsecond=0)
    for name, modified in (("listings.parquet", sub.listings_modified), ("metadata.json", sub.metadata_modified)):
        # S3 keeps whole seconds: an object stamped with the deadline's second may have landed after it.
        if modified is None or modified >= last_second:
            return GateResult("late_upload", f"{name} last modified {modified}, not before the deadline {ctx.deadline}")
    try:
        meta = read_metadata(sub.metadata, params.limits)
    except FileRejected as exc:
        return GateResult(exc.reason, exc.detail)
    for reason, claimed, actual in (
        ("metadata_hotkey_mismatch", meta.hotkey, sub.hotkey),
        ("metadata_epoch_mismatch", meta.epoch_id, ctx.epoch_id),
        ("wrong_nonce", meta.nonce, ctx.nonce),
        ("schema_version_mismatch", meta.schema_version, SCHEMA_VERSION),
    ):
        if claimed != actual:
            return GateResult(reason, f"metadata says {claimed!r}, expected {actual!r}", metadata=meta)
    digest = sha256_hex(sub.listings)
    if digest != meta.parquet_sha256:
        return GateResult(
            "sha256_mismatch",
            f"listings.parquet hashes to {digest}, metadata says {meta.parquet_sha256}",
            metadata=meta,
            sha256=digest,
        )
    try:
        table = read_listings(sub.listings, params.limits)
    except FileRejected as exc:
        return GateResult(exc.reason, exc.detail, metadata=meta, sha256=digest)
    if meta.row_count != table.num_rows:
        return GateResult(
            "row_count_mismatch",
            f"metadata claims {meta.row_count} rows, the file has {table.num_rows}",
            metadata=meta,
            sha256=digest,
        )
    if dict(tally(table["zipcode"])) != {z: n for z, n in meta.zipcode_counts.items() if n}:
        return GateResult(
            "zipcode_counts_mismatch", "metadata zipcodeCounts differ from the file's rows", metadata=meta, sha256=digest
        )
    return GateResult(None, table=table, metadata=meta, sha256=digest)
