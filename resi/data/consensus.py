"""What the mirror derives from the verified epochs, once per sync, so that queries are plain scans:

- ``consensus/day=<YYYY-MM-DD>/listings.parquet``: for each epoch of the day, every distinct state of each
  listing that some validator published (all its values), with ``validators`` (how many published exactly it),
  ``published`` (how many published the epoch) and ``top`` (the state most validators published: then the
  latest proven, the lowest price, the first status), sorted by zipcode so a zipcode's rows are a few row groups;
- ``consensus/day=<...>/observations.parquet``: the same for the change logs' rows;
- ``consensus/day=<...>/changes.parquet``: the ``changes`` of the day's epochs under the default consensus (a
  majority), against the epoch before each; rebuilt from the earliest day whose consensus changed on;
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
CHANGES_FILE = "changes.parquet"
PROVENANCE = ("proof", "miners_proving", "miners_delivering", "first_proven_at", "last_proven_at")
VALUES = [f.name for f in LISTINGS_SCHEMA if f.name not in PROVENANCE]
OBSERVED = ["epoch_id", "listing_id", "scraped_at", "listing_status", "price"]

PUBLISHED_SCHEMA = pa.schema(
    [
        ("epoch_id", pa.string()),
        ("validator", pa.string()),
        ("block", pa.int64()),
        ("listings", pa.int64()),
        ("observations", pa.int64()),
    ]
)
ZIPCODES_SCHEMA = pa.schema(
    [
        ("epoch_id", pa.string()),
        ("validator", pa.string()),
        ("zipcode", pa.string()),
        ("expected", pa.int64()),
        ("published", pa.int64()),
    ]
)


def day_of(epoch_id: str) -> str:
    return epoch_id[:10]


def consensus_folder(mirror: Mirror, day: str) -> Path:
    return mirror.root / "consensus" / f"day={day}"


def derive(mirror: Mirror) -> list[str]:
    """Bring the derived files up to date with the mirrored epochs; the days rebuilt."""
    manifests = mirror.manifests()
    _write(
        mirror.root / "published.parquet",
        pa.Table.from_pylist(
            [
                {
                    "epoch_id": m["epoch_id"],
                    "validator": m["validator"],
                    "block": m.get("block"),
                    "listings": (m.get("rows") or {}).get("listings"),
                    "observations": (m.get("rows") or {}).get("observations"),
                }
                for m in manifests
            ],
            PUBLISHED_SCHEMA,
        ),
    )
    _write(
        mirror.root / "zipcodes.parquet",
        pa.Table.from_pylist(
            [
                {
                    "epoch_id": m["epoch_id"],
                    "validator": m["validator"],
                    "zipcode": z,
                    "expected": n,
                    "published": (m.get("zipcodes") or {}).get(z, 0),
                }
                for m in manifests
                for z, n in sorted((m.get("expected") or {}).items())
            ],
            ZIPCODES_SCHEMA,
        ),
    )
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
    stale = [day for day in sorted(inputs) if not (consensus_folder(mirror, day) / CHANGES_FILE).exists()]
    since = min(rebuilt + stale, default=None)
    if since is not None:  # a day's changes depend on every earlier day (first seen, the epoch before)
        _build_changes(mirror, [day for day in sorted(inputs) if day >= since])
    return rebuilt


COUNTED = "top AND validators >= published // 2 + 1"
"""A state counts when it is its listing's top state and a majority of the epoch's validators published it."""
CHANGE_KIND = """CASE WHEN came AND first_time THEN 'new'
                      WHEN came THEN 'relisted'
                      WHEN gone THEN CASE WHEN old_status = 'sold' THEN NULL ELSE 'withdrawn' END
                      WHEN new_status = 'sold' AND old_status <> 'sold' THEN 'sold'
                      WHEN new_status = 'pending' AND old_status <> 'pending' THEN 'pending'
                      WHEN new_status = 'active' AND old_status <> 'active' THEN 'relisted'
                      WHEN new_price < old_price THEN 'price_cut'
                      WHEN new_price > old_price THEN 'price_raise' END"""


def changes_sql(states: str, epochs: str, first_time: str, where: str = "TRUE") -> str:
    """The changes (``epoch_id, listing_id, zipcode, change, old_status, new_status, old_price, new_price``) of
    ``states`` (``epoch_id, listing_id, zipcode, listing_status, price, n`` with ``prev_n``, ``prev_status``,
    ``prev_price``, ``next_n`` over each listing's epochs). Epochs are numbered per zipcode (``epochs``:
    ``epoch_id, zipcode, n``) over the epochs whose assignment covered it: assignments rotate zipcodes, and a
    listing is compared with its state the last time its zipcode was looked at, never taken for withdrawn
    while its zipcode is not assigned. ``first_time``: whether a state is its listing's first ever; ``where``:
    on the event's epoch (``e``). One definition for the derived files and for the views."""
    return f"""
        SELECT * FROM (
            SELECT e.epoch_id, p.listing_id, p.zipcode, {CHANGE_KIND} AS change,
                   p.old_status, p.new_status, p.old_price, p.new_price
            FROM (
                SELECT n AS k, listing_id, zipcode,
                       CASE WHEN prev_n = n - 1 THEN prev_status END AS old_status, listing_status AS new_status,
                       CASE WHEN prev_n = n - 1 THEN prev_price END AS old_price, price AS new_price,
                       {first_time} AS first_time, prev_n IS DISTINCT FROM n - 1 AS came, false AS gone
                FROM {states}
                UNION ALL
                SELECT n + 1, listing_id, zipcode, listing_status, NULL, price, NULL, false, false, true
                FROM {states} WHERE next_n IS DISTINCT FROM n + 1
            ) p JOIN {epochs} e ON e.zipcode = p.zipcode AND e.n = p.k
            WHERE p.k > 1 AND {where})
        WHERE change IS NOT NULL"""


