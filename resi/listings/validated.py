"""The validated listings a validator publishes for each epoch, declared once: their two tables, their
version, and the one way they are written (deterministic Parquet: the same rows give the same bytes).

``listings`` (one row per listing some miner proved this epoch, in its latest proven state):
    the listing schema's columns with the proven values, except ``scraped_timestamp`` (a miner's spelling),
    and provenance: ``epoch_id``; ``proof`` (``snapshot``: equal to the validator's own scrape;
    ``refetch``: confirmed by fetching the listing again with its history); ``miners_proving`` (miners whose
    row proved it; copies not counted) and ``miners_delivering`` (miners that delivered a valid row for it);
    ``first_proven_at`` and ``last_proven_at`` (the earliest and latest scrape time of a proven row; the state
    is the one at ``last_proven_at``).
``observations`` (the epoch's change log): every distinct proven (status, price) of a listing, with the
    first scrape time it was proven at.

Both are sorted (listings by zipcode then listing id; observations by listing id then time), zstd, row groups
of at most :data:`ROW_GROUP_ROWS` rows. What the validator itself observed, and when, is in the manifest, so
that validators with the same verdicts publish the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from resi.listings.schema import LISTING_SCHEMA

VALIDATED_SCHEMA_VERSION: Final = "1"
"""Version of the two tables below; in every manifest. A change of columns or meaning changes it."""
ROW_GROUP_ROWS: Final = 50_000
LISTINGS_FILE: Final = "listings.parquet"
OBSERVATIONS_FILE: Final = "observations.parquet"
MANIFEST_FILE: Final = "manifest.json"
FOLDER: Final = "validated"
"""The files' folder beside ``validation_results.json`` (``validators/<hotkey>/<epoch>/validated/``)."""

TIME = pa.timestamp("us", tz="UTC")
PROOFS: Final = ("snapshot", "refetch")

LISTINGS_SCHEMA = pa.schema(
    [field for field in LISTING_SCHEMA if field.name != "scraped_timestamp"]
    + [
        pa.field("epoch_id", pa.string(), nullable=False),
        pa.field("proof", pa.string(), nullable=False),
        pa.field("miners_proving", pa.int32(), nullable=False),
        pa.field("miners_delivering", pa.int32(), nullable=False),
        pa.field("first_proven_at", TIME, nullable=False),
        pa.field("last_proven_at", TIME, nullable=False),
    ],
    metadata={"resi.validated_schema_version": VALIDATED_SCHEMA_VERSION},
)
OBSERVATIONS_SCHEMA = pa.schema(
    [
        pa.field("epoch_id", pa.string(), nullable=False),
        pa.field("listing_id", pa.string(), nullable=False),
        pa.field("scraped_at", TIME, nullable=False),
        pa.field("listing_status", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
    ],
    metadata={"resi.validated_schema_version": VALIDATED_SCHEMA_VERSION},
)
SCHEMAS: Final = {LISTINGS_FILE: LISTINGS_SCHEMA, OBSERVATIONS_FILE: OBSERVATIONS_SCHEMA}


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as Parquet, the same bytes for the same rows (fixed options, no timestamps of its own)."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=3,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=True,
        write_statistics=True,
        data_page_size=1 << 20,
    )
    return sink.getvalue().to_pybytes()


def file_entry(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def manifest(
    epoch_id: str,
    block: int,
    block_hash: str,
    listings: pa.Table,
    files: dict[str, bytes],
    code_version: str,
    expected: dict[str, int],
) -> dict:
    """The manifest of one epoch's files (unsigned: ``resi.api.signing.sign_manifest`` adds the validator and
    the signature). Row counts per zipcode, the listings the assignment expected per zipcode, and each file's
    sha256 and size."""
    zipcodes = listings.group_by("zipcode").aggregate([("zipcode", "count")]).sort_by("zipcode")
    return {
        "kind": "resi.validated_listings",
        "epoch_id": epoch_id,
        "block": block,
        "block_hash": block_hash,
        "schema_version": VALIDATED_SCHEMA_VERSION,
        "code_version": code_version,
        "rows": {
            "listings": listings.num_rows,
            "observations": pq.read_metadata(pa.BufferReader(files[OBSERVATIONS_FILE])).num_rows,
        },
        "zipcodes": dict(zip(zipcodes["zipcode"].to_pylist(), zipcodes["zipcode_count"].to_pylist())),
        "expected": dict(sorted(expected.items())),
        "files": {name: file_entry(data) for name, data in sorted(files.items())},
    }


def check_files(manifest_: dict, files: dict[str, bytes]) -> str | None:
    """Why ``files`` are not the ones ``manifest_`` names (a missing, extra, resized or altered file), or None."""
    named = manifest_.get("files") if isinstance(manifest_, dict) else None
    if not isinstance(named, dict) or set(named) != set(SCHEMAS):
        return "the manifest does not name the epoch's files"
    for name, entry in sorted(named.items()):
        data = files.get(name)
        if data is None:
            return f"{name} is missing"
        if not isinstance(entry, dict) or entry.get("bytes") != len(data):
            return f"{name} has {len(data)} bytes, not the manifest's"
        if entry.get("sha256") != hashlib.sha256(data).hexdigest():
            return f"{name} is not the file the manifest names (sha256 differs)"
    return None
