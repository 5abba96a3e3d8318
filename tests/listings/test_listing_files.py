"""The listing schema, its plausibility rules, and reading untrusted files with limits."""

from __future__ import annotations

import json
import time
import typing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resi.epochs import UTC
from resi.listings.checks import row_problem, table_problems
from resi.listings.files import (
    FileRejected,
    ReadLimits,
    build_epoch_files,
    parquet_bytes,
    read_listings,
    read_metadata,
    sha256_hex,
    table_from_rows,
)
from resi.listings.schema import COLUMNS, LISTING_SCHEMA, REQUIRED_FIELDS, ListingRow, address_key
from tests.listings.rows import good_row

_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64()}


def test_arrow_schema_and_row_model_agree():
    assert tuple(ListingRow.model_fields) == COLUMNS == tuple(LISTING_SCHEMA.names)
    assert REQUIRED_FIELDS == (
        "address",
        "zipcode",
        "price",
        "bedrooms",
        "bathrooms",
        "sqft",
        "listing_date",
        "property_type",
        "listing_status",
        "days_on_market",
        "mls_id",
        "source_url",
        "scraped_timestamp",
    )
    for field in LISTING_SCHEMA:
        annotation = ListingRow.model_fields[field.name].annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = type(None) in typing.get_args(annotation)
        base = args[0] if nullable else annotation
        if typing.get_origin(base) is typing.Literal:
            base = str
        assert nullable == field.nullable, field.name
        assert _ARROW[base] == field.type, field.name


def test_plausibility_rules():
    assert row_problem(good_row()) is None
    assert (
        row_problem(
            good_row(
                bedrooms=None,
                bathrooms=None,
                sqft=None,
                listing_date=None,
                days_on_market=None,
                mls_id=None,
                latitude=None,
                longitude=None,
            )
        )
        is None
    )
    cases = {
        "null:price": good_row(price=None),
        "range:price": good_row(price=5.0),
        "type:bedrooms": good_row(bedrooms=2.5),
        "format:zipcode": good_row(zipcode="8540x"),
        "vocabulary:property_type": good_row(property_type="castle"),
        "vocabulary:listing_status": good_row(listing_status="for_sale"),
        "format:source_url": good_row(source_url="ftp://x"),
        "range:listing_date": good_row(listing_date="2025-10-05"),
        "format:listing_date": good_row(listing_date="Sep 1"),
        "range:sqft": good_row(sqft=5),
        "format:scraped_timestamp": good_row(scraped_timestamp="yesterday"),
        "range:latitude": good_row(latitude=123.0),
        "range:longitude": good_row(longitude=-200.0),
        "missing_column:city": {k: v for k, v in good_row().items() if k != "city"},
        "type:bathrooms": good_row(bathrooms=True),
        "empty:address": good_row(address="  "),
        "range:bedrooms": good_row(bedrooms=-1),
    }
    more = [
        ("format:listing_date", good_row(listing_date="2025-13-01")),
        ("format:listing_date", good_row(listing_date="2025-02-31")),
        ("format:scraped_timestamp", good_row(scraped_timestamp="2025-10-01T17:00:99.000Z")),
        ("range:price", good_row(price=float("nan"))),
        ("range:price", good_row(price=float("inf"))),
        ("range:latitude", good_row(latitude=float("nan"))),
    ]
    more += [("format:listing_id", good_row(listing_id=bad)) for bad in ("  ", "0123456", "12a456", "123", "1" * 21, "١٢٣٤٥")]
    more += [
        ("length:listing_id", good_row(listing_id="9" * 300_000)),
        ("length:address", good_row(address="x" * 513)),
        ("length:city", good_row(city="y" * 257)),
    ]
    for reason, row in [*cases.items(), *more]:
        assert row_problem(row) == reason, (reason, row_problem(row))
    # The vectorized form gives each row its own first problem.
    from resi.listings.schema import READ_SCHEMA

    rows = [good_row(), good_row(price=None), good_row(zipcode="1"), good_row(days_on_market=-1)]
    table = pa.Table.from_pylist(rows, schema=READ_SCHEMA)
    assert table_problems(table).to_pylist() == [None, "null:price", "format:zipcode", "range:days_on_market"]


def test_address_variants_share_a_key():
    a = address_key("123 North Main Street Apt. 4B, Philadelphia, PA 19103", "19103")
    assert a == address_key("123 n main st #4b", "19103") == address_key("123 N MAIN ST UNIT 4B, Phila", "19103")
    assert a != address_key("125 N Main St Apt 4B", "19103") and a != address_key("123 n main st #4b", "19104")


