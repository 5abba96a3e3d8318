"""Zipcode selection and nonces of the reference server, as pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta

from resi import market
from resi.api.server.assignments import (
    SelectionParams,
    build_assignment,
    cooldown_window,
    nonce_for,
    select_zipcodes,
    selection_seed,
)
from resi.epochs import UTC, epoch_at


def test_selection_lands_within_tolerance_with_tiers_and_production_counts():
    params = SelectionParams(target=10_000, tolerance_percent=10, scale=1.0)
    zips = select_zipcodes(selection_seed(b"s", "2025-10-01T16-00-00"), params, set())
    total = sum(market.expected_listings(z.zipcode) for z in zips)
    assert 9_000 <= total <= 11_000
    assert {z.tier for z in zips} == set(market.TIERS)
    assert all(200 <= market.expected_listings(z.zipcode) <= 3_000 for z in zips)
    assert len({z.zipcode for z in zips}) == len(zips)


def test_cooldown_rotates_zipcodes_and_states_restrict_them():
    params = SelectionParams(target=2_000, tolerance_percent=10, scale=0.2, states=frozenset({"PA", "NJ"}))
    first = select_zipcodes(1, params, set())
    second = select_zipcodes(2, params, {z.zipcode for z in first})
    assert first and second and not {z.zipcode for z in first} & {z.zipcode for z in second}
    assert {z.state for z in first + second} <= {"PA", "NJ"}


def test_nonces_are_secret_keyed_and_per_epoch():
    assert nonce_for(b"secret", "e1") != nonce_for(b"secret", "e2") != nonce_for(b"other", "e1")
    assert nonce_for(b"secret", "e1") == nonce_for(b"secret", "e1") and len(nonce_for(b"s", "e")) == 16


def test_assignment_wire_shape_and_cooldown_window():
    epoch = epoch_at(datetime(2025, 10, 1, 17, tzinfo=UTC))
    params = SelectionParams(target=500, tolerance_percent=10, scale=0.05)
    zips = select_zipcodes(7, params, set())
    body = build_assignment(epoch, "abc", 7, zips, params)
    assert body["epochId"] == "2025-10-01T16-00-00" and body["submissionDeadline"] == "2025-10-01T20:00:00.000Z"
    assert body["metadata"]["zipcodeCount"] == len(zips) == len(body["zipcodes"])
    assert body["metadata"]["totalExpectedListings"] == sum(z["expectedListings"] for z in body["zipcodes"])
    since, before = cooldown_window(epoch, timedelta(hours=24))
    assert before - since == 24 * 3600 and before == epoch.start.timestamp()