def _build_changes(mirror: Mirror, days: list[str]) -> None:
    """``changes.parquet`` of each of ``days`` (the consensus files must be there), sorted by zipcode."""
    root = mirror.root
    con = duckdb.connect()
    try:
        con.execute(f"""
            CREATE VIEW counted AS
                SELECT epoch_id, listing_id, zipcode, listing_status, price, day
                FROM read_parquet({sql_path(root / "consensus" / "day=*" / LISTINGS_FILE)}, hive_partitioning = true)
                WHERE {COUNTED};
            CREATE TABLE epochs AS
                SELECT epoch_id, zipcode, row_number() OVER (PARTITION BY zipcode ORDER BY epoch_id) AS n
                FROM (SELECT DISTINCT epoch_id, zipcode FROM read_parquet({sql_path(root / "zipcodes.parquet")}));
            CREATE TABLE first_seen AS SELECT listing_id, min(epoch_id) AS first_epoch FROM counted GROUP BY listing_id;
        """)
        for day in days:
            # the day's epochs, and for each zipcode of the day the epoch that last covered it before
            needed = [
                r[0]
                for r in con.execute(
                    """
                SELECT DISTINCT e.epoch_id FROM epochs e JOIN (
                    SELECT zipcode, min(n) AS first FROM epochs WHERE left(epoch_id, 10) = ? GROUP BY zipcode) d
                  ON e.zipcode = d.zipcode AND e.n BETWEEN d.first - 1 AND d.first
                UNION SELECT epoch_id FROM epochs WHERE left(epoch_id, 10) = ?""",
                    [day, day],
                ).fetchall()
            ]
            listed = ", ".join(f"'{epoch_id}'" for epoch_id in needed)  # epoch ids of the mirror's verified form
            near = ", ".join(f"'{d}'" for d in sorted({day_of(epoch_id) for epoch_id in needed}))
            states = f"""(SELECT c.epoch_id, c.listing_id, c.zipcode, c.listing_status, c.price, e.n,
                                 c.epoch_id = f.first_epoch AS first,
                                 lag(e.n) OVER w AS prev_n, lag(c.listing_status) OVER w AS prev_status,
                                 lag(c.price) OVER w AS prev_price, lead(e.n) OVER w AS next_n
                          FROM counted c JOIN epochs e USING (epoch_id, zipcode) JOIN first_seen f USING (listing_id)
                          WHERE c.day IN ({near}) AND c.epoch_id IN ({listed})
                          WINDOW w AS (PARTITION BY c.zipcode, c.listing_id ORDER BY e.n))"""
            target = consensus_folder(mirror, day) / CHANGES_FILE
            tmp = target.with_name(target.name + ".partial")
            con.execute(f"""COPY ({changes_sql(states, "epochs", "first", f"left(e.epoch_id, 10) = '{day}'")}
                                  ORDER BY zipcode, listing_id, epoch_id)
                            TO {sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
            tmp.replace(target)
    finally:
        con.close()


def _build_day(mirror: Mirror, folder: Path, pairs: list[list[str]]) -> None:
    def files(table: str, name: str) -> str:
        return "[" + ", ".join(sql_path(mirror.folder(table, epoch_id, validator) / name) for epoch_id, validator in pairs) + "]"

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
            FROM read_parquet({files("listings", LISTINGS_FILE)}, hive_partitioning = true)
            GROUP BY {values} ORDER BY zipcode, listing_id, epoch_id
        ) TO {sql_path(tmp / LISTINGS_FILE)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")
        con.execute(f"""COPY (
            SELECT {", ".join(OBSERVED)}, count(DISTINCT validator)::INTEGER AS validators,
                   ({published})::INTEGER AS published
            FROM read_parquet({files("observations", OBSERVATIONS_FILE)}, hive_partitioning = true)
            GROUP BY {", ".join(OBSERVED)} ORDER BY listing_id, scraped_at
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