def test_epoch_files_round_trip():
    rows = [good_row(listing_id=str(1000 + i), zipcode=z) for i, z in enumerate(["08540", "08540", "19103"])]
    from datetime import datetime

    files = build_epoch_files(
        table_from_rows(rows),
        hotkey="hk",
        epoch_id="2025-10-01T16-00-00",
        nonce="n",
        scraper_name="s",
        scraper_version="1",
        started_at=datetime(2025, 10, 1, 16, tzinfo=UTC),
        finished_at=datetime(2025, 10, 1, 17, tzinfo=UTC),
    )
    meta = read_metadata(files.metadata_json)
    assert meta.parquet_sha256 == sha256_hex(files.parquet) and meta.row_count == 3
    assert meta.zipcode_counts == {"08540": 2, "19103": 1} and meta.epoch_id == "2025-10-01T16-00-00"
    assert json.loads(files.metadata_json)["epochId"] == "2025-10-01T16-00-00"
    assert read_listings(files.parquet).to_pylist() == rows
    assert pq.ParquetFile(pa.BufferReader(files.parquet)).metadata.row_group(0).column(0).compression == "ZSTD"


def _bomb_rows(n: int) -> bytes:
    """``n`` identical rows: a few KB of parquet that decode to ``n`` full rows."""
    table = table_from_rows([good_row()]).take(pa.array([0] * n))
    return parquet_bytes(table)


def test_footer_claiming_millions_of_rows_is_refused_before_decoding():
    data = _bomb_rows(2_000_000)
    assert len(data) < 2_000_000  # small on the wire
    before = pa.total_allocated_bytes()
    start = time.perf_counter()
    with pytest.raises(FileRejected) as err:
        read_listings(data, ReadLimits(max_rows=200_000))
    assert err.value.reason == "too_many_rows" and "2000000" in err.value.detail
    assert time.perf_counter() - start < 0.5
    assert pa.total_allocated_bytes() - before < 10_000_000  # nothing was decoded


def test_huge_decoded_size_is_refused_from_the_footer():
    blob = "a" * 20_000_000
    data = parquet_bytes(table_from_rows([good_row(address=blob, listing_id=str(1000 + i)) for i in range(3)]))
    assert len(data) < 100_000
    before = pa.total_allocated_bytes()
    with pytest.raises(FileRejected) as err:
        read_listings(data, ReadLimits(max_decoded_bytes=16_000_000))
    assert err.value.reason == "decoded_size_over_budget"
    assert pa.total_allocated_bytes() - before < 10_000_000


def test_file_over_the_byte_cap_is_refused():
    data = parquet_bytes(table_from_rows([good_row()]))
    with pytest.raises(FileRejected) as err:
        read_listings(data, ReadLimits(max_file_bytes=len(data) - 1))
    assert err.value.reason == "file_too_large"


def test_schema_mismatch_is_refused_with_a_clear_reason():
    table = table_from_rows([good_row()]).drop_columns(["mls_id"]).set_column(2, "price", pa.array(["550000"], pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(table.append_column("secret_sauce", pa.array([1])), sink)
    with pytest.raises(FileRejected) as err:
        read_listings(sink.getvalue().to_pybytes())
    assert err.value.reason == "schema_mismatch"
    assert "missing columns mls_id" in err.value.detail and "unexpected columns secret_sauce" in err.value.detail
    assert "column price is string, expected double" in err.value.detail


@pytest.mark.parametrize("data", [b"", b"PAR1garbagePAR1", b"\x00" * 100, b"not parquet at all"])
def test_garbage_is_unreadable_not_a_crash(data):
    with pytest.raises(FileRejected) as err:
        read_listings(data)
    assert err.value.reason == "parquet_unreadable"


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"{", "metadata_unreadable"),
        (b"[]", "metadata_unreadable"),
        (b"\xff", "metadata_unreadable"),
        (json.dumps({"hotkey": "h"}).encode(), "metadata_invalid"),
        (b" " * (2 * 1024 * 1024), "metadata_too_large"),
    ],
)
def test_bad_metadata_is_rejected_with_a_reason(data, reason):
    with pytest.raises(FileRejected) as err:
        read_metadata(data)
    assert err.value.reason == reason
