"""Copy detection across miners: a file, or most of its rows, that another hotkey uploaded first.

A row's fingerprint is its listing id with its ``scraped_timestamp``: two honest scrapes of the same
listing carry different timestamps (milliseconds, different machines), so honest miners that share
listings never share fingerprints; a copy of someone's rows shares them all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa


def fingerprints(table: pa.Table) -> np.ndarray:
    """The distinct row fingerprints of a file, sorted (uint64)."""
    out = set()
    for listing_id, stamp in zip(table["listing_id"].to_pylist(), table["scraped_timestamp"].to_pylist()):
        digest = hashlib.blake2b(f"{listing_id}|{stamp}".encode(), digest_size=8).digest()
        out.add(int.from_bytes(digest, "big"))
    return np.array(sorted(out), np.uint64)


@dataclass(frozen=True)
class Upload:
    hotkey: str
    modified: datetime
    """When its listings.parquet landed (the object's last-modified time)."""
    sha256: str
    prints: np.ndarray


def find_copies(uploads: list[Upload], overlap: float) -> dict[str, str]:
    """Hotkey -> why it is a copy (``copy_of:<hotkey>``; ``copy_tie:<hotkey>`` when both landed in the same
    second, and then both are marked). The earliest upload of any content keeps it."""
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
            if original.modified == upload.modified:
                copies[upload.hotkey] = f"copy_tie:{original.hotkey}"
                copies[original.hotkey] = f"copy_tie:{upload.hotkey}"
            else:
                copies[upload.hotkey] = f"copy_of:{original.hotkey}"
            continue
        by_sha.setdefault(upload.sha256, upload)
        for p in prints:
            owner.setdefault(p, upload)
    return copies
