"""The miner's fast path (``realtor_table``, the pipeline's columnar normalizer and its vectorized dedupe)
makes exactly the rows and drop counts of the record-by-record definition (``normalize_realtor``, the
sequential dedupe), on generated listings and on records with every field bent: other JSON types, numbers at
the edges, NaN and infinities, odd strings and dates, nodes that are not objects, non-JSON Python values."""

from __future__ import annotations

import copy
import json
import math
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resi import market
from resi.listings.schema import address_key
from resi.localnet.world import ListingWorld, WorldConfig, to_realtor
from resi.scraping.normalize import normalize_realtor
from resi.scraping.pipeline import clean_records, dedupe
from resi.scraping.realtor_table import realtor_table
from resi.scraping.source import normalize_each

RECORDS = json.loads((Path(__file__).parent / "realtor_records.json").read_text())
SAMPLES = [r for name, r in RECORDS.items() if not name.startswith("_")]
SCRAPED = datetime(2025, 10, 1, 17, 30, tzinfo=timezone.utc)


def both(records: list, scraped_at: datetime = SCRAPED) -> tuple[pa.Table, Counter]:
    """The definition's rows and drops, after asserting that the fast path gives the same."""
    drops_one, drops_all = Counter(), Counter()
    one = normalize_each(copy.deepcopy(records), normalize_realtor, scraped_at, drops_one)[0]
    fast = realtor_table(records, scraped_at, drops_all)
    assert fast.schema == one.schema
    for name in one.column_names:
        assert fast[name].to_pylist() == one[name].to_pylist() or _same_nan(fast[name], one[name]), name
    assert drops_all == drops_one
    return one, drops_one


def _same_nan(a, b) -> bool:
    return all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in zip(a.to_pylist(), b.to_pylist())
    )


@pytest.fixture(scope="module")
def world_records() -> list[dict]:
    world = ListingWorld(WorldConfig(seed="fast-normalizer", scale=0.3))
    now = datetime(2025, 10, 1, tzinfo=timezone.utc).timestamp()
    out = []
    for zipcode in sorted(market.catalog())[:40]:
        out.extend(to_realtor(home, "https://www.realtor.com", history=len(out) % 3 == 0) for home in world.current(zipcode, now))
    for i, record in enumerate(out):
        record["_observed_at"] = now + 3600 + i // 50 * 0.3217
    return out


def test_generated_listings_take_the_fast_path_with_the_definitions_rows(world_records, monkeypatch):
    import resi.scraping.realtor_table as fast_path

    definition_calls = []
    monkeypatch.setattr(
        fast_path, "normalize_realtor", lambda record, at: definition_calls.append(record) or normalize_realtor(record, at)
    )
    rows, drops = both(world_records)
    assert not definition_calls  # every generated listing took the fast path
    assert rows.num_rows == len(world_records) > 2000 and not drops
    assert len(set(rows["scraped_timestamp"].to_pylist())) > 10


def test_the_recorded_edge_cases_and_every_drop_reason_agree():
    rows, drops = both(SAMPLES)
    assert sum(drops.values()) == 9 and rows.num_rows == len(SAMPLES) - 9


def test_a_coordinate_no_double_holds_takes_the_definitions_path():
    """An integer latitude beyond 2**53 (arrow refuses to round it into a double) once crashed the fast path."""
    for value in (2**53 + 1, -(2**53) - 1, 2**63):
        record = copy.deepcopy(SAMPLES[0])
        record["location"]["address"]["coordinate"] = {"lat": value, "lon": value}
        rows, _ = both([record, copy.deepcopy(SAMPLES[0])])
        assert rows.num_rows == 2 and rows["latitude"][0].as_py() == float(value)


def test_the_pipeline_keeps_the_same_rows_either_way(world_records):
    records = world_records[:3000] + SAMPLES
    records[10] = dict(records[10], list_price=12.0)  # implausible: dropped with its problem
    records[20] = dict(records[20], property_id=records[21]["property_id"])  # a duplicate id
    for zipcode in (None, records[0]["location"]["address"]["postal_code"]):
        slow, fast = Counter(), Counter()
        one = dedupe(clean_records(copy.deepcopy(records), normalize_realtor, SCRAPED, zipcode, slow), slow)
        other = dedupe(clean_records(records, normalize_realtor, SCRAPED, zipcode, fast, realtor_table), fast)
        assert one.equals(other) and slow == fast and fast["invalid:range:price"] == 1


class Text(str):
    """A str subclass (counts as its characters on both paths)."""


