"""Every gate, row check, truth-check step, copy rule and score formula, with plain data and no network.
Each has a case that passes and a case that fails."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from resi.epochs import UTC, iso_z
from resi.listings.files import ReadLimits, parquet_bytes, table_from_rows
from resi.listings.upload import Submission
from resi.validation.copies import Upload, find_copies, fingerprints
from resi.validation.evaluate import Prepared, apply_copies, finish, prepare
from resi.validation.gates import check_gates
from resi.validation.history import BAD, UNPROVEN, judge_claim, states_at, timeline
from resi.validation.params import ValidationParams
from resi.validation.rows import check_rows, url_matches
from resi.validation.scoring import completeness, epoch_score, quality, update_ema, weights
from resi.validation.truth import (
    REFUSED,
    UNANSWERED,
    choose_sample,
    conclude,
    refetch_verdict,
    sample_seed,
)
from tests.validation.epoch_data import (
    AFTER,
    CTX,
    DEADLINE,
    LISTED,
    ORIGIN,
    SNAP,
    START,
    H,
    P,
    T,
    facts,
    honest_rows,
    row,
    split_by_snapshot,
    submission,
)

# --- gates -------------------------------------------------------------------------------------------------


def test_gate_passes_an_honest_upload():
    gate = check_gates(submission(honest_rows()), CTX, P)
    assert gate.passed and gate.table.num_rows == 10
    assert check_gates(submission(honest_rows(), modified=DEADLINE - timedelta(seconds=1)), CTX, P).passed


def test_no_row_may_be_scraped_after_its_file_landed():
    uploaded = START + timedelta(hours=1, seconds=30)
    rows = [
        row(1, scraped_timestamp=iso_z(uploaded + timedelta(milliseconds=900))),  # same second: fine
        row(2, scraped_timestamp=iso_z(uploaded + timedelta(seconds=1))),
    ]
    assert check_rows(table_from_rows(rows), CTX, uploaded).reasons == [None, "scraped_outside_epoch"]


def _meta_edit(**changes):
    def tamper(parquet, meta):
        body = json.loads(meta)
        body.update(changes)
        return parquet, json.dumps(body).encode()

    return tamper


@pytest.mark.parametrize(
    "sub,reason",
    [
        (Submission("hk1", 1), "no_upload"),
        (Submission("hk1", 1, fetch_error="file_too_large"), "file_too_large"),
        (Submission("hk1", 1, listings=b"x", listings_modified=START), "missing_file"),
        (submission(honest_rows(), modified=DEADLINE + timedelta(seconds=1)), "late_upload"),
        (submission(honest_rows(), modified=DEADLINE), "late_upload"),  # in the deadline's second: maybe after it
        (submission(honest_rows(), tamper=lambda p, m: (p, b"{not json")), "metadata_unreadable"),
        (submission(honest_rows(), tamper=_meta_edit(rowCount="many")), "metadata_invalid"),
        (submission(honest_rows(), meta_hotkey="someone-else"), "metadata_hotkey_mismatch"),
        (submission(honest_rows(), epoch="2025-10-01T12-00-00"), "metadata_epoch_mismatch"),
        (submission(honest_rows(), nonce="guessed"), "wrong_nonce"),
        (submission(honest_rows(), tamper=_meta_edit(schemaVersion="0.1")), "schema_version_mismatch"),
        (submission(honest_rows(), tamper=lambda p, m: (p + b"x", m)), "sha256_mismatch"),
        (submission(honest_rows(), tamper=_meta_edit(rowCount=11)), "row_count_mismatch"),
        (submission(honest_rows(), tamper=_meta_edit(zipcodeCounts={"08540": 10})), "zipcode_counts_mismatch"),
    ],
)
def test_each_gate_fails_with_its_reason(sub, reason):
    gate = check_gates(sub, CTX, P)
    assert gate.reason == reason, (gate.reason, gate.detail)


def _resha(parquet: bytes, meta: bytes) -> tuple[bytes, bytes]:
    from resi.listings.files import sha256_hex

    body = json.loads(meta)
    body["parquetSha256"] = sha256_hex(parquet)
    return parquet, json.dumps(body).encode()


def test_parquet_bomb_and_bad_schema_are_gated():
    bomb = parquet_bytes(table_from_rows([row(1)]).take(pa.array([0] * 300_000)))
    sub = submission(honest_rows(), tamper=lambda p, m: _resha(bomb, m))
    assert check_gates(sub, CTX, ValidationParams(limits=ReadLimits(max_rows=200_000))).reason == "too_many_rows"
    sink = pa.BufferOutputStream()
    import pyarrow.parquet as pq

    pq.write_table(table_from_rows(honest_rows()).drop_columns(["listing_id"]), sink)
    sub = submission(honest_rows(), tamper=lambda p, m: _resha(sink.getvalue().to_pybytes(), m))
    gate = check_gates(sub, CTX, P)
    assert gate.reason == "schema_mismatch" and "listing_id" in gate.detail


# --- row checks ----------------------------------------------------------------------------------------------


def test_row_checks_pass_honest_rows():
    verdicts = check_rows(table_from_rows(honest_rows()), CTX)
    assert verdicts.reasons == [None] * 10


@pytest.mark.parametrize(
    "bad,reason",
    [
        (row(7, price=3.0), "range:price"),
        (
            row(
                7,
                zipcode="10001",
                address="7 Oak St, New York, NY 10001",
                source_url=f"{ORIGIN}/realestateandhomes-detail/7_New-York_NY_10001_M1007",
            ),
            "unassigned_zipcode",
        ),
        (row(7, scraped_timestamp=iso_z(START - timedelta(hours=5))), "scraped_outside_epoch"),
        (row(7, scraped_timestamp=iso_z(DEADLINE + timedelta(minutes=1))), "scraped_outside_epoch"),
        (row(7, scraped_timestamp="2025-10-01T17:00:00.000+02:00"), "scraped_timestamp_not_utc"),
        (row(7, source_url="https://fake-listings.example/realestateandhomes-detail/x_08540_M1007"), "bad_source_url"),
        (row(7, source_url=f"{ORIGIN}/realestateandhomes-detail/7-Oak_Princeton_NJ_08540_M9999"), "bad_source_url"),
        (row(7, source_url=f"{ORIGIN}/realestateandhomes-detail/7-Oak_Princeton_NJ_19103_M1007"), "bad_source_url"),
        (row(0, price=1.0e6), "duplicate_listing"),
        (row(8, address="0 oak street, Princeton, NJ 08540"), "duplicate_address"),
    ],
)
def test_each_row_check_fails_with_its_reason(bad, reason):
    verdicts = check_rows(table_from_rows([*honest_rows(), bad]), CTX)
    assert verdicts.reasons[:10] == [None] * 10 and verdicts.reasons[10] == reason


def test_realtor_urls_with_dashed_ids_match():
    url = f"{ORIGIN}/realestateandhomes-detail/2105-Spruce-St_Philadelphia_PA_19103_M34126-89754"
    assert url_matches(url, "3412689754", "19103", ORIGIN)
    assert not url_matches(url, "3412689755", "19103", ORIGIN)


# --- truth check ----------------------------------------------------------------------------------------------


def test_a_row_agreeing_with_the_source_is_proven_and_each_static_difference_is_not():
    assert judge_claim(row(1), facts(row(1)), START.timestamp()) is None
    for field, value in [
        ("bedrooms", 5),
        ("bathrooms", 1.0),
        ("sqft", 1818),
        ("property_type", "condo"),
        ("mls_id", "X1"),
        ("latitude", 40.3501),
        ("city", "Trenton"),
        ("zipcode", "19103"),
        ("address", "1 OAK STREET, Princeton, NJ 08540"),
        ("latitude", float("nan")),
    ]:
        assert judge_claim(row(1, **{field: value}), facts(row(1)), START.timestamp()) == (BAD, f"mismatch:{field}")


def test_a_status_that_changed_during_the_epoch_is_credited():
    pending_at = T + 2 * H  # went pending after the miner's scrape
    source = facts(
        row(1), status="pending", events=[[LISTED, LISTED + 1, "listed", None], [pending_at, pending_at + 1, "status", "pending"]]
    )
    assert judge_claim(row(1), source, START.timestamp()) is None  # active at its scrape time
    assert judge_claim(row(1, listing_status="pending"), source, START.timestamp()) == (UNPROVEN, "listing_status")
    already = facts(
        row(1), status="pending", events=[[LISTED, LISTED + 1, "listed", None], [T - H, T - H + 1, "status", "pending"]]
    )
    assert judge_claim(row(1), already, START.timestamp()) == (UNPROVEN, "listing_status")  # relabelled active


def test_a_price_changed_during_the_epoch_is_credited_with_the_sources_history():
    cut_at = T + H
    history = [[LISTED, LISTED + 1, "listed", 500_001.0], [cut_at, cut_at + 1, "price", 480_000.0]]
    source = facts(row(1), price=480_000.0, events=history)
    assert judge_claim(row(1), source, START.timestamp()) is None  # the old price was the price at its scrape
    late = row(1, scraped_timestamp=iso_z(START + timedelta(hours=3)))
    assert judge_claim(late, source, START.timestamp()) == (UNPROVEN, "price")  # old price after the cut: no
    search_only = facts(row(1), price=480_000.0, events=[[LISTED, LISTED + 1, "listed", None]])
    assert judge_claim(row(1, price=480_000.0), search_only, START.timestamp()) is None  # equal to the snapshot
    assert judge_claim(row(1), search_only, START.timestamp()) == (UNPROVEN, "price")  # differs: needs history


def test_a_biased_price_is_never_proven_however_small():
    history = [[LISTED, LISTED + 1, "listed", 500_001.0]]
    for bias in (1.09, 1.02, 1.0001):
        biased = row(1, price=round(500_001.0 * bias, 2))
        assert refetch_verdict(biased, facts(row(1), events=history), START.timestamp()) == "mismatch:price"


def test_days_on_market_are_exact_to_the_sources_precision():
    assert judge_claim(row(1, days_on_market=31), facts(row(1)), START.timestamp()) == (UNPROVEN, "days_on_market")
    assert judge_claim(row(1, days_on_market=29), facts(row(1)), START.timestamp()) == (UNPROVEN, "days_on_market")
    day = datetime(2025, 9, 1, tzinfo=UTC).timestamp()  # a source that gives the list date only
    source = facts(row(1), events=[[day, day + 86_400, "listed", None]])
    assert judge_claim(row(1, days_on_market=30), source, START.timestamp()) is None
    assert judge_claim(row(1, days_on_market=29), source, START.timestamp()) is None  # listed late on Sep 1
    assert judge_claim(row(1, days_on_market=28), source, START.timestamp()) == (UNPROVEN, "days_on_market")


def test_a_listing_sold_before_the_epoch_is_stale_one_sold_during_it_is_not():
    sold_before = START.timestamp() - 6 * H
    history = [[LISTED, LISTED + 1, "listed", 500_001.0], [sold_before, sold_before + 1, "status", "sold"]]
    for claim in (row(1), row(1, listing_status="sold")):  # relabelled active, or honestly "sold": stale either way
        assert refetch_verdict(claim, facts(row(1), status="sold", events=history), START.timestamp()) == "stale"
    withdrawn = [[LISTED, LISTED + 1, "listed", 500_001.0], [sold_before, sold_before + 1, "status", "off_market"]]
    assert refetch_verdict(row(1), facts(row(1), status="off_market", events=withdrawn), START.timestamp()) == "stale"
    sold_after = T + H  # sold during the epoch, after the miner's scrape: the row was right when scraped
    history = [
        [LISTED, LISTED + 1, "listed", 500_001.0],
        [T - H, T - H + 1, "status", "pending"],
        [sold_after, sold_after + 1, "status", "sold"],
    ]
    assert (
        refetch_verdict(row(1, listing_status="pending"), facts(row(1), status="sold", events=history), START.timestamp()) is None
    )
    relisted = withdrawn + [[START.timestamp() + 60, START.timestamp() + 61, "listed", 500_001.0]]
    late = row(1, days_on_market=0, listing_date="2025-10-01")
    assert refetch_verdict(late, facts(row(1), events=relisted), START.timestamp()) is None  # listed again in time


def test_history_branches_where_the_source_is_imprecise():
    day = datetime(2025, 10, 1, tzinfo=UTC).timestamp()
    events = [[LISTED, LISTED + 1, "listed", 100.0], [day, day + 86_400, "status", "pending"]]
    assert {s.status for s in states_at(events, T)} == {"active", "pending"}  # pending "on Oct 1": maybe not yet
    assert {s.status for s in states_at(events, day + 86_400)} == {"pending"}
    assert {s.status for s in states_at(events, LISTED - 1)} == {None}
    unexplained = timeline(
        {"events": [[LISTED, LISTED + 1, "listed", 100.0]], "observed_at": AFTER, "status": "pending", "price": 90.0}
    )
    assert {(s.status, s.price) for s in states_at(unexplained, T)} == {
        ("active", 100.0),
        ("active", 90.0),
        ("pending", 100.0),
        ("pending", 90.0),
    }


def test_sample_is_committed_to_block_hotkey_and_file():
    ids = [str(i) for i in range(100)]
    seed = sample_seed("0xabc", "hk", "sha")
    assert choose_sample(ids, seed, 30) == choose_sample(list(reversed(ids)), seed, 30)
    assert choose_sample(ids, seed, 30) != choose_sample(ids, sample_seed("0xabd", "hk", "sha"), 30)
    assert choose_sample(ids, seed, 30) != choose_sample(ids, sample_seed("0xabc", "hk", "sha2"), 30)
    assert choose_sample(ids[:10], seed, 30) == sorted(ids[:10])


def _truth(rows, answer, snapshot=SNAP, params=P):
    """The truth check of ``rows``; ``answer(listing_id, row)`` is the refetch outcome of a sampled row."""
    valid = {r["listing_id"]: r for r in rows}
    result, pool = split_by_snapshot(valid, snapshot, START.timestamp())
    result.sample_rows = {i: valid[i] for i in choose_sample(pool, sample_seed("0x1", "hk", "s"), params.sample_size)}
    return conclude(result, {i: answer(i, valid[i]) for i in result.sample}, START.timestamp(), params)


def test_rows_gone_from_the_snapshot_earn_once_the_source_confirms_them():
    gone = [row(50 + i) for i in range(3)]  # sold since the scrape: the source still has them
    truth = _truth(honest_rows() + gone, lambda i, r: facts(r))
    assert truth.factor == 1.0 and truth.estimated_rate == 0 and sum(truth.credited().values()) == 13


def test_unsampled_pool_rows_earn_at_the_samples_confirmed_rate():
    gone = [row(50 + i) for i in range(20)]
    rows = honest_rows() + gone
    truth = _truth(rows, lambda i, r: facts(r), params=ValidationParams(sample_size=4))
    assert len(truth.sample) == 4 and truth.confirmed == set(truth.sample)
    assert truth.credited() == {"08540": 25.0, "19103": 5.0}  # 16 unsampled rows, all extrapolated at rate 1
    half = _truth(rows, lambda i, r: facts(r) if int(i) % 2 else None, params=ValidationParams(sample_size=4))
    assert sum(half.credited().values()) == 10 + len(half.confirmed) + 16 * len(half.confirmed) / 4


def test_rows_whose_refetch_the_source_refuses_are_not_proven():
    fakes = [row(200 + i) for i in range(2)]
    truth = _truth(honest_rows() + fakes, lambda i, r: REFUSED)
    assert truth.bad == {"refused_by_source": 2} and truth.factor == 0.0 and not truth.confirmed
    assert truth.credited() == {"08540": 5, "19103": 5}


def test_fabricated_rows_are_found_by_the_sample():
    fakes = [row(200 + i) for i in range(2)]
    truth = _truth(honest_rows() + fakes, lambda i, r: None)
    assert truth.sample_bad == 2 and truth.bad == {"not_found_at_source": 2} and truth.factor == 0.0


def test_rows_disagreeing_with_the_snapshot_are_proven_false():
    rows = honest_rows()
    rows[0] = dict(rows[0], bedrooms=9)
    truth = _truth(rows, lambda i, r: facts(r))
    assert truth.bad == {"mismatch:bedrooms": 1} and truth.factor == 0.0  # 1 in 10 is over 5%


def test_a_biased_miner_scores_zero_through_the_sample():
    rows = [dict(r, price=r["price"] * 1.02) for r in honest_rows()]
    truth = _truth(rows, lambda i, r: facts(next(h for h in honest_rows() if h["listing_id"] == i)))
    assert truth.pooled == {"differs:price": 10} and truth.bad == {"mismatch:price": 10} and truth.factor == 0.0


def test_an_outage_costs_no_score_but_earns_nothing_unproven():
    extra = [row(300 + i) for i in range(10)]
    rows = honest_rows() + extra
    truth = _truth(rows, lambda i, r: UNANSWERED)
    assert truth.unanswered == 10 and truth.factor == 1.0 and truth.extrapolated == {}
    assert truth.credited() == {"08540": 5, "19103": 5}
    mostly = _truth(rows, lambda i, r: UNANSWERED if int(i) % 4 else facts(r))  # 3 of 10 answered: under 80%
    assert mostly.extrapolated == {} and mostly.factor == 1.0 and len(mostly.confirmed) == 3


# --- copies --------------------------------------------------------------------------------------------------


def _upload(hotkey, rows, minute, sha=None):
    table = table_from_rows(rows)
    return Upload(hotkey, START + timedelta(minutes=minute), sha or hotkey, fingerprints(table))


def test_honest_miners_sharing_listings_are_not_copies():
    a = honest_rows()
    b = [dict(r, scraped_timestamp=iso_z(START + timedelta(hours=1, milliseconds=37))) for r in a]
    assert find_copies([_upload("a", a, 1), _upload("b", b, 2)], P.copy_overlap) == {}


def test_a_later_copy_scores_for_the_first_only():
    a = honest_rows()
    assert find_copies([_upload("late", a, 5), _upload("first", a, 1)], P.copy_overlap) == {"late": "copy_of:first"}
    same_file = find_copies([_upload("x", a, 1, sha="S"), _upload("y", a[:1], 3, sha="S")], P.copy_overlap)
    assert same_file == {"y": "copy_of:x"}
    assert find_copies([_upload("p", a, 1), _upload("q", a, 1)], P.copy_overlap) == {"p": "copy_tie:q", "q": "copy_tie:p"}


# --- scores --------------------------------------------------------------------------------------------------


def test_completeness_caps_and_forgives_thin_zipcodes():
    expected = {"a": 100, "b": 100}
    assert completeness({"a": 100, "b": 100}, expected, {"a": 100, "b": 100}) == 1.0
    assert completeness({"a": 500, "b": 0}, expected, {"a": 100, "b": 100}) == 0.5  # over-delivery earns nothing
    assert completeness({"a": 100, "b": 60}, expected, {"a": 100, "b": 60}) == 1.0  # b has only 60 real listings
    assert completeness({"a": 100, "b": 30}, expected, {"a": 100, "b": None}) == 0.65  # b unknown: expected
    assert completeness({}, {}, {}) == 0.0


def test_quality_and_score():
    assert quality(100, 0, 10) == 1.0 and quality(100, 5, 10) == 0.5 and quality(100, 10, 10) == 0.0
    assert quality(0, 0, 10) == 0.0
    assert epoch_score(1.0, 0.5, 0.98) == 0.49 and epoch_score(1.0, 1.0, 0.0) == 0.0


def test_ema_resets_on_a_new_hotkey_and_counts_skipped_epochs_as_zero():
    ema = update_ema({}, {0: ("a", 1.0), 1: ("b", 1.0)}, 0.5)
    assert ema == {0: ("a", 0.5), 1: ("b", 0.5)}
    ema = update_ema(ema, {0: ("a", 0.0), 1: ("c", 1.0)}, 0.5)  # a skipped; uid 1 now hotkey c
    assert ema == {0: ("a", 0.25), 1: ("c", 0.5)}
    assert update_ema(ema, {1: ("c", 1.0)}, 0.5) == {1: ("c", 0.75)}  # uid 0 left the metagraph


def test_weights_are_the_normalized_ema():
    assert weights({0: ("a", 0.25), 1: ("c", 0.75), 2: ("d", 0.0)}) == ([0, 1], [0.25, 0.75])
    assert weights({0: ("a", 0.0)}) == ([], [])


# --- one miner end to end ----------------------------------------------------------------------------------


def test_evaluate_an_honest_miner_and_a_copy():
    sub = submission(honest_rows())
    prepared = prepare(sub, CTX, P, SNAP, "0x1")
    assert isinstance(prepared, Prepared) and prepared.sample == []
    result = finish(prepared, {}, CTX, SNAP.counts, P)
    assert result.score == 1.0 and result.rows_valid == 10 and result.reasons == {}
    apply_copies([result], {"hk1": "copy_of:other"})
    assert result.score == 0.0 and result.copy == "copy_of:other" and result.reasons == {"copy_of": 1}


def test_evaluate_a_padder_and_a_gated_miner():
    padded = honest_rows() + [
        row(
            i,
            address=f"{i} oak street, Princeton, NJ 08540",
            listing_id=str(5000 + i),
            source_url=f"{ORIGIN}/realestateandhomes-detail/x_08540_M{5000 + i}",
        )
        for i in range(3)
    ]
    result = finish(prepare(submission(padded), CTX, P, SNAP, "0x1"), {}, CTX, SNAP.counts, P)
    assert result.reasons == {"duplicate_address": 3} and result.quality == 0.0 and result.score == 0.0
    gated = finish(prepare(submission(honest_rows(), nonce="x"), CTX, P, SNAP, "0x1"), {}, CTX, SNAP.counts, P)
    assert gated.gate == "wrong_nonce" and gated.score == 0.0 and gated.reasons == {"wrong_nonce": 1}
    assert Counter(gated.reasons)["wrong_nonce"] == 1
