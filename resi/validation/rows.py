"""Row checks: each row counts or not, with the reason. The plausibility rules are the miners' own
(``resi.listings.checks``); on top come the epoch's: zipcode assigned, scraped inside the epoch and not after
the file landed (nobody scrapes what they already uploaded), a listing page of the known source that names
this listing and zipcode, and no listing twice in the file."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from resi.arrays import contiguous, tally, to_numpy
from resi.epochs import iso_z
from resi.listings.checks import table_problems
from resi.listings.schema import LISTING_PAGES, address_groups, address_keys
from resi.validation.params import EpochContext

_UTC_SUFFIX = r"(\.[0-9]{1,6})?(Z|\+00:00)$"


def page_pattern(origin: str) -> str:
    """A listing page of ``origin`` in the canonical spelling (``canonical_source_url``), its zipcode and
    Realtor property id (dashes allowed) captured: one path segment after the listing pages' folder, ending
    in ``_{zipcode}_M{id}``; no query string, fragment, whitespace or control character. Read alike by
    Python's ``re.fullmatch`` and by RE2 (no class whose meaning differs between them)."""
    return "^" + re.escape(origin.rstrip("/") + LISTING_PAGES) + r"[^/?#\x00-\x20\x7f]+_(?P<zip>[0-9]{5})_M(?P<id>[0-9-]+)$"


@dataclass(frozen=True)
class RowVerdicts:
    codes: pa.Array
    """Per row: why it does not count, or null when it does."""

    @property
    def reasons(self) -> list[str | None]:
        return list(self.codes.to_pylist())

    @property
    def valid_mask(self) -> pa.Array:
        return pc.is_null(self.codes)

    def counts(self) -> Counter[str]:
        return tally(self.codes)


def url_matches(url: str | None, listing_id: str | None, zipcode: str | None, origin: str) -> bool:
    """Whether ``url`` is a listing page of ``origin`` in the canonical spelling that names this listing id and
    zipcode (Realtor's ``..._{city}_{state}_{zipcode}_M{property id, dashes allowed}``). Which page it is, the
    truth check proves: ``source_url`` is a static field compared exactly with the source's."""
    if not url or not listing_id:
        return False
    match = re.fullmatch(page_pattern(origin), url)
    return match is not None and match["zip"] == zipcode and match["id"].replace("-", "") == listing_id


def urls_match(table: pa.Table, origin: str) -> pa.Array:
    """:func:`url_matches` of every row at once (false where it is false or a value is null)."""
    ref = pc.extract_regex(table["source_url"], page_pattern(origin))
    same_zip = pc.equal(pc.struct_field(ref, "zip"), table["zipcode"])
    same_id = pc.equal(pc.replace_substring(pc.struct_field(ref, "id"), "-", ""), table["listing_id"])
    return pc.fill_null(pc.and_(same_zip, same_id), False)


def _flag(codes: pa.Array, reason: str, bad: pa.Array) -> pa.Array:
    """``reason`` on the rows that have none yet and where ``bad`` holds."""
    return pc.if_else(pc.and_(pc.is_null(codes), pc.fill_null(bad, False)), reason, codes)


def check_rows(table: pa.Table, ctx: EpochContext, uploaded: datetime | None = None) -> RowVerdicts:
    """Every row's verdict, in file order (the first occurrence of a duplicated listing counts). ``uploaded``:
    when the file landed (S3's last-modified, whole seconds): no row may say it was scraped after that second.
    Vectorized; ``resi.validation.reference.check_rows`` is the row-by-row definition it agrees with."""
    codes = table_problems(table)
    scraped = table["scraped_timestamp"]
    head = pc.utf8_slice_codeunits(scraped, 0, 19)
    last = min(ctx.deadline, uploaded) if uploaded is not None else ctx.deadline
    window = pc.and_(pc.greater_equal(head, iso_z(ctx.start)[:19]), pc.less_equal(head, iso_z(last)[:19]))
    codes = _flag(codes, "unassigned_zipcode", pc.invert(pc.is_in(table["zipcode"], pa.array(sorted(ctx.expected), pa.string()))))
    codes = _flag(codes, "scraped_timestamp_not_utc", pc.invert(pc.match_substring_regex(scraped, _UTC_SUFFIX)))
    codes = _flag(codes, "scraped_outside_epoch", pc.invert(window))
    codes = _flag(codes, "bad_source_url", pc.invert(urls_match(table, ctx.source_origin)))
    return RowVerdicts(_duplicates(table, contiguous(codes)))


def _duplicates(table: pa.Table, codes: pa.Array) -> pa.Array:
    """``duplicate_listing`` / ``duplicate_address`` in file order. Rows that share neither id nor address with
    another candidate count at once; only the rows that do are walked in order (as the definition does)."""
    rows = np.flatnonzero(to_numpy(pc.is_null(codes)))
    if len(rows) < 2:
        return codes
    take = pa.array(rows)
    ids, addresses, zipcodes = (contiguous(table[name].take(take)) for name in ("listing_id", "address", "zipcode"))

    def shared(values: pa.Array) -> np.ndarray:
        groups = to_numpy(pc.dictionary_encode(values).indices)
        shared_: np.ndarray = np.bincount(groups)[groups] > 1
        return shared_

    # address keys only where they can be equal (the same coarse group); the others never match anything
    maybe = np.flatnonzero(shared(address_groups(addresses, zipcodes)))
    keys: list[object] = list(range(len(rows)))
    same_key = np.zeros(len(rows), bool)
    if len(maybe):
        exact = address_keys(addresses.take(pa.array(maybe)), zipcodes.take(pa.array(maybe)))
        same_key[maybe] = shared(exact)
        for i, key in zip(maybe, exact.to_pylist()):
            keys[i] = key
    involved = np.flatnonzero(shared(ids) | same_key)
    if not len(involved):
        return codes
    seen_ids: set[str] = set()
    seen_keys: set[object] = set()
    listing, address = np.zeros(len(codes), bool), np.zeros(len(codes), bool)
    for i, listing_id in zip(involved, ids.take(pa.array(involved)).to_pylist()):
        key = keys[i]
        if listing_id in seen_ids:
            listing[rows[i]] = True
        elif key in seen_keys:
            address[rows[i]] = True
        else:
            seen_ids.add(listing_id)
            seen_keys.add(key)
    return _flag(_flag(codes, "duplicate_listing", pa.array(listing)), "duplicate_address", pa.array(address))
