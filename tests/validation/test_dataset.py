"""The epoch's validated listings with plain data, through the validator's own ``judge_all`` (an in-process
judge): exactly the proven listings, provenance counts over overlapping miners and copies, the change log,
the same bytes in any miner order, and a manifest that verifies and fails on one flipped byte."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resi.api.client import ResiApiClient
from resi.api.signing import sign_manifest, verify_manifest
from resi.chain.keys import create_wallet
from resi.epochs import iso_z
from resi.listings.validated import (
    LISTINGS_FILE,
    LISTINGS_SCHEMA,
    OBSERVATIONS_FILE,
    OBSERVATIONS_SCHEMA,
    check_files,
    manifest,
    parquet_bytes,
)
from resi.validation.copies import find_copies
from resi.validation.dataset import EpochDataset
from resi.validation.evaluate import EpochInputs, prepare
from resi.validation.params import EpochContext, ValidationParams
from resi.validation.truth import Snapshot
from resi.validator.judging import judge_all
from resi.validator.results import ResultsPublisher
from tests.validation.epoch_data import DEADLINE, LISTED, ORIGIN, START, H, P, T, facts, row, submission

CTX = EpochContext("2025-10-01T16-00-00", "nonce1", START, DEADLINE, {"08540": 40, "19103": 40}, 10, ORIGIN)
REAL = [row(i) for i in range(40)] + [row(100 + i, "19103") for i in range(40)]
CUT = T + H  # listing 1005's price is cut an hour after the first scrapes
HISTORY = [[LISTED, LISTED + 1, "listed", 500_005.0], [CUT, CUT + 1, "price", 480_000.0]]
# the snapshot lacks 1030-1039 (sold since the scrape: the source still has them, by id)
SNAPSHOT = Snapshot(
    {
        r["listing_id"]: facts(r, price=480_000.0, events=HISTORY) if r["listing_id"] == "1005" else facts(r)
        for r in REAL
        if not 1030 <= int(r["listing_id"]) < 1040
    },
    {"08540": 30, "19103": 40},
)
SOURCE = {r["listing_id"]: facts(r, price=480_000.0, events=HISTORY) if r["listing_id"] == "1005" else facts(r) for r in REAL}


def scraped(minutes: int, ms: int) -> str:
    return iso_z(START + timedelta(minutes=minutes, milliseconds=ms))


def miner(ids: range, minutes: int, ms: int) -> list[dict]:
    return [dict(r, scraped_timestamp=scraped(minutes, ms)) for r in REAL if int(r["listing_id"]) in ids]


MINERS = {
    # A scrapes before the cut, B after it (listing 1005 at its new price: proven, and in the change log)
    "A": miner(range(1000, 1040), 30, 111),
    "B": miner(range(1020, 1040), 150, 222)
    + miner(range(1100, 1140), 150, 222)
    + [dict(row(5), scraped_timestamp=scraped(150, 222), price=480_000.0, days_on_market=30)],
    # C: one false size (proven false), an invented listing (not found), the rest true
    "C": [dict(r, sqft=9999) if r["listing_id"] == "1100" else r for r in miner(range(1100, 1110), 60, 333)]
    + [dict(row(900), scraped_timestamp=scraped(60, 333))],
}
MINERS["D"] = MINERS["A"]  # a copy of A's file, later: never counted as proving or delivering


def judge(order: list[str], sample_size: int = P.sample_size, batch_rows: int = 100):
    """judge_all over the miners in ``order``: (results, copies, dataset); the dataset folds every
    ``batch_rows`` rows (here about every two miners: several folds, as with hundreds of miners)."""
    params = ValidationParams(sample_size=sample_size)
    hours = {"A": 1, "B": 3, "C": 2, "D": 3.5}

    class Inline:
        async def prepare(self, sub):
            return prepare(sub, CTX, params, SNAPSHOT, "0xblock")

    async def subs():
        for name in order:
            sub = submission(MINERS[name], hotkey=name, modified=START + timedelta(hours=hours[name]))
            yield sub

    async def refetch(ids):
        return {i: SOURCE.get(i) for i in ids}

    dataset = EpochDataset(CTX.epoch_id, batch_rows)
    judged = asyncio.run(judge_all(subs(), Inline(), refetch, EpochInputs(CTX, params, SNAPSHOT, "0xblock"), 2, None, dataset))
    copies = find_copies(judged.uploads, params.copy_overlap)
    return judged.results, copies, dataset


def static(listing_id: str, by_snapshot: bool) -> dict:
    return (SNAPSHOT.facts[listing_id] if by_snapshot else SOURCE[listing_id])["static"]


def test_the_dataset_holds_exactly_the_proven_listings():
    results, copies, dataset = judge(["A", "B", "C", "D"])
    assert copies == {"D": "copy_of:A"}
    listings, _ = dataset.build(copies, static)
    ids = set(listings["listing_id"].to_pylist())
    proven = {f"{1000 + i}" for i in range(40)} | {f"{1100 + i}" for i in range(40)}
    assert ids == proven  # 1100 too: C's row of it is false, B's true row proves it
    assert "1900" not in ids  # invented: never
    by_id = {r["listing_id"]: r for r in listings.to_pylist()}
    assert by_id["1100"]["sqft"] == row(100, "19103")["sqft"]  # the true value, never C's
    assert {by_id[f"{1030 + i}"]["proof"] for i in range(10)} == {"refetch"}  # gone from the search, confirmed
    assert by_id["1000"]["proof"] == "snapshot"
    assert listings.schema.equals(LISTINGS_SCHEMA)


def test_rows_only_extrapolated_are_not_published():
    """With a sample of 4, most of the pool (1030-1039, not in the snapshot) earns by extrapolation: credited,
    but not proven, so not published."""
    results, copies, dataset = judge(["A", "B", "C", "D"], sample_size=4)
    listings, _ = dataset.build(copies, static)
    a = next(r for r in results if r.hotkey == "A")
    assert a.rows_credited == 40 and a.rows_proven < 40
    refetched = {r["listing_id"] for r in listings.to_pylist() if r["proof"] == "refetch"}
    assert 0 < len(refetched) < 10


def test_provenance_counts_over_overlapping_miners_leave_copies_out():
    _, copies, dataset = judge(["D", "C", "B", "A"])
    listings, _ = dataset.build(copies, static)
    by_id = {r["listing_id"]: r for r in listings.to_pylist()}
    assert by_id["1000"]["miners_proving"] == 1 and by_id["1000"]["miners_delivering"] == 1  # A (D is a copy)
    assert by_id["1025"]["miners_proving"] == 2  # A and B
    assert by_id["1100"]["miners_proving"] == 1 and by_id["1100"]["miners_delivering"] == 2  # B proved; C's false
    assert by_id["1101"]["miners_proving"] == 2  # B and C
    first, last = by_id["1025"]["first_proven_at"], by_id["1025"]["last_proven_at"]
    assert iso_z(first) == scraped(30, 111) and iso_z(last) == scraped(150, 222)


def test_the_change_log_holds_each_distinct_proven_observation_and_the_latest_state_wins():
    _, copies, dataset = judge(["A", "B", "C", "D"])
    listings, observations = dataset.build(copies, static)
    log = [r for r in observations.to_pylist() if r["listing_id"] == "1005"]
    assert [(iso_z(r["scraped_at"]), r["listing_status"], r["price"]) for r in log] == [
        (scraped(30, 111), "active", 500_005.0),
        (scraped(150, 222), "active", 480_000.0),
    ]
    latest = next(r for r in listings.to_pylist() if r["listing_id"] == "1005")
    assert latest["price"] == 480_000.0 and iso_z(latest["last_proven_at"]) == scraped(150, 222)
    one = [r for r in observations.to_pylist() if r["listing_id"] == "1025"]
    assert len(one) == 1 and iso_z(one[0]["scraped_at"]) == scraped(30, 111)  # same (status, price): the first
    assert observations.schema.equals(OBSERVATIONS_SCHEMA)


def test_the_same_verdicts_give_the_same_bytes_in_any_miner_order():
    files = set()
    for seed in range(6):
        order = ["A", "B", "C", "D"]
        random.Random(seed).shuffle(order)
        _, copies, dataset = judge(order, batch_rows=[1, 50, 100, 10**6][seed % 4])
        listings, observations = dataset.build(copies, static)
        files.add((parquet_bytes(listings), parquet_bytes(observations)))
    assert len(files) == 1
    listings = pq.read_table(pa.BufferReader(next(iter(files))[0]))
    keys = list(zip(listings["zipcode"].to_pylist(), listings["listing_id"].to_pylist()))
    assert keys == sorted(keys)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    _, copies, dataset = judge(["A", "B", "C", "D"])
    listings, observations = dataset.build(copies, static)
    files = {LISTINGS_FILE: parquet_bytes(listings), OBSERVATIONS_FILE: parquet_bytes(observations)}
    signer = create_wallet(tmp_path_factory.mktemp("wallets"), "validator")
    signed = sign_manifest(signer, manifest(CTX.epoch_id, 12, "0xhash", listings, files, "1.0.0", CTX.expected))
    return signer, signed, files, listings


def test_the_manifest_names_the_epoch_and_verifies_with_the_validators_key(published):
    signer, signed, files, listings = published
    assert signed["validator"] == signer.hotkey and verify_manifest(signed)
    assert check_files(signed, files) is None
    assert signed["rows"]["listings"] == listings.num_rows and sum(signed["zipcodes"].values()) == listings.num_rows
    assert signed["block"] == 12 and signed["block_hash"] == "0xhash" and signed["schema_version"] == "1"
    assert signed["expected"] == CTX.expected
    text = json.dumps(signed)
    assert verify_manifest(json.loads(text))  # survives JSON


def test_one_flipped_byte_of_a_file_or_of_the_manifest_fails(published, tmp_path):
    _, signed, files, _ = published
    for name, data in files.items():
        for at in (0, len(data) // 2, len(data) - 1):
            flipped = bytearray(data)
            flipped[at] ^= 1
            assert check_files(signed, {**files, name: bytes(flipped)}) is not None
    assert check_files(signed, {LISTINGS_FILE: files[LISTINGS_FILE]}) == f"{OBSERVATIONS_FILE} is missing"
    text = json.dumps(signed, sort_keys=True).encode()
    for at in range(0, len(text), 7):
        flipped = bytearray(text)
        flipped[at] ^= 1
        try:
            document = json.loads(bytes(flipped))
        except ValueError:
            continue  # no longer JSON: refused before any signature
        assert not verify_manifest(document) or document == signed, at
    other = create_wallet(tmp_path, "other")
    assert not verify_manifest({**signed, "validator": other.hotkey})


def test_the_data_folder_keeps_the_newest_epochs_whole(published, tmp_path):
    """``--data.keep_epochs 2``: after three epochs the oldest folder is gone; each kept folder holds the two
    files and a manifest that names them and verifies."""
    signer, _, files, listings = published
    observations = pq.read_table(pa.BufferReader(files[OBSERVATIONS_FILE]))
    publisher = ResultsPublisher(
        ResiApiClient("http://127.0.0.1:9", signer),
        None,
        tmp_path / "results",
        signer.hotkey,
        P,
        validated=tmp_path / "validated",
        keep_epochs=2,
    )
    epochs = ["2025-10-01T08-00-00", "2025-10-01T12-00-00", "2025-10-01T16-00-00"]
    for epoch_id in epochs:
        publisher.write_validated(epoch_id, 7, "0xseed", CTX.expected, listings, observations)
    assert sorted(p.name for p in (tmp_path / "validated").iterdir()) == epochs[1:]
    for epoch_id in epochs[1:]:
        folder = tmp_path / "validated" / epoch_id
        signed = json.loads((folder / "manifest.json").read_text())
        assert verify_manifest(signed) and signed["epoch_id"] == epoch_id
        assert check_files(signed, {name: (folder / name).read_bytes() for name in files}) is None
        assert (folder / LISTINGS_FILE).read_bytes() == files[LISTINGS_FILE]  # the same rows, the same bytes


def test_a_dataset_that_fails_costs_the_scores_nothing():
    """Folding is the product's business: when it raises, every miner is still judged and scored the same."""

    class Broken(EpochDataset):
        def add(self, hotkey, rows, confirmed=()):
            raise RuntimeError("disk full")

    results, copies, _ = judge(["A", "B", "C", "D"])
    params = ValidationParams()

    class Inline:
        async def prepare(self, sub):
            return prepare(sub, CTX, params, SNAPSHOT, "0xblock")

    async def subs():
        for name, hours in (("A", 1), ("B", 3), ("C", 2), ("D", 3.5)):
            yield submission(MINERS[name], hotkey=name, modified=START + timedelta(hours=hours))

    async def refetch(ids):
        return {i: SOURCE.get(i) for i in ids}

    judged = asyncio.run(
        judge_all(subs(), Inline(), refetch, EpochInputs(CTX, params, SNAPSHOT, "0xblock"), 2, None, Broken("e"))
    )
    assert sorted((r.hotkey, r.score) for r in judged.results) == sorted((r.hotkey, r.score) for r in results)
