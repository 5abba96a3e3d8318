"""The validator's vectorized paths give exactly the verdicts of the row-by-row definitions
(``resi.validation.reference``) on a generated population: honest, fabricating, padding, copying miners, and
rows altered the ways a miner who read the code would alter them. Speed never changes a verdict."""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from resi.epochs import iso_z, parse_iso
from resi.listings.checks import _DATE, _TIMESTAMP, _real
from resi.listings.files import build_epoch_files
from resi.listings.schema import address_groups, address_key, address_keys
from resi.localnet.population import (
    _with,
    kind_of,
    make_epoch,
    miner_table,
    submission,
    submission_from_files,
)
from resi.moments import iso_micros
from resi.validation import reference
from resi.validation.copies import Upload, find_copies, fingerprints
from resi.validation.evaluate import Prepared, apply_copies, finish, index_of, prepare
from resi.validation.gates import check_gates
from resi.validation.params import ValidationParams
from resi.validation.rows import check_rows
from resi.validation.snapshot_index import compare, scrape_moments
from resi.validation.truth import Snapshot, choose_sample, sample_seed

P = ValidationParams()
MINERS = 34  # every kind: fabricators 5 and 21, a padder at 11, a copy at 7, a partial copy at 15
BLOCK = "0x" + "cd" * 32


@pytest.fixture(scope="module")
def epoch():
    return make_epoch(3000, seed="fast-paths")


def _tampered(epoch, index: int) -> pa.Table:
    """An honest table altered row by row in the ways the rules must see through: biased prices, stale or
    relabelled statuses, shifted dates, every static field, timestamps of every accepted spelling and time."""
    table = miner_table(epoch, 0)
    rng = random.Random(f"tamper-{index}")
    rows = table.to_pylist()
    start, deadline = epoch.ctx.start, epoch.ctx.deadline
    for row in rows:
        pick = rng.randrange(24)
        moment = start + timedelta(seconds=rng.uniform(0, (deadline - start).total_seconds()))
        if pick == 0:
            row["price"] = round(row["price"] * 1.09, 2)
        elif pick == 1:
            row["listing_status"] = {"active": "pending", "pending": "sold", "sold": "active"}[row["listing_status"]]
        elif pick == 2 and row["days_on_market"] is not None:
            row["days_on_market"] += rng.choice((-1, 1, 30))
        elif pick == 3:
            row["listing_date"], row["days_on_market"] = None, None
        elif pick == 4:
            name = rng.choice(
                ("bedrooms", "bathrooms", "sqft", "mls_id", "latitude", "longitude", "city", "state", "property_type", "address")
            )
            value = row[name]
            nullable = name not in ("city", "state", "property_type", "address")
            row[name] = (
                None
                if nullable and (value is None or rng.random() < 0.3)
                else value + 1
                if isinstance(value, (int, float))
                else value + "x"
            )
        elif pick == 5:
            row["scraped_timestamp"] = iso_z(moment).replace("Z", "+00:00")
        elif pick == 6:  # fractions of every length: some read by the kernels, the others by parse_iso
            digits = rng.randrange(0, 7)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
            row["scraped_timestamp"] = (
                stamp + (("." + "".join(rng.choice("0123456789") for _ in range(digits))) if digits else "") + "Z"
            )
        elif pick == 7:
            row["scraped_timestamp"] = iso_z(moment)  # any time in the epoch: listings that change during it
        elif pick == 8:
            row["listing_status"] = "sold"
        elif pick == 9 and row["listing_date"]:
            row["listing_date"] = row["listing_date"][:8] + "01"
        elif pick == 10:  # the page in another spelling (query string, slash, newline), or another page
            page, ref = row["source_url"].rsplit("/", 1)
            tail = ref[ref.index("_" + row["zipcode"] + "_M") :]
            row["source_url"] = rng.choice(
                (
                    row["source_url"] + rng.choice(("?from=search", "?x=1\n_19103_M1234-5678", "/?", "_M999", "\n", "/")),
                    f"{page}/1-Other-Way_Elsewhere_ST{tail}",  # another listing's slug, this listing's id
                    f"{page}/../../x{tail}",
                    f"{page}/x/y{tail}",
                    f"{page}/x\u00a0y{tail}",
                )
            )
    return pa.Table.from_pylist(rows, schema=table.schema)


