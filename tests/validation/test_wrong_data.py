"""Wrong data never pays, with plain data through ``prepare`` and ``finish``: a row the validator has proven false
(by its snapshot, by the refetched sample, or invented on top of a complete delivery) earns nothing and costs the
penalty's multiple of its share; ``source_url`` is proven like any static field; copy detection reads instants,
not spellings; and every column of the schema is covered by a rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from resi.epochs import iso_z
from resi.listings.files import table_from_rows
from resi.listings.schema import COLUMNS
from resi.validation.copies import Upload, fingerprints
from resi.validation.copies import find_copies as fast_copies
from resi.validation.evaluate import finish, prepare
from resi.validation.history import STATEMENT_FIELDS, STATIC_FIELDS, TIMED_FIELDS, UNPROVEN, judge_claim
from resi.validation.params import EpochContext
from resi.validation.reference import find_copies as reference_copies
from resi.validation.rows import check_rows
from resi.validation.truth import Snapshot
from tests.validation.epoch_data import DEADLINE, LISTED, ORIGIN, START, H, P, T, facts, row, submission

PER_ZIP = 50
CTX = EpochContext("2025-10-01T16-00-00", "nonce1", START, DEADLINE, {"08540": PER_ZIP, "19103": PER_ZIP}, 10, ORIGIN)
HONEST = [row(i) for i in range(PER_ZIP)] + [row(100 + i, "19103") for i in range(PER_ZIP)]
SNAPSHOT = Snapshot({r["listing_id"]: facts(r) for r in HONEST}, {"08540": PER_ZIP, "19103": PER_ZIP})
TRUE_BY_ID = {r["listing_id"]: r for r in HONEST}


def judged(rows: list[dict], answer=lambda listing_id: facts(TRUE_BY_ID[listing_id]) if listing_id in TRUE_BY_ID else None):
    """The miner's epoch result for ``rows``; ``answer``: the source's answer to a refetch by id."""
    prepared = prepare(submission(rows), CTX, P, SNAPSHOT, "0xblock")
    assert prepared.passed, prepared.gate_detail
    return finish(prepared, {i: answer(i) for i in prepared.sample}, CTX, SNAPSHOT.counts, P)


def test_an_honest_file_is_paid_in_full():
    result = judged(HONEST)
    assert result.score == 1.0 and result.rows_credited == 100


@pytest.mark.parametrize("how", ["snapshot", "sample"])
def test_a_few_rows_proven_false_cost_the_multiple_of_their_share(how):
    """Three rows (3%) falsified: by the snapshot (a size it contradicts) or by the sample (a price no history
    confirms). Against the same file without them: each costs ``false_penalty`` times its share."""
    false = {"snapshot": dict(sqft=2400), "sample": dict(price=512_345.0)}[how]
    rows = [dict(r, **false) if i < 3 else r for i, r in enumerate(HONEST)]
    with_them, without = judged(rows), judged(HONEST[3:])
    reason = {"snapshot": "mismatch:sqft", "sample": "mismatch:price"}[how]
    assert with_them.reasons == {reason: 3} and with_them.rows_credited == without.rows_credited == 97
    assert with_them.estimated_fabrication == 0.03
    assert with_them.score == round(without.score * (1 - P.false_penalty * 0.03), 6) < without.score
    assert with_them.score < 0.97 * 0.97  # keeping 1 - r (the old rule) was still too much


def test_listings_invented_on_top_of_a_complete_delivery_cost_the_multiple_of_their_share():
    invented = [row(900 + i) for i in range(3)]
    with_them, without = judged(HONEST + invented), judged(HONEST)
    assert with_them.reasons == {"not_found_at_source": 3} and with_them.completeness == without.completeness == 1.0
    assert with_them.score == round(1 - P.false_penalty * 3 / 103, 6) < without.score


def test_a_miner_with_one_percent_proven_false_earns_less_than_by_leaving_them_out():
    rows = [dict(r, bedrooms=r["bedrooms"] + 1) if i == 0 else r for i, r in enumerate(HONEST)]
    assert judged(rows).score < judged(HONEST[1:]).score


def _page(r: dict, slug: str) -> str:
    return f"{ORIGIN}/realestateandhomes-detail/{slug}_{r['zipcode']}_M{r['listing_id']}"


def test_a_source_url_that_is_not_the_listings_page_is_not_paid():
    """Another listing's page (ending in this row's zipcode and id), a path that climbs out of the listing pages,
    a trailing newline, a query string: none is the listing's page in its one spelling."""
    rows = list(HONEST)
    rows[0] = dict(rows[0], source_url=_page(rows[0], "77-Elm-St_Princeton_NJ"))
    rows[1] = dict(rows[1], source_url=_page(rows[1], "../../somewhere/else"))
    rows[2] = dict(rows[2], source_url=rows[2]["source_url"] + "\n")
    rows[3] = dict(rows[3], source_url=rows[3]["source_url"] + "?utm=1")
    verdicts = check_rows(table_from_rows(rows), CTX).reasons
    assert verdicts[:4] == [None, "bad_source_url", "bad_source_url", "bad_source_url"] and set(verdicts[4:]) == {None}
    result = judged(rows)
    assert result.reasons == {"mismatch:source_url": 1, "bad_source_url": 3}
    assert result.rows_credited == 96 and result.score < judged(HONEST[4:]).score


