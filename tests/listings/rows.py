"""A listing row for the tests of the schema, its checks and the miner's files."""

from __future__ import annotations


def good_row(**changes) -> dict:
    """A listing row that passes every check, with ``changes`` applied."""
    row = {
        "address": "12 Oak St, Princeton, NJ 08540",
        "zipcode": "08540",
        "price": 550000.0,
        "bedrooms": 3,
        "bathrooms": 2.5,
        "sqft": 1800,
        "listing_date": "2025-09-01",
        "property_type": "house",
        "listing_status": "active",
        "days_on_market": 30,
        "mls_id": "NJ123",
        "source_url": "https://x/y_M1",
        "scraped_timestamp": "2025-10-01T17:00:00.000Z",
        "listing_id": "1000001",
        "city": "Princeton",
        "state": "NJ",
        "latitude": 40.35,
        "longitude": -74.66,
    }
    row.update(changes)
    return row