def _odd_snapshot(epoch) -> Snapshot:
    """The epoch's snapshot with listings missing, static values of other Python types, and histories that
    change during the epoch or carry no dates at all."""
    facts = {}
    rng = random.Random("odd")
    for i, (listing_id, fact) in enumerate(epoch.snapshot.facts.items()):
        pick = i % 11
        if pick == 0:
            continue  # not in the snapshot: pooled
        fact = {**fact, "static": dict(fact["static"]), "events": [list(e) for e in fact.get("events") or []]}
        if pick == 1 and fact["static"].get("bedrooms") is not None:
            fact["static"]["bedrooms"] = float(fact["static"]["bedrooms"])  # 3.0 == 3 in Python
        elif pick == 2 and fact["static"].get("latitude") is not None:
            fact["static"]["latitude"] = str(fact["static"]["latitude"])  # never equal to a float
        elif pick == 3:
            moment = epoch.ctx.start.timestamp() + rng.uniform(0, 4 * 3600)
            fact["events"].append([moment, moment + 1, "price", fact["price"]])
            fact["price"] = fact["price"] + 1000
        elif pick == 4:
            fact["events"] = []
            fact["status"] = "sold"
        elif pick == 5:
            fact["events"].append([epoch.ctx.start.timestamp() - 86400, epoch.ctx.start.timestamp() - 86000, "status", "sold"])
        elif pick == 6:
            fact["static"]["bedrooms"] = True
        facts[listing_id] = fact
    return Snapshot(facts, epoch.snapshot.counts)


def _tables(epoch):
    for i in range(MINERS):
        yield f"miner {i} ({kind_of(i)})", submission(epoch, i)
    for i in range(3):
        files = build_epoch_files(
            _tampered(epoch, i),
            hotkey=f"hotkey-{MINERS + i:04d}",
            epoch_id=epoch.ctx.epoch_id,
            nonce=epoch.ctx.nonce,
            scraper_name="t",
            scraper_version="1",
            started_at=epoch.ctx.start,
            finished_at=epoch.scraped,
        )
        yield f"tampered {i}", submission_from_files(epoch, MINERS + i, files.parquet, files.metadata_json)


def _reference_prepare(sub, ctx, snapshot: Snapshot) -> Prepared:
    gate = check_gates(sub, ctx, P)
    prepared = Prepared(sub.hotkey, sub.uid, gate.reason, gate.detail, gate.sha256, sub.listings_modified)
    if not gate.passed:
        return prepared
    reasons = reference.check_rows(gate.table, ctx, sub.listings_modified)
    prepared.rows_uploaded = gate.table.num_rows
    prepared.row_reasons = Counter(r for r in reasons if r is not None)
    valid = {row["listing_id"]: row for row, r in zip(gate.table.to_pylist(), reasons) if r is None}
    truth, pool, _ = reference.split_by_snapshot(valid, snapshot, ctx.start_ts)
    sample = choose_sample(pool, sample_seed(BLOCK, sub.hotkey, gate.sha256), P.sample_size)
    truth.sample_rows = {listing_id: valid[listing_id] for listing_id in sample}
    prepared.truth = truth
    prepared.prints = fingerprints(gate.table)
    return prepared


@pytest.mark.parametrize("odd", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["snapshot", "odd-snapshot"])
def test_every_reason_and_every_score_is_the_definitions(epoch, odd):
    snapshot = _odd_snapshot(epoch) if odd else epoch.snapshot
    index = index_of(snapshot, epoch.ctx)
    assert index.simple.any() and not index.simple.all()  # both paths run
    fast_results, slow_results, uploads = [], [], []
    pooled = Counter()
    for name, sub in _tables(epoch):
        table = check_gates(sub, epoch.ctx, P).table
        verdicts = check_rows(table, epoch.ctx, sub.listings_modified)
        assert verdicts.reasons == reference.check_rows(table, epoch.ctx, sub.listings_modified), name
        valid = table.filter(verdicts.valid_mask)
        truth, pool, proven = compare(valid, index)
        want, want_pool, want_proven = reference.split_by_snapshot(
            {r["listing_id"]: r for r in valid.to_pylist()}, snapshot, epoch.ctx.start_ts
        )
        assert truth == want and pool == want_pool, name
        assert valid["listing_id"].filter(pa.array(proven)).to_pylist() == want_proven, name  # what gets published
        pooled.update(truth.pooled)
        fast = prepare(sub, epoch.ctx, P, index, BLOCK)
        slow = _reference_prepare(sub, epoch.ctx, snapshot)
        assert fast.truth == slow.truth and fast.row_reasons == slow.row_reasons, name
        refetched = epoch.refetch(slow.sample)
        before = copy.deepcopy(fast.truth)
        fast_results.append(finish(fast, refetched, epoch.ctx, snapshot.counts, P))
        slow_results.append(finish(slow, refetched, epoch.ctx, snapshot.counts, P))
        assert fast.truth == before, name  # finish is pure: its input is left as it was
        assert finish(fast, refetched, epoch.ctx, snapshot.counts, P).as_dict() == fast_results[-1].as_dict(), name
        uploads.append(Upload(sub.hotkey, sub.listings_modified, fast.sha256, fast.prints))
    # the population exercises every outcome, so agreement is not agreement on nothing
    assert {"not_in_snapshot", "differs:price", "differs:listing_status", "differs:days_on_market"} <= set(pooled)
    copies = find_copies(uploads, P.copy_overlap)
    assert copies == reference.find_copies(uploads, P.copy_overlap) and copies
    apply_copies(fast_results, copies)
    apply_copies(slow_results, reference.find_copies(uploads, P.copy_overlap))
    assert [r.as_dict() for r in fast_results] == [r.as_dict() for r in slow_results]
    if not odd:  # honest miners earn, cheaters do not (the odd snapshot contradicts most of everyone's rows)
        assert {r.score > 0.9 for r in fast_results} == {True, False}
    else:  # a latitude written as text is never a row's latitude
        assert all(r.reasons.get("mismatch:latitude", 0) > 0 for r in fast_results if not r.gate)


