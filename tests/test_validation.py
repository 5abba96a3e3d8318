"""Every gate, row check, truth-check step, copy rule and score formula, with plain data and no network.
Each has a case that passes and a case that fails."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from resi.epochs import UTC, iso_z
from resi.listings.files import ReadLimits, build_epoch_files, parquet_bytes, table_from_rows
from resi.validation.copies import Upload, find_copies, fingerprints
from resi.validation.evaluate import Prepared, apply_copies, finish, prepare
from resi.validation.gates import Submission, check_gates
from resi.validation.params import EpochContext, ValidationParams
from resi.validation.rows import check_rows, url_matches
from resi.validation.scoring import completeness, epoch_score, quality, update_ema, weights
from resi.validation.truth import (
    FETCH_FAILED,
    Snapshot,
    choose_sample,
    first_difference,
    judge,
    sample_seed,
    split_by_snapshot,
)

START = datetime(2025, 10, 1, 16, tzinfo=UTC)
DEADLINE = START + timedelta(hours=4)
ORIGIN = "https://www.realtor.com"
CTX = EpochContext("2025-10-01T16-00-00", "nonce1", START, DEADLINE, {"08540": 5, "19103": 5}, 10, ORIGIN)
P = ValidationParams()
SCRAPED = iso_z(START + timedelta(hours=1))


def row(i: int, zipcode: str = "08540", **changes) -> dict:
    base = {
        "address": f"{i} Oak St, Princeton, NJ {zipcode}", "zipcode": zipcode, "price": 500_000.0 + i, "bedrooms": 3,
        "bathrooms": 2.5, "sqft": 1800, "listing_date": "2025-09-01", "property_type": "house",
        "listing_status": "active", "days_on_market": 30, "mls_id": f"NJ{i}",
        "source_url": f"{ORIGIN}/realestateandhomes-detail/{i}-Oak-St_Princeton_NJ_{zipcode}_M{1000 + i}",
        "scraped_timestamp": SCRAPED, "listing_id": str(1000 + i), "city": "Princeton", "state": "NJ",
        "latitude": 40.35, "longitude": -74.66,
    }
    base.update(changes)
    return base


def honest_rows(n_per_zip: int = 5) -> list[dict]:
    return [row(i) for i in range(n_per_zip)] + [row(100 + i, "19103") for i in range(n_per_zip)]


def submission(rows: list[dict], hotkey="hk1", nonce="nonce1", epoch="2025-10-01T16-00-00", modified=None,
               tamper=None, meta_hotkey=None) -> Submission:
    files = build_epoch_files(table_from_rows(rows), hotkey=meta_hotkey or hotkey, epoch_id=epoch, nonce=nonce,
                              scraper_name="t",
                              scraper_version="1", started_at=START, finished_at=START)
    parquet, meta = files.parquet, files.metadata_json
    if tamper:
        parquet, meta = tamper(parquet, meta)
    at = modified or START + timedelta(hours=2)
    return Submission(hotkey, 1, parquet, meta, at, at)


SNAP = Snapshot({r["listing_id"]: r for r in honest_rows()}, {"08540": 5, "19103": 5})


# --- gates -------------------------------------------------------------------------------------------------


def test_gate_passes_an_honest_upload():
    gate = check_gates(submission(honest_rows()), CTX, P)
    assert gate.passed and gate.table.num_rows == 10


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
        (row(7, zipcode="10001", address="7 Oak St, New York, NY 10001",
             source_url=f"{ORIGIN}/realestateandhomes-detail/7_New-York_NY_10001_M1007"), "unassigned_zipcode"),
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


def test_rows_agreeing_with_the_snapshot_within_drift_match():
    drifted = row(1, price=500_001.0 * 0.95, listing_status="pending", days_on_market=31,
                  scraped_timestamp=iso_z(START + timedelta(hours=1)))
    truth = dict(row(1), scraped_timestamp=iso_z(DEADLINE + timedelta(minutes=10)), days_on_market=31)
    assert first_difference(drifted, truth, P) is None
    assert first_difference(row(1, address="1 OAK STREET, Princeton, NJ 08540"), row(1), P) is None


@pytest.mark.parametrize(
    "field,value",
    [("price", 600_000.0), ("bedrooms", 5), ("bathrooms", 1.0), ("sqft", 2500), ("listing_date", "2025-08-01"),
     ("property_type", "condo"), ("mls_id", "X1"), ("days_on_market", 90), ("latitude", 41.0), ("city", "Trenton")],
)
def test_each_field_disagreement_is_found(field, value):
    assert first_difference(row(1, **{field: value}), row(1), P) == field


def test_sample_is_committed_to_block_hotkey_and_file():
    ids = [str(i) for i in range(100)]
    seed = sample_seed("0xabc", "hk", "sha")
    assert choose_sample(ids, seed, 30) == choose_sample(list(reversed(ids)), seed, 30)
    assert choose_sample(ids, seed, 30) != choose_sample(ids, sample_seed("0xabd", "hk", "sha"), 30)
    assert choose_sample(ids, seed, 30) != choose_sample(ids, sample_seed("0xabc", "hk", "sha2"), 30)
    assert choose_sample(ids[:10], seed, 30) == sorted(ids[:10])


def _truth(rows, refetched, snapshot=SNAP, params=P):
    valid = {r["listing_id"]: r for r in rows}
    result, unverified = split_by_snapshot(rows, snapshot, params)
    sample = choose_sample(unverified, sample_seed("0x1", "hk", "s"), params.sample_size)
    return judge(result, valid, unverified, sample, refetched(sample, valid), params)


def test_honest_rows_missing_from_the_snapshot_verify_on_refetch():
    sold = [row(50 + i, listing_status="sold") for i in range(3)]  # gone from the search, still at the source
    truth = _truth(honest_rows() + sold, lambda sample, valid: {i: valid[i] for i in sample})
    assert truth.factor == 1.0 and truth.estimated_rate == 0 and len(truth.credited_ids) == 13


def test_fabricated_rows_are_found_by_the_sample():
    fakes = [row(200 + i, listing_id=f"F{i}", source_url=f"{ORIGIN}/realestateandhomes-detail/x_08540_MF{i}")
             for i in range(2)]
    truth = _truth(honest_rows() + fakes, lambda sample, valid: {i: None for i in sample})
    assert truth.sample_fabricated == 2 and truth.factor == 0.0 and truth.estimated_rate > P.fabrication_threshold


def test_rows_disagreeing_with_the_snapshot_count_as_fabricated():
    rows = honest_rows()
    rows[0] = dict(rows[0], bedrooms=9)
    truth = _truth(rows, lambda sample, valid: {})
    assert truth.mismatches == {"bedrooms": 1} and truth.factor == 0.0  # 1 in 10 is over 5%


def test_unanswered_refetches_count_neither_way():
    extra = [row(300 + i) for i in range(2)]
    truth = _truth(honest_rows() + extra, lambda sample, valid: {i: FETCH_FAILED for i in sample})
    assert truth.factor == 1.0 and truth.sample_errors == 2 and len(truth.credited_ids) == 10


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
    result = finish(prepared, {}, CTX, SNAP, P)
    assert result.score == 1.0 and result.rows_valid == 10 and result.reasons == {}
    apply_copies([result], {"hk1": "copy_of:other"})
    assert result.score == 0.0 and result.copy == "copy_of:other" and result.reasons == {"copy_of": 1}


def test_evaluate_a_padder_and_a_gated_miner():
    padded = honest_rows() + [row(i, address=f"{i} oak street, Princeton, NJ 08540", listing_id=str(5000 + i),
                                  source_url=f"{ORIGIN}/realestateandhomes-detail/x_08540_M{5000 + i}")
                              for i in range(3)]
    result = finish(prepare(submission(padded), CTX, P, SNAP, "0x1"), {}, CTX, SNAP, P)
    assert result.reasons == {"duplicate_address": 3} and result.quality == 0.0 and result.score == 0.0
    gated = finish(prepare(submission(honest_rows(), nonce="x"), CTX, P, SNAP, "0x1"), {}, CTX, SNAP, P)
    assert gated.gate == "wrong_nonce" and gated.score == 0.0 and gated.reasons == {"wrong_nonce": 1}
    assert Counter(gated.reasons)["wrong_nonce"] == 1