def test_a_file_that_respells_another_files_timestamps_is_a_copy():
    original = [
        dict(r, scraped_timestamp=iso_z(START + timedelta(hours=1, milliseconds=i * 37 + 500))) for i, r in enumerate(HONEST)
    ]
    respelled = [
        dict(r, scraped_timestamp=r["scraped_timestamp"][:-1] + ("000+00:00" if i % 2 else "+00:00"))
        for i, r in enumerate(original)
    ]  # ...17:00:00.537Z -> ...17:00:00.537000+00:00 / .537+00:00
    assert all(a["scraped_timestamp"] != b["scraped_timestamp"] for a, b in zip(original, respelled))
    uploads = [
        Upload("first", START + timedelta(hours=1), "a", fingerprints(table_from_rows(original))),
        Upload("second", START + timedelta(hours=2), "b", fingerprints(table_from_rows(respelled))),
    ]
    for find_copies in (fast_copies, reference_copies):
        assert find_copies(uploads, P.copy_overlap) == {"second": "copy_of:first"}
    honest = [
        dict(r, scraped_timestamp=iso_z(START + timedelta(hours=1, milliseconds=i * 37 + 501))) for i, r in enumerate(HONEST)
    ]  # another scrape: a millisecond apart is another instant
    uploads[1] = Upload("second", START + timedelta(hours=2), "b", fingerprints(table_from_rows(honest)))
    assert fast_copies(uploads, P.copy_overlap) == {}


def test_every_column_is_proven_derived_or_a_checked_statement():
    """Adding a column to the schema without a rule fails here: each column is compared exactly with the source
    (static), proven against its dated history at the scrape time (timed: status, price, list date, and days on
    market derived from them), or the miner's statement that the others are proven at (the scrape time)."""
    ruled = STATIC_FIELDS + TIMED_FIELDS + STATEMENT_FIELDS
    assert len(set(ruled)) == len(ruled) and set(ruled) == set(COLUMNS)
    changed = {
        "listing_id": "1099",
        "zipcode": "19103",
        "listing_status": "pending",
        "listing_date": "2025-09-02",
        "property_type": "condo",
        "source_url": _page(row(1), "1-Oak-St_Trenton_NJ"),
    }
    for name in STATIC_FIELDS + TIMED_FIELDS:  # any other value of a proven column is not proven
        value = row(1)[name]
        other = changed.get(name, value + 1 if isinstance(value, (int, float)) else f"{value}x")
        assert judge_claim(row(1, **{name: other}), facts(row(1)), START.timestamp()) is not None, name
    # the statement: inside the epoch, and the moment the timed fields must hold at
    late = iso_z(DEADLINE + timedelta(seconds=1))
    assert check_rows(table_from_rows([row(1, scraped_timestamp=late)]), CTX).reasons == ["scraped_outside_epoch"]
    cut = [[LISTED, LISTED + 1, "listed", row(1)["price"]], [T + H, T + H + 1, "price", 480_000.0]]
    after_the_cut = row(1, scraped_timestamp=iso_z(START + timedelta(hours=3)))
    assert judge_claim(after_the_cut, facts(row(1), price=480_000.0, events=cut), START.timestamp()) == (UNPROVEN, "price")