def _prints(rng: np.random.Generator, n: int, pool: np.ndarray | None = None) -> np.ndarray:
    source = pool if pool is not None else rng.integers(0, 2**63, 10 * n, dtype=np.uint64)
    return np.unique(rng.choice(source, n, replace=False))


def test_copy_verdicts_are_the_definitions_on_random_crowds(epoch):
    """Random crowds of uploads drawing fingerprints from shared pools (overlaps on both sides of the
    threshold, ties on the most shared owner, equal files, uploads in the same second)."""
    rng = np.random.default_rng(7)
    start = epoch.ctx.start
    for trial in range(60):
        common = rng.integers(0, 2**63, 400, dtype=np.uint64)
        uploads = []
        for k in range(int(rng.integers(2, 12))):
            n = int(rng.integers(0, 120))
            prints = _prints(rng, n, common if rng.random() < 0.6 else None)
            sha = "same" if rng.random() < 0.15 else f"sha-{trial}-{k}"
            landed = start + timedelta(seconds=int(rng.integers(0, 6)))
            uploads.append(Upload(f"hk-{k}", landed, sha, prints))
        for overlap in (0.0, 0.3, 0.5, 0.9):
            assert find_copies(uploads, overlap) == reference.find_copies(uploads, overlap), (trial, overlap)


def test_fingerprints_are_distinct_sorted_and_follow_id_and_time():
    table = pa.table(
        {
            "listing_id": ["1001", "1001", "1002", "1001"],
            "scraped_timestamp": ["2026-03-02T16:00:00Z", "2026-03-02T16:00:00Z", "2026-03-02T16:00:00Z", "2026-03-02T16:00:01Z"],
        }
    )
    prints = fingerprints(table)
    assert prints.dtype == np.uint64 and len(prints) == 3 and (np.diff(prints.astype(np.float64)) > 0).all()
    assert set(fingerprints(table.slice(0, 1))) < set(prints)


def test_an_index_never_judges_what_its_window_does_not_cover(epoch):
    """Rows scraped outside the window the index was built for go to the definition, not the kernels."""
    ctx = replace(epoch.ctx, deadline=epoch.ctx.start + timedelta(seconds=1))
    index = index_of(epoch.snapshot, ctx)
    table = _with(epoch.rows, "scraped_timestamp", [iso_z(epoch.scraped)] * epoch.rows.num_rows)
    truth, pool, proven = compare(table, index)
    want, want_pool, want_proven = reference.split_by_snapshot(
        {r["listing_id"]: r for r in table.to_pylist()}, epoch.snapshot, ctx.start_ts
    )
    assert truth == want and pool == want_pool and truth.proven > 0
    assert table["listing_id"].filter(pa.array(proven)).to_pylist() == want_proven
    assert epoch.scraped.timestamp() > index.window[1] and truth.proven > 1000


def _roundtrip(column: pa.Array, fmt: str, length: int) -> list[bool]:
    """The definition of a real moment: parsing and printing it again gives the same text."""
    head = pc.utf8_slice_codeunits(column, 0, length)
    parsed = pc.strptime(head, format=fmt, unit="s", error_is_null=True)
    return pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), head), False).to_pylist()


@pytest.mark.parametrize("fmt,length,pattern", [("%Y-%m-%dT%H:%M:%S", 19, _TIMESTAMP), ("%Y-%m-%d", 10, _DATE)])
def test_real_moments_read_from_digits_are_the_roundtrips(fmt, length, pattern):
    rng = random.Random(length)
    edges = ["0000", "1900", "2000", "2024", "2025", "2100", "9999"]
    values = []
    for _ in range(60_000):
        year = rng.choice(edges) if rng.random() < 0.5 else f"{rng.randrange(10000):04d}"
        text = f"{year}-{rng.randrange(14):02d}-{rng.randrange(33):02d}"
        if length == 19:
            text += f"T{rng.randrange(26):02d}:{rng.randrange(62):02d}:{rng.randrange(62):02d}Z"
        values.append(text)
    column = pa.array(values + ["2024-02-29", "2023-02-29", "2026-13-01T00:00:00Z", None, "x"], pa.string())
    shaped = pc.match_substring_regex(column, pattern)
    fast = pc.and_(shaped, _real(column, shaped, length)).to_pylist()
    slow = pc.and_(shaped, pa.array(_roundtrip(column, fmt, length))).to_pylist()
    assert fast == slow and 0.2 < sum(filter(None, fast)) / len(fast) < 0.9


