"""The Realtor normalizer on recorded Realtor-shaped records: every edge case and every drop reason."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from resi.epochs import parse_iso
from resi.listings.checks import row_problem
from resi.listings.schema import ListingRow
from resi.scraping.normalize import moment_span, normalize_realtor, realtor_facts
from resi.scraping.pipeline import clean_records, dedupe
from resi.scraping.source import Drop

RECORDS = json.loads((Path(__file__).parent / "realtor_records.json").read_text())
SCRAPED = datetime(2025, 10, 1, 17, 30, tzinfo=timezone.utc)


def norm(name: str) -> dict:
    row = normalize_realtor(RECORDS[name], SCRAPED)
    ListingRow(**row)  # a valid row of the schema
    assert row_problem(row) is None
    return row


def test_single_family_with_half_baths():
    row = norm("single_family_half_baths")
    assert row["bathrooms"] == 3.5 and row["bedrooms"] == 4 and row["sqft"] == 3148
    assert row["property_type"] == "house" and row["listing_status"] == "active"
    assert row["address"] == "2105 Spruce St, Philadelphia, PA 19103" and row["zipcode"] == "19103"
    assert row["listing_date"] == "2025-09-12" and row["days_on_market"] == 19
    assert row["mls_id"] == "PAPH2537711" and row["listing_id"] == "3412689754"
    assert row["source_url"].startswith("https://www.realtor.com/realestateandhomes-detail/")
    assert row["scraped_timestamp"] == "2025-10-01T17:30:00.000Z" and row["latitude"] == 39.947773


def test_condo_unit_keeps_its_unit_and_a_null_sqft():
    row = norm("condo_unit_missing_sqft")
    assert row["address"] == "1500 Locust St Apt 3512, Philadelphia, PA 19102"
    assert row["sqft"] is None and row["bathrooms"] == 2.0 and row["property_type"] == "condo"


def test_contingent_is_pending_and_text_numbers_are_read():
    row = norm("contingent_townhome")
    assert row["listing_status"] == "pending" and row["property_type"] == "townhouse"
    assert row["price"] == 615000.0 and row["sqft"] == 1980 and row["zipcode"] == "19106"
    assert row["mls_id"] is None and row["latitude"] is None


def test_land_has_null_rooms_and_no_age_without_a_list_date():
    row = norm("land_without_rooms")
    assert row["bedrooms"] is None and row["bathrooms"] is None and row["property_type"] == "land"
    assert row["listing_date"] is None and row["days_on_market"] is None and row["mls_id"] is None


def test_odd_types_and_pending_flag():
    row = norm("odd_type_apartment")
    assert row["property_type"] == "condo" and row["listing_status"] == "pending"
    assert row["sqft"] is None and row["mls_id"] == "3988712" and row["longitude"] == -74.659
    assert norm("mystery_type")["property_type"] == "other"


def test_sold_listing_days_on_market_run_to_the_sale():
    row = norm("sold_recently")
    assert row["listing_status"] == "sold" and row["days_on_market"] == 75 and row["bathrooms"] == 2.0


@pytest.mark.parametrize(
    "name,reason",
    [
        ("drop_null_price", "missing_price"),
        ("drop_rental", "not_for_sale"),
        ("drop_off_market", "unsupported_status"),
        ("drop_unknown_status", "unsupported_status"),
        ("drop_missing_id", "missing_id"),
        ("drop_missing_url", "missing_url"),
        ("drop_bad_zipcode", "bad_zipcode"),
        ("drop_missing_address", "missing_address"),
        ("drop_missing_city", "missing_city_or_state"),
    ],
)
def test_every_drop_reason(name, reason):
    with pytest.raises(Drop) as drop:
        normalize_realtor(RECORDS[name], SCRAPED)
    assert drop.value.reason == reason


def test_implausible_rows_are_dropped_with_their_problem():
    record = json.loads(json.dumps(RECORDS["single_family_half_baths"]))
    record["list_price"] = 12.0  # a price no house has
    drops: Counter = Counter()
    assert clean_records([record], normalize_realtor, SCRAPED, None, drops).num_rows == 0
    assert drops == {"invalid:range:price": 1}


def test_facts_describe_a_listing_whatever_its_status():
    off = realtor_facts(RECORDS["drop_off_market"], SCRAPED)
    assert off["status"] == "off_market" and off["listing_id"] == "4400110024" and off["price"] == 700000.0
    assert off["static"]["zipcode"] == "08542" and off["observed_at"] == SCRAPED.timestamp()
    sold = realtor_facts(RECORDS["sold_recently"], SCRAPED)
    assert sold["status"] == "sold" and any(e[2:] == ["status", "sold"] for e in sold["events"])
    active = realtor_facts(RECORDS["single_family_half_baths"], SCRAPED)
    row = norm("single_family_half_baths")
    assert {k: row[k] for k in active["static"]} == active["static"]  # the same static fields as the row
    listed = [e for e in active["events"] if e[2] == "listed"]
    assert len(listed) == 1 and listed[0][0] == parse_iso(RECORDS["single_family_half_baths"]["list_date"]).timestamp()
    with pytest.raises(Drop, match="missing_id"):
        realtor_facts(RECORDS["drop_missing_id"], SCRAPED)


def test_facts_read_the_property_history_with_its_precision():
    record = json.loads(json.dumps(RECORDS["single_family_half_baths"]))
    record["property_history"] = [  # Realtor lists the newest first; dates only
        {"date": "2025-09-30", "event_name": "Price Changed", "price": 1_190_000},
        {"date": "2025-09-12", "event_name": "Listed", "price": 1_250_000},
        {"date": "2024-01-05", "event_name": "Listed for rent", "price": 4_000},
    ]
    facts = realtor_facts(record, SCRAPED)
    day = 86_400.0
    start = datetime(2025, 9, 12, tzinfo=timezone.utc).timestamp()
    assert facts["events"] == [
        [start, start + day, "listed", 1_250_000.0],
        [start + 18 * day, start + 19 * day, "price", 1_190_000.0],
    ]


def test_time_strings_carry_their_precision():
    assert moment_span("2025-10-01")[1] == 86_400.0
    assert moment_span("2025-10-01T16:00:05Z") == (datetime(2025, 10, 1, 16, 0, 5, tzinfo=timezone.utc), 1.0)
    assert moment_span("2025-10-01T16:00:05.123Z")[1] == 0.001
    assert moment_span("2025-10-01T16:00Z")[1] == 60.0
    for junk in ("", "yesterday", "2025-02-31", "x" * 100, None, 5):
        assert moment_span(junk) is None


def test_rows_take_the_time_their_answer_arrived():
    record = dict(RECORDS["single_family_half_baths"], _observed_at=SCRAPED.timestamp() + 12.3456)
    row = normalize_realtor(record, SCRAPED)
    assert row["scraped_timestamp"] == "2025-10-01T17:30:12.345Z"


def test_non_records_are_dropped_not_crashed():
    for junk in (None, [], "x", 3):
        with pytest.raises(Drop):
            normalize_realtor(junk, SCRAPED)


def test_clean_and_dedupe_count_every_reason():
    records = [r for k, r in RECORDS.items() if not k.startswith("_")]
    duplicate = dict(RECORDS["sold_recently"])
    variant = json.loads(json.dumps(RECORDS["condo_unit_missing_sqft"]))
    variant["property_id"] = "9801254699"  # another id, same unit spelled differently
    variant["location"]["address"]["line"] = "1500 locust street apartment 3512"
    drops: Counter = Counter()
    rows = clean_records([*records, duplicate, variant], normalize_realtor, SCRAPED, None, drops)
    kept = dedupe(rows, drops).to_pylist()
    assert drops["duplicate_id"] == 1 and drops["duplicate_address"] == 1
    assert drops["missing_price"] == 1 and drops["unsupported_status"] == 2 and drops["not_for_sale"] == 1
    assert len(kept) == 7 and len({r["listing_id"] for r in kept}) == 7
    only_08540: Counter = Counter()
    table = clean_records(records, normalize_realtor, SCRAPED, "08540", only_08540)
    assert set(table["zipcode"].to_pylist()) == {"08540"}
    assert only_08540["outside_zipcode"] == 4


def test_numbers_no_column_can_hold_are_none_and_bad_answer_times_are_drops():
    record = json.loads(json.dumps(RECORDS["single_family_half_baths"]))
    record["description"].update(beds=10**30, sqft=2**53, baths_full=-(2**53))
    row = normalize_realtor(record, SCRAPED)
    assert row["bedrooms"] is None and row["sqft"] is None and row["bathrooms"] == 0.5
    assert clean_records([record], normalize_realtor, SCRAPED, None, Counter()).num_rows == 1  # no overflow
    with pytest.raises(Drop, match="malformed_record"):
        normalize_realtor(dict(record, _observed_at=1e300), SCRAPED)
