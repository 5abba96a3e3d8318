"""The documented views over a mirror, in an embedded DuckDB (in memory; the data stays in the mirror's files).

Consensus: every validator publishes its own files. A listing's state in an epoch (all its values) counts when at
least ``min_validators`` validators published exactly that state (default: a majority of the validators that
published the epoch); ``validators`` says how many did. Every view below is built on the counted states.

- ``listings``: every epoch's validated state of each listing (one row per epoch and listing): the listing
  columns, ``epoch_id``, ``proof`` (``snapshot`` if any validator's proof was its own scrape), the most
  ``miners_proving`` and ``miners_delivering`` any validator counted, the earliest ``first_proven_at`` and
  latest ``last_proven_at``, and ``validators``.
- ``observations``: the epochs' change logs: ``epoch_id``, ``listing_id``, ``scraped_at``, ``listing_status``,
  ``price``, ``validators``.
- ``latest``: each listing's newest state (the ``listings`` row of its newest epoch).
- ``changes``: each listing between consecutive epochs of the mirror (from its second epoch on): ``new`` (first
  seen), ``price_cut``, ``price_raise``, ``pending``, ``sold``, ``withdrawn`` (in the previous epoch, active or
  pending, and not in this one), ``relisted`` (back after an absence, or active again after pending or sold); a
  status change is reported before a price change of the same epoch. Columns: ``epoch_id``, ``listing_id``,
  ``zipcode``, ``change``, ``old_status``, ``new_status``, ``old_price``, ``new_price``.
- ``market``: per zipcode and epoch: ``inventory`` (active and pending listings), ``active``, ``pending``,
  ``median_price``, ``q1_price``, ``q3_price`` (list prices of the inventory), ``median_days_on_market``,
  ``new``, ``sold``, ``price_cuts`` (from ``changes``).
- ``coverage``: per zipcode and epoch: ``expected`` (the assignment's count), ``proven`` (listings counted),
  ``validators_published`` (validators that published the epoch) and ``validators_agreeing`` (the fewest
  validators behind any listing counted there).
- ``published``: what each validator published: ``epoch_id``, ``validator``, ``block``, ``listings``,
  ``observations``.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from resi.data.mirror import Mirror
from resi.listings.validated import LISTINGS_SCHEMA, OBSERVATIONS_SCHEMA

VIEWS = ("listings", "observations", "latest", "changes", "market", "coverage", "published")
_VALUES = [f.name for f in LISTINGS_SCHEMA if f.name not in ("proof", "miners_proving", "miners_delivering",
                                                                "first_proven_at", "last_proven_at")]


def _files_sql(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _source(con: duckdb.DuckDBPyConnection, name: str, files: list[str], schema: pa.Schema) -> str:
    """A relation over the published files of a table, each row with its ``validator`` (from the path)."""
    if files:
        return f"(SELECT * EXCLUDE (epoch) FROM read_parquet({_files_sql(files)}, hive_partitioning = true))"
    con.register(f"empty_{name}", schema.empty_table())
    return f"(SELECT *, NULL::VARCHAR AS validator FROM empty_{name})"


def _manifest_tables(mirror: Mirror) -> tuple[pa.Table, pa.Table]:
    epochs, zipcodes = [], []
    for m in mirror.manifests():
        rows = m.get("rows") or {}
        epochs.append({"epoch_id": m["epoch_id"], "validator": m["validator"], "block": m.get("block"),
                       "listings": rows.get("listings"), "observations": rows.get("observations")})
        published = m.get("zipcodes") or {}
        for zipcode, expected in sorted((m.get("expected") or {}).items()):
            zipcodes.append({"epoch_id": m["epoch_id"], "validator": m["validator"], "zipcode": zipcode,
                             "expected": expected, "published": published.get(zipcode, 0)})
    epoch_schema = pa.schema([("epoch_id", pa.string()), ("validator", pa.string()), ("block", pa.int64()),
                              ("listings", pa.int64()), ("observations", pa.int64())])
    zip_schema = pa.schema([("epoch_id", pa.string()), ("validator", pa.string()), ("zipcode", pa.string()),
                            ("expected", pa.int64()), ("published", pa.int64())])
    return pa.Table.from_pylist(epochs, epoch_schema), pa.Table.from_pylist(zipcodes, zip_schema)


def connect(mirror: Mirror, min_validators: int | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views over ``mirror``'s verified epochs."""
    con = duckdb.connect(config={"threads": threads} if threads else {})
    epochs, zipcodes = _manifest_tables(mirror)
    con.register("published_epochs", epochs)
    con.register("published_zipcodes", zipcodes)
    listings = _source(con, "listings", mirror.files("listings"), LISTINGS_SCHEMA)
    observations = _source(con, "observations", mirror.files("observations"), OBSERVATIONS_SCHEMA)
    need = "e.validators // 2 + 1" if min_validators is None else str(int(min_validators))
    values = ", ".join(_VALUES)
    con.execute(f"""
        CREATE VIEW published AS SELECT * FROM published_epochs ORDER BY epoch_id, validator;
        CREATE VIEW epoch_validators AS
            SELECT epoch_id, count(DISTINCT validator) AS validators,
                   row_number() OVER (ORDER BY epoch_id) AS n
            FROM published_epochs GROUP BY epoch_id;
        CREATE VIEW listings AS
            SELECT v.* FROM (
                SELECT {values}, max(proof) AS proof, max(miners_proving) AS miners_proving,
                       max(miners_delivering) AS miners_delivering, min(first_proven_at) AS first_proven_at,
                       max(last_proven_at) AS last_proven_at, count(DISTINCT validator) AS validators
                FROM {listings} GROUP BY {values}) v
            JOIN epoch_validators e USING (epoch_id)
            WHERE v.validators >= {need}
            QUALIFY row_number() OVER (PARTITION BY v.epoch_id, v.listing_id
                                       ORDER BY v.validators DESC, v.last_proven_at DESC, v.price,
                                                v.listing_status) = 1;
        CREATE VIEW observations AS
            SELECT o.* FROM (
                SELECT epoch_id, listing_id, scraped_at, listing_status, price,
                       count(DISTINCT validator) AS validators
                FROM {observations} GROUP BY epoch_id, listing_id, scraped_at, listing_status, price) o
            JOIN epoch_validators e USING (epoch_id)
            WHERE o.validators >= {need};
        CREATE VIEW latest AS
            SELECT * FROM listings QUALIFY row_number() OVER (PARTITION BY listing_id ORDER BY epoch_id DESC) = 1;
        CREATE VIEW changes AS
            WITH states AS (
                SELECT l.epoch_id, l.listing_id, l.zipcode, l.listing_status, l.price, e.n,
                       min(e.n) OVER (PARTITION BY l.listing_id) AS first_n
                FROM listings l JOIN epoch_validators e USING (epoch_id)),
            pairs AS (
                SELECT coalesce(cur.n, prev.n + 1) AS k, coalesce(cur.listing_id, prev.listing_id) AS listing_id,
                       coalesce(cur.zipcode, prev.zipcode) AS zipcode,
                       prev.listing_status AS old_status, cur.listing_status AS new_status,
                       prev.price AS old_price, cur.price AS new_price,
                       cur.n = cur.first_n AS first_time, cur.listing_id IS NULL AS gone,
                       prev.listing_id IS NULL AS came
                FROM states cur FULL OUTER JOIN states prev
                  ON cur.listing_id = prev.listing_id AND cur.n = prev.n + 1),
            kinds AS (
                SELECT e.epoch_id, p.listing_id, p.zipcode,
                       CASE WHEN came AND first_time THEN 'new'
                            WHEN came THEN 'relisted'
                            WHEN gone THEN CASE WHEN old_status = 'sold' THEN NULL ELSE 'withdrawn' END
                            WHEN new_status = 'sold' AND old_status <> 'sold' THEN 'sold'
                            WHEN new_status = 'pending' AND old_status <> 'pending' THEN 'pending'
                            WHEN new_status = 'active' AND old_status <> 'active' THEN 'relisted'
                            WHEN new_price < old_price THEN 'price_cut'
                            WHEN new_price > old_price THEN 'price_raise'
                       END AS change,
                       old_status, new_status, old_price, new_price
                FROM pairs p JOIN epoch_validators e ON e.n = p.k
                WHERE p.k > 1)
            SELECT * FROM kinds WHERE change IS NOT NULL;
        CREATE VIEW market AS
            WITH counted AS (
                SELECT epoch_id, zipcode,
                       count(*) FILTER (WHERE change = 'new') AS new,
                       count(*) FILTER (WHERE change = 'sold') AS sold,
                       count(*) FILTER (WHERE change = 'price_cut') AS price_cuts
                FROM changes GROUP BY epoch_id, zipcode)
            SELECT l.epoch_id, l.zipcode,
                   count(*) FILTER (WHERE listing_status IN ('active', 'pending')) AS inventory,
                   count(*) FILTER (WHERE listing_status = 'active') AS active,
                   count(*) FILTER (WHERE listing_status = 'pending') AS pending,
                   quantile_cont(price, 0.5) FILTER (WHERE listing_status IN ('active', 'pending')) AS median_price,
                   quantile_cont(price, 0.25) FILTER (WHERE listing_status IN ('active', 'pending')) AS q1_price,
                   quantile_cont(price, 0.75) FILTER (WHERE listing_status IN ('active', 'pending')) AS q3_price,
                   quantile_cont(days_on_market, 0.5) FILTER (WHERE listing_status IN ('active', 'pending'))
                       AS median_days_on_market,
                   coalesce(any_value(c.new), 0) AS new, coalesce(any_value(c.sold), 0) AS sold,
                   coalesce(any_value(c.price_cuts), 0) AS price_cuts
            FROM listings l LEFT JOIN counted c USING (epoch_id, zipcode)
            GROUP BY l.epoch_id, l.zipcode;
        CREATE VIEW coverage AS
            WITH proven AS (
                SELECT epoch_id, zipcode, count(*) AS proven, min(validators) AS validators_agreeing
                FROM listings GROUP BY epoch_id, zipcode)
            SELECT z.epoch_id, z.zipcode, max(z.expected) AS expected, coalesce(any_value(p.proven), 0) AS proven,
                   count(DISTINCT z.validator) AS validators_published,
                   coalesce(any_value(p.validators_agreeing), 0) AS validators_agreeing
            FROM published_zipcodes z LEFT JOIN proven p USING (epoch_id, zipcode)
            GROUP BY z.epoch_id, z.zipcode;
    """)
    return con