def test_address_keys_and_groups_are_the_definitions_on_any_text():
    rng = random.Random(11)
    alphabet = list("0123456789 abcNSEW.,;:'\"()/\\-_#\t\n\x1c\x1fÉİßﬁ٣") + ["street", "St", "APT", "no", " "] * 3
    addresses = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 14))) for _ in range(20_000)]
    zipcodes = [rng.choice(["19103", "19104"]) for _ in addresses]
    keys = address_keys(pa.array(addresses), pa.array(zipcodes)).to_pylist()
    assert keys == [address_key(a, z) for a, z in zip(addresses, zipcodes)]
    groups = address_groups(pa.array(addresses), pa.array(zipcodes)).to_pylist()
    first_group = {}
    for key, group in zip(keys, groups):  # equal keys are always in one group: the groups never hide a duplicate
        assert first_group.setdefault(key, group) == group
    assert len(set(keys)) < len(keys) and len(set(groups)) > 10


def test_scrape_moments_are_parse_iso_where_readable():
    rng = random.Random(5)
    stamps = []
    for _ in range(20_000):
        year = rng.choice((rng.randrange(1, 10000), rng.randrange(1900, 2200)))
        moment = datetime(
            year, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60), rng.randrange(60)
        )
        digits = rng.randrange(0, 7)
        fraction = ("." + "".join(rng.choice("0123456789") for _ in range(digits))) if digits else ""
        stamps.append(moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + fraction + rng.choice(("Z", "+00:00")))
    moments, readable = scrape_moments(pa.array(stamps))
    for stamp, seconds, ok in zip(stamps, moments.tolist(), readable.tolist()):
        near = abs(parse_iso(stamp).timestamp()) < 2**53 / 1e6  # within 285 years of 1970
        assert ok == (len(stamp[19:].split("Z")[0].split("+")[0]) in (0, 4, 7) and near), stamp
        if ok:
            assert seconds == parse_iso(stamp).timestamp(), stamp
    assert 3000 < readable.sum() < 15000


def _moment_text(rng: random.Random) -> str:
    """An ISO-ish timestamp: mostly of a form the kernels read, often subtly not (a day the month lacks, hour
    24, a stray space, a non-ASCII digit, another offset, a lowercase z, 1, 2, 4, 5 or 7 fraction digits)."""
    year = rng.choice((rng.randrange(0, 10000), rng.randrange(1900, 2100)))
    text = f"{year:04d}-{rng.randrange(0, 14):02d}-{rng.randrange(0, 33):02d}"
    if rng.random() < 0.8:
        text += f"T{rng.randrange(0, 26):02d}:{rng.randrange(0, 61):02d}:{rng.randrange(0, 61):02d}"
        digits = rng.choice((0, 0, 3, 3, 6, 6, 1, 2, 4, 5, 7))
        text += ("." + "".join(rng.choice("0123456789") for _ in range(digits))) if digits else ""
        text += rng.choice(("", "Z", "Z", "+00:00", "+00:00", "z", "+01:00", "-00:00", "+0000"))
    if rng.random() < 0.05:
        at = rng.randrange(len(text))
        text = text[:at] + rng.choice((" ", "٣", "x", "/", "")) + text[at + 1 :]
    return text


_READ_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?(Z|\+00:00)?)?")
"""The forms ``iso_micros`` reads (with ASCII digits): every such value Python reads must be readable."""


def test_iso_micros_read_what_python_reads_and_never_guess():
    rng = random.Random(11)
    texts = [_moment_text(rng) for _ in range(30_000)] + [None, "", "2024-02-29", "2023-02-29", "0001-01-01"]
    micros, readable = iso_micros(pa.array(texts, pa.string()))
    epoch = datetime(1970, 1, 1, tzinfo=parse_iso("2000-01-01").tzinfo)
    python_reads = 0
    for text, value, ok in zip(texts, micros.tolist(), readable.tolist()):
        try:
            expected = (parse_iso(text) - epoch) // timedelta(microseconds=1) if text else None
        except ValueError:
            expected = None
        if ok:
            assert value == expected, text
        if expected is not None and _READ_FORM.fullmatch(text):
            python_reads += 1
            assert ok, f"{text!r} is of a form the kernels read"
    assert python_reads > 5000 and readable.sum() == python_reads
