"""What the mirror derives from the verified epochs, once per sync, so that queries are plain scans:

- ``consensus/day=<YYYY-MM-DD>/listings.parquet``: for each epoch of the day, every distinct state of each
  listing that some validator published (all its values), with ``validators`` (how many published exactly it),
  ``published`` (how many published the epoch) and ``top`` (the state most validators published: then the
  latest proven, the lowest price, the first status), sorted by zipcode so a zipcode's rows are a few row groups;
- ``consensus/day=<...>/observations.parquet``: the same for the change logs' rows;
- ``published.parquet`` (validator and epoch: block, rows) and ``zipcodes.parquet`` (validator, epoch and
  zipcode: the listings expected and published), from the manifests.

A day's files are rebuilt when the set of (epoch, validator) they were built from is not the mirror's any more
(``built.json`` beside them), so a sync killed before deriving heals at the next one.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from resi.data.mirror import Mirror
from resi.listings.validated import LISTINGS_FILE, LISTINGS_SCHEMA, OBSERVATIONS_FILE

ROW_GROUP = 2048
"""Rows per row group of the consensus files: a zipcode's rows are a few row groups, the others skipped."""
PROVENANCE = ("proof", "miners_proving", "miners_delivering", "first_proven_at", "last_proven_at")
VALUES = [f.name for f in LISTINGS_SCHEMA if f.name not in PROVENANCE]
OBSERVED = ["epoch_id", "listing_id", "scraped_at", "listing_status", "price"]

PUBLISHED_SCHEMA = pa.schema([("epoch_id", pa.string()), ("validator", pa.string()), ("block", pa.int64()),
                              ("listings", pa.int64()), ("observations", pa.int64())])
ZIPCODES_SCHEMA = pa.schema([("epoch_id", pa.string()), ("validator", pa.string()), ("zipcode", pa.string()),
                             ("expected", pa.int64()), ("published", pa.int64())])


def day_of(epoch_id: str) -> str:
    return epoch_id[:10]


def consensus_folder(mirror: Mirror, day: str) -> Path:
    return mirror.root / "consensus" / f"day={day}"


def derive(mirror: Mirror) -> list[str]:
    """Bring the derived files up to date with the mirrored epochs; the days rebuilt."""
    manifests = mirror.manifests()
    _write(mirror.root / "published.parquet", pa.Table.from_pylist(
        [{"epoch_id": m["epoch_id"], "validator": m["validator"], "block": m.get("block"),
          "listings": (m.get("rows") or {}).get("listings"), "observations": (m.get("rows") or {}).get("observations")}
         for m in manifests], PUBLISHED_SCHEMA))
    _write(mirror.root / "zipcodes.parquet", pa.Table.from_pylist(
        [{"epoch_id": m["epoch_id"], "validator": m["validator"], "zipcode": z, "expected": n,
          "published": (m.get("zipcodes") or {}).get(z, 0)}
         for m in manifests for z, n in sorted((m.get("expected") or {}).items())], ZIPCODES_SCHEMA))
    inputs: dict[str, list[list[str]]] = {}
    for m in manifests:
        inputs.setdefault(day_of(m["epoch_id"]), []).append([m["epoch_id"], m["validator"]])
    rebuilt = []
    for day, pairs in sorted(inputs.items()):
        pairs.sort()
        folder = consensus_folder(mirror, day)
        try:
            if json.loads((folder / "built.json").read_text()) == pairs:
                continue
        except (OSError, ValueError):
            pass
        _build_day(mirror, folder, pairs)
        rebuilt.append(day)
    for folder in (mirror.root / "consensus").glob("day=*"):
        if folder.name[4:] not in inputs:
            shutil.rmtree(folder, ignore_errors=True)
    return rebuilt


def _build_day(mirror: Mirror, folder: Path, pairs: list[list[str]]) -> None:
    def files(table: str, name: str) -> str:
        return "[" + ", ".join(sql_path(mirror.folder(table, epoch_id, validator) / name)
                               for epoch_id, validator in pairs) + "]"

    counts = Counter(epoch_id for epoch_id, _ in pairs)
    published = "CASE epoch_id " + " ".join(f"WHEN '{e}' THEN {n}" for e, n in counts.items()) + " END"
    values = ", ".join(VALUES)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    try:
        con.execute(f"""COPY (
            SELECT {values}, max(proof) AS proof, max(miners_proving) AS miners_proving,
                   max(miners_delivering) AS miners_delivering, min(first_proven_at) AS first_proven_at,
                   max(last_proven_at) AS last_proven_at, count(DISTINCT validator)::INTEGER AS validators,
                   ({published})::INTEGER AS published,
                   row_number() OVER (PARTITION BY epoch_id, listing_id
                                      ORDER BY count(DISTINCT validator) DESC, max(last_proven_at) DESC, price,
                                               listing_status) = 1 AS top
            FROM read_parquet({files('listings', LISTINGS_FILE)}, hive_partitioning = true)
            GROUP BY {values} ORDER BY zipcode, listing_id, epoch_id
        ) TO {sql_path(tmp / LISTINGS_FILE)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
        con.execute(f"""COPY (
            SELECT {', '.join(OBSERVED)}, count(DISTINCT validator)::INTEGER AS validators,
                   ({published})::INTEGER AS published
            FROM read_parquet({files('observations', OBSERVATIONS_FILE)}, hive_partitioning = true)
            GROUP BY {', '.join(OBSERVED)} ORDER BY listing_id, scraped_at
        ) TO {sql_path(tmp / OBSERVATIONS_FILE)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP * 4})""")
    finally:
        con.close()
    (tmp / "built.json").write_text(json.dumps(pairs))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)


def sql_path(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _write(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
