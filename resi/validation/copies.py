"""Copy detection across miners: a file, or most of its rows, that another hotkey uploaded first.

A row's fingerprint is its listing id with the *instant* its ``scraped_timestamp`` names (integer
microseconds since 1970, however it is spelled): two honest scrapes of the same listing carry different
instants (milliseconds, different machines), so honest miners that share listings never share fingerprints;
a copy of someone's rows shares them all, respelled or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

from resi.arrays import to_numpy
from resi.moments import instants


def fingerprints(table: pa.Table) -> np.ndarray:
    """The distinct row fingerprints of a file, sorted (uint64): a 64-bit hash of ``listing_id|instant``, the
    instant in microseconds (``resi.moments.instants``); a timestamp nobody can read stays text."""
    if table.num_rows == 0:
        return np.empty(0, np.uint64)
    stamps = table["scraped_timestamp"]
    micros, known = instants(stamps)
    instant = pc.if_else(
        pa.array(known), pa.array(micros).cast(pa.string()), pc.binary_join_element_wise("?", pc.fill_null(stamps, ""), "")
    )
    text = pc.binary_join_element_wise(pc.fill_null(table["listing_id"], ""), instant, "|")
    return np.unique(hash_array(to_numpy(text)))


@dataclass(frozen=True)
class Upload:
    hotkey: str
    modified: datetime
    """When its listings.parquet landed (the object's last-modified time)."""
    sha256: str
    prints: np.ndarray


def mark_copy(copies: dict[str, str], original: Upload, upload: Upload) -> None:
    """``upload`` copies ``original`` (``copy_of``); landed in the same second, each is marked the other's
    tie (``copy_tie``): nobody can tell which came first."""
    if original.modified == upload.modified:
        copies[upload.hotkey] = f"copy_tie:{original.hotkey}"
        copies[original.hotkey] = f"copy_tie:{upload.hotkey}"
    else:
        copies[upload.hotkey] = f"copy_of:{original.hotkey}"


def find_copies(uploads: list[Upload], overlap: float) -> dict[str, str]:
    """Hotkey -> why it is a copy (``copy_of:<hotkey>``; ``copy_tie:<hotkey>`` when both landed in the same
    second, and then both are marked). The earliest upload of any content keeps it: a file identical to an
    earlier one, or one more than ``overlap`` of whose fingerprints an earlier upload owns, is a copy, and a
    copy owns nothing. ``resi.validation.reference.find_copies`` is the definition; this one works on the
    fingerprints that more than one upload has, as arrays."""
    ordered = sorted(uploads, key=lambda u: (u.modified, u.hotkey))
    if not ordered:
        return {}
    sizes = np.array([len(u.prints) for u in ordered], np.int64)
    prints = np.concatenate([np.asarray(u.prints, np.uint64) for u in ordered])
    order = np.argsort(prints, kind="stable")  # by print, then by upload order (uploads are concatenated in order)
    prints = prints[order]
    shared = np.zeros(len(prints), bool)
    if len(prints) > 1:
        same = prints[1:] == prints[:-1]
        shared[1:] |= same
        shared[:-1] |= same
    order, prints = order[shared], prints[shared]  # from here on, only the prints more than one upload has
    who = np.searchsorted(np.cumsum(sizes), order, side="right")
    group = np.cumsum(np.r_[True, prints[1:] != prints[:-1]]) - 1 if len(prints) else np.empty(0, np.int64)
    owner = np.full(int(group[-1]) + 1 if len(group) else 0, -1, np.int64)
    by_upload = np.argsort(who, kind="stable")  # each upload's shared prints, in print order
    bounds = np.searchsorted(who[by_upload], np.arange(len(ordered) + 1))
    by_sha: dict[str, int] = {}
    copies: dict[str, str] = {}
    for k, upload in enumerate(ordered):
        groups = group[by_upload[bounds[k] : bounds[k + 1]]]
        original = by_sha.get(upload.sha256)
        if original is None and sizes[k] and len(groups):
            owners = owner[groups]
            owners = owners[owners >= 0]
            if len(owners):
                counts = np.bincount(owners)
                top = owners[np.argmax(counts[owners] == counts.max())]  # the first of the most shared, in print order
                if counts[top] / sizes[k] > overlap:
                    original = int(top)
        if original is not None:
            mark_copy(copies, ordered[original], upload)
            continue
        by_sha.setdefault(upload.sha256, k)
        free = groups[owner[groups] < 0]
        owner[free] = k
    return copies
