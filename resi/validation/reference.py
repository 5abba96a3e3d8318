"""The validator's rules as plain Python, one row at a time: the definition the vectorized implementations
(``rows.check_rows``, ``snapshot_index.compare``, ``copies.find_copies``) must agree with. Tests hold them to it
on generated populations of honest, fabricating, padding and copying miners; the validator itself runs the
vectorized ones (the per-row ``history.judge_claim`` is shared by both).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from resi.epochs import iso_z
from resi.listings.checks import table_problems
from resi.listings.schema import address_key
from resi.validation.copies import Upload, mark_copy
from resi.validation.history import BAD, Row, judge_claim
from resi.validation.params import EpochContext
from resi.validation.rows import _UTC_SUFFIX, url_matches
from resi.validation.truth import Snapshot, TruthResult


def check_rows(table: pa.Table, ctx: EpochContext, uploaded: datetime | None = None) -> list[str | None]:
    """Every row's reason (None: it counts), in file order; the first occurrence of a duplicate counts."""
    reasons: list[str | None] = table_problems(table).to_pylist()
    assigned = pc.is_in(table["zipcode"], pa.array(sorted(ctx.expected), pa.string()))
    scraped = table["scraped_timestamp"]
    head = pc.utf8_slice_codeunits(scraped, 0, 19)
    last = min(ctx.deadline, uploaded) if uploaded is not None else ctx.deadline
    window = pc.and_(pc.greater_equal(head, iso_z(ctx.start)[:19]), pc.less_equal(head, iso_z(last)[:19]))
    utc = pc.match_substring_regex(scraped, _UTC_SUFFIX)
    for name, ok in (("unassigned_zipcode", assigned), ("scraped_timestamp_not_utc", utc), ("scraped_outside_epoch", window)):
        for i, good in enumerate(pc.fill_null(ok, False).to_pylist()):
            if not good and reasons[i] is None:
                reasons[i] = name
    seen_ids: set[str] = set()
    seen_addresses: set[str] = set()
    columns = (table[name].to_pylist() for name in ("listing_id", "address", "zipcode", "source_url"))
    for i, (listing_id, address, zipcode, url) in enumerate(zip(*columns)):
        if reasons[i] is not None:
            continue
        if not url_matches(url, listing_id, zipcode, ctx.source_origin):
            reasons[i] = "bad_source_url"
            continue
        if listing_id in seen_ids:
            reasons[i] = "duplicate_listing"
            continue
        key = address_key(address, zipcode)
        if key in seen_addresses:
            reasons[i] = "duplicate_address"
            continue
        seen_ids.add(listing_id)
        seen_addresses.add(key)
    return reasons


def split_by_snapshot(rows: dict[str, Row], snapshot: Snapshot, epoch_start: float) -> tuple[TruthResult, list[str], list[str]]:
    """Compare every valid row (listing id -> row) with the snapshot: proven, proven false, or pooled for a
    refetch; the result, the pool's ids and the proven ids, in row order."""
    result = TruthResult(valid=len(rows))
    pool, proven = [], []
    for listing_id, row in rows.items():
        facts = snapshot.facts.get(listing_id)
        if facts is None:
            pool.append(listing_id)
            result.pool_by_zip[row["zipcode"]] += 1
            result.pooled["not_in_snapshot"] += 1
            continue
        verdict = judge_claim(row, facts, epoch_start)
        if verdict is None:
            result.matched_by_zip[row["zipcode"]] += 1
            proven.append(listing_id)
        elif verdict[0] == BAD:
            result.bad[verdict[1]] += 1
            result.snapshot_bad += 1
        else:
            pool.append(listing_id)
            result.pool_by_zip[row["zipcode"]] += 1
            result.pooled[f"differs:{verdict[1]}"] += 1
    return result, pool, proven


def find_copies(uploads: list[Upload], overlap: float) -> dict[str, str]:
    """Hotkey -> why it is a copy (``copy_of:<hotkey>``; ``copy_tie:<hotkey>`` when both landed in the same
    second, and then both are marked). The earliest upload of any content keeps it: a file identical to an
    earlier one, or one more than ``overlap`` of whose fingerprints an earlier upload owns, is a copy, and a
    copy owns nothing."""
    ordered = sorted(uploads, key=lambda u: (u.modified, u.hotkey))
    by_sha: dict[str, Upload] = {}
    owner: dict[int, Upload] = {}
    copies: dict[str, str] = {}
    for upload in ordered:
        original = by_sha.get(upload.sha256)
        prints = upload.prints.tolist()
        if original is None and prints:
            owners = Counter(owner[p].hotkey for p in prints if p in owner)
            if owners:
                top, shared = owners.most_common(1)[0]
                if shared / len(prints) > overlap:
                    original = next(u for u in ordered if u.hotkey == top)
        if original is not None:
            mark_copy(copies, original, upload)
            continue
        by_sha.setdefault(upload.sha256, upload)
        for p in prints:
            owner.setdefault(p, upload)
    return copies
