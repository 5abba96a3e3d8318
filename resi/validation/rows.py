"""Row checks: each row counts or not, with the reason. The plausibility rules are the miners' own
(``resi.listings.checks``); on top come the epoch's: zipcode assigned, scraped inside the epoch and not after
the file landed (nobody scrapes what they already uploaded), a listing page of the known source that names
this listing and zipcode, and no listing twice in the file."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from resi.epochs import iso_z
from resi.listings.checks import table_problems
from resi.listings.schema import address_key
from resi.validation.params import EpochContext

_UTC_SUFFIX = r"(\.[0-9]{1,6})?(Z|\+00:00)$"
_LISTING_REF = re.compile(r"_(\d{5})_M([0-9-]+)/?$")


@dataclass(frozen=True)
class RowVerdicts:
    reasons: list[str | None]
    """Per row: why it does not count, or None when it does."""

    @property
    def valid_mask(self) -> pa.Array:
        return pa.array([r is None for r in self.reasons], pa.bool_())

    def counts(self) -> Counter:
        return Counter(r for r in self.reasons if r is not None)


def url_matches(url: str | None, listing_id: str | None, zipcode: str | None, origin: str) -> bool:
    """Whether ``url`` is a listing page of ``origin`` that names this listing id and zipcode
    (Realtor's ``..._{city}_{state}_{zipcode}_M{property id, dashes allowed}``)."""
    if not url or not listing_id or not url.startswith(origin.rstrip("/") + "/realestateandhomes-detail/"):
        return False
    match = _LISTING_REF.search(url.split("?", 1)[0])
    return bool(match) and match.group(1) == zipcode and match.group(2).replace("-", "") == listing_id


def check_rows(table: pa.Table, ctx: EpochContext, uploaded: datetime | None = None) -> RowVerdicts:
    """Every row's verdict, in file order (the first occurrence of a duplicated listing counts). ``uploaded``:
    when the file landed (S3's last-modified, whole seconds): no row may say it was scraped after that second."""
    reasons: list[str | None] = table_problems(table).to_pylist()
    assigned = pc.is_in(table["zipcode"], pa.array(sorted(ctx.expected), pa.string()))
    scraped = table["scraped_timestamp"]
    head = pc.utf8_slice_codeunits(scraped, 0, 19)
    last = min(ctx.deadline, uploaded) if uploaded is not None else ctx.deadline
    window = pc.and_(pc.greater_equal(head, iso_z(ctx.start)[:19]), pc.less_equal(head, iso_z(last)[:19]))
    utc = pc.match_substring_regex(scraped, _UTC_SUFFIX)
    for name, ok in (("unassigned_zipcode", assigned), ("scraped_timestamp_not_utc", utc),
                     ("scraped_outside_epoch", window)):
        for i, good in enumerate(pc.fill_null(ok, False).to_pylist()):
            if not good and reasons[i] is None:
                reasons[i] = name
    ids = table["listing_id"].to_pylist()
    addresses = table["address"].to_pylist()
    zipcodes = table["zipcode"].to_pylist()
    urls = table["source_url"].to_pylist()
    seen_ids: set[str] = set()
    seen_addresses: set[str] = set()
    for i, (listing_id, address, zipcode, url) in enumerate(zip(ids, addresses, zipcodes, urls)):
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
    return RowVerdicts(reasons)