_EDGE_NUMBERS = [
    0,
    1,
    -1,
    2**53 - 1,
    2**53,
    -(2**53),
    2**53 + 1,
    -(2**53) - 1,
    2**63,
    -(2**63) - 1,
    10**400,
    0.5,
    -0.0,
    2.0**53,
    1e308,
    math.inf,
    -math.inf,
    math.nan,
    3.7,
    -2.5,
    250_000,
    1_250_000.0,
]
_EDGE_TEXTS = [
    "",
    " ",
    "  12 Main St ",
    "12 Main St\u00a0",
    "\x1c12 Main St",
    "ÑOÑO",
    "for_sale",
    "FOR_SALE",
    "sold",
    "pending",
    "contingent",
    "for_rent",
    "active",
    "off_market",
    "12345",
    "1234",
    "12345-6789",
    "٣٤٥٦٧",
    "http://x",
    "https://www.realtor.com/x",
    "ftp://x",
    "0012",
    "3412689754",
    " 3412689754",
    "2025-09-12",
    "2025-09-12T10:00:00Z",
    "2025-09-12T10:00:00.123456Z",
    "2025-02-31",
    "2025-09-12 10:00",
    "2025-09-12T24:00:00",
    "2025-09-12T10:00:00+05:00",
    "single_family",
    "CONDOS",
    "x" * 70,
]
_ODD = [
    None,
    True,
    False,
    [],
    {},
    [1],
    {"a": 1},
    b"bytes",
    np.int64(3),
    np.float64(2.5),
    Decimal("1.5"),
    Text("12 Main St"),
    Text("for_sale"),
]
VALUES = st.one_of(
    st.sampled_from(_EDGE_NUMBERS),
    st.sampled_from(_EDGE_TEXTS),
    st.sampled_from(_ODD),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
)
PATHS = [
    ("property_id",),
    ("href",),
    ("status",),
    ("list_price",),
    ("list_date",),
    ("last_sold_date",),
    ("_observed_at",),
    ("flags",),
    ("flags", "is_pending"),
    ("flags", "is_contingent"),
    ("description",),
    ("description", "type"),
    ("description", "sqft"),
    ("description", "beds"),
    ("description", "baths_full"),
    ("description", "baths_half"),
    ("source",),
    ("source", "listing_id"),
    ("location",),
    ("location", "address"),
    ("location", "address", "line"),
    ("location", "address", "city"),
    ("location", "address", "state_code"),
    ("location", "address", "postal_code"),
    ("location", "address", "coordinate"),
    ("location", "address", "coordinate", "lat"),
    ("location", "address", "coordinate", "lon"),
]


def bend(record: dict, path: tuple, value, delete: bool) -> dict:
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            return out
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SAMPLES) - 1),
            st.lists(st.tuples(st.sampled_from(PATHS), VALUES, st.sampled_from([False, False, False, False, True])), max_size=4),
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([None, 1759339800.5, 1759339800.123456789]),
)
def test_bent_records_get_the_definitions_rows_and_reasons(bent, observed):
    records = []
    for index, changes in bent:
        record = copy.deepcopy(SAMPLES[index])
        if observed is not None:
            record["_observed_at"] = observed
        for path, value, delete in changes:
            record = bend(record, path, value, delete)
        records.append(record)
    both(records + [None, "not a record", 5])


def test_dates_of_every_spelling_agree():
    rng = random.Random(3)
    base = RECORDS["sold_recently"]
    records = []
    for _ in range(3000):
        moment = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.uniform(-4e8, 2.5e7))
        text = moment.strftime(
            rng.choice(
                [
                    "%Y-%m-%d",
                    "%Y-%m-%dT%H:%M:%SZ",
                    "%Y-%m-%dT%H:%M:%S.%fZ",
                    "%Y-%m-%dT%H:%M:%S",
                    "%Y-%m-%dT%H:%M:%S+00:00",
                    "%Y-%m-%d %H:%M",
                    "%Y-%m-%dT%H:%M:%S.%f+02:00",
                ]
            )
        )
        if rng.random() < 0.1:
            text = text.replace(text[8:10], rng.choice(["00", "31", "32", "29"]), 1)
        field = rng.choice(["list_date", "last_sold_date"])
        record = dict(base, status=rng.choice(["sold", "for_sale"]), **{field: text})
        records.append(record)
    both(records)


def _dedupe_in_order(table: pa.Table) -> tuple[list[int], Counter]:
    """The definition of dedupe: walk the rows, keep one unless its id or address key was kept before."""
    seen_ids, seen_keys, kept, drops = set(), set(), [], Counter()
    for row, (listing, address, zipcode) in enumerate(
        zip(table["listing_id"].to_pylist(), table["address"].to_pylist(), table["zipcode"].to_pylist())
    ):
        key = address_key(address, zipcode)
        if listing in seen_ids:
            drops["duplicate_id"] += 1
        elif key in seen_keys:
            drops["duplicate_address"] += 1
        else:
            seen_ids.add(listing)
            seen_keys.add(key)
            kept.append(row)
    return kept, drops


@pytest.mark.parametrize("seed", range(12))
def test_dedupe_keeps_the_rows_the_walk_in_order_keeps(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 5, 50, 2000])
    spellings = ["{} Main Street", "{} main st", "{} N Oak Ave Apt 4", "{} North Oak Avenue #4", "{} Elm Rd"]
    rows = {
        "listing_id": [str(rng.randrange(1000, 1000 + n * rng.choice([1, 2, 50]))) for _ in range(n)],
        "address": [rng.choice(spellings).format(rng.randrange(1, 1 + n // 3 + 2)) + ", Town, PA 19103" for _ in range(n)],
        "zipcode": [rng.choice(["19103", "19104"]) for _ in range(n)],
    }
    table = pa.table(rows)
    expected, reasons = _dedupe_in_order(table)
    drops: Counter = Counter()
    kept = dedupe(table, drops)
    assert kept.equals(table.take(pa.array(expected, pa.int64()))) and drops == reasons


def test_dedupe_takes_the_shortcut_and_the_walk():
    table = pa.table(
        {
            "listing_id": ["1", "2", "2", "3"],
            "address": ["5 Main St, T, PA 19103", "5 main street, T, PA 19103", "9 Oak Rd, T, PA 19103", "7 Elm Rd, T, PA 19103"],
            "zipcode": ["19103"] * 4,
        }
    )
    drops: Counter = Counter()
    assert dedupe(table, drops)["listing_id"].to_pylist() == ["1", "2", "3"]  # the second "2" is kept by the walk
    assert drops == {"duplicate_address": 1}
