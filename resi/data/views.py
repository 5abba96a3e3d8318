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
- ``changes``: each listing between an epoch and the last one before it that covered its zipcode: ``new`` (first
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

from pathlib import Path

import duckdb
import pyarrow as pa

from resi.data.consensus import CHANGES_FILE, PUBLISHED_SCHEMA, ZIPCODES_SCHEMA, changes_sql, sql_path
from resi.data.mirror import Mirror
from resi.listings.validated import LISTINGS_FILE, LISTINGS_SCHEMA, OBSERVATIONS_FILE, OBSERVATIONS_SCHEMA

_COUNTS = [pa.field("validators", pa.int32()), pa.field("published", pa.int32())]
CHANGES_SCHEMA = pa.schema(
    [
        ("epoch_id", pa.string()),
        ("listing_id", pa.string()),
        ("zipcode", pa.string()),
        ("change", pa.string()),
        ("old_status", pa.string()),
        ("new_status", pa.string()),
        ("old_price", pa.float64()),
        ("new_price", pa.float64()),
    ]
)


def _relation(con: duckdb.DuckDBPyConnection, name: str, pattern: Path, empty: pa.Schema) -> str:
    """``read_parquet`` of the derived files matching ``pattern`` (their ``day`` partition left out), or an empty
    relation of their columns while there are none."""
    if any(pattern.parent.parent.glob(f"{pattern.parent.name}/{pattern.name}")):
        return f"(SELECT * EXCLUDE (day) FROM read_parquet({sql_path(pattern)}, hive_partitioning = true))"
    con.register(f"empty_{name}", empty.empty_table())
    return f"empty_{name}"


def _table(con: duckdb.DuckDBPyConnection, name: str, path: Path, schema: pa.Schema) -> str:
    if path.exists():
        return f"read_parquet({sql_path(path)})"
    con.register(f"empty_{name}", schema.empty_table())
    return f"empty_{name}"


def connect(mirror: Mirror, min_validators: int | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views over ``mirror``'s verified epochs (as of its last sync). Every view is
    a scan of the derived files with filters a zipcode or an epoch narrows, so one zipcode over a year reads a
    few row groups per day, not the year."""
    con = duckdb.connect(config={"threads": threads} if threads else {})
    root = mirror.root / "consensus"
    listings = _relation(
        con,
        "listings",
        root / "day=*" / LISTINGS_FILE,
        pa.schema(list(LISTINGS_SCHEMA) + _COUNTS + [pa.field("top", pa.bool_())]),
    )
    observations = _relation(
        con, "observations", root / "day=*" / OBSERVATIONS_FILE, pa.schema(list(OBSERVATIONS_SCHEMA) + _COUNTS)
    )
    published = _table(con, "published", mirror.root / "published.parquet", PUBLISHED_SCHEMA)
    zipcodes = _table(con, "zipcodes", mirror.root / "zipcodes.parquet", ZIPCODES_SCHEMA)
    need = "published // 2 + 1" if min_validators is None else str(int(min_validators))
    if min_validators is None:  # the default consensus: derived at sync
        changes = "SELECT * FROM " + _relation(con, "changes", root / "day=*" / CHANGES_FILE, CHANGES_SCHEMA)
    else:
        changes = changes_sql("epoch_states", "zipcode_epochs", "n = first_n")
    con.execute(f"""
        CREATE VIEW published AS SELECT * FROM {published} ORDER BY epoch_id, validator;
        CREATE VIEW zipcode_epochs AS
            SELECT epoch_id, zipcode, row_number() OVER (PARTITION BY zipcode ORDER BY epoch_id) AS n
            FROM (SELECT DISTINCT epoch_id, zipcode FROM {zipcodes});
        CREATE VIEW listings AS
            SELECT * EXCLUDE (top, published) FROM {listings} WHERE top AND validators >= {need};
        CREATE VIEW observations AS
            SELECT * EXCLUDE (published) FROM {observations} WHERE validators >= {need};
        CREATE VIEW latest AS
            SELECT * FROM listings
            QUALIFY row_number() OVER (PARTITION BY zipcode, listing_id ORDER BY epoch_id DESC) = 1;
        CREATE VIEW epoch_states AS
            SELECT l.epoch_id, l.listing_id, l.zipcode, l.listing_status, l.price, e.n,
                   min(e.n) OVER w AS first_n, lag(e.n) OVER w AS prev_n, lag(l.listing_status) OVER w AS prev_status,
                   lag(l.price) OVER w AS prev_price, lead(e.n) OVER w AS next_n
            FROM listings l JOIN zipcode_epochs e USING (epoch_id, zipcode)
            WINDOW w AS (PARTITION BY l.zipcode, l.listing_id ORDER BY e.n);
        CREATE VIEW changes AS {changes};
        CREATE VIEW market AS
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
            FROM listings l LEFT JOIN (
                SELECT epoch_id, zipcode, count(*) FILTER (WHERE change = 'new') AS new,
                       count(*) FILTER (WHERE change = 'sold') AS sold,
                       count(*) FILTER (WHERE change = 'price_cut') AS price_cuts
                FROM changes GROUP BY epoch_id, zipcode) c USING (epoch_id, zipcode)
            GROUP BY l.epoch_id, l.zipcode;
        CREATE VIEW coverage AS
            SELECT z.epoch_id, z.zipcode, max(z.expected) AS expected, coalesce(any_value(p.proven), 0) AS proven,
                   count(DISTINCT z.validator) AS validators_published,
                   coalesce(any_value(p.validators_agreeing), 0) AS validators_agreeing
            FROM {zipcodes} z LEFT JOIN (
                SELECT epoch_id, zipcode, count(*) AS proven, min(validators) AS validators_agreeing
                FROM listings GROUP BY epoch_id, zipcode) p USING (epoch_id, zipcode)
            GROUP BY z.epoch_id, z.zipcode;
    """)
    return con
