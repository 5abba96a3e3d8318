"""One miner's upload as a validator fetched it: the downloader (``resi.validator.downloads``) makes it, the
gates (``resi.validation.gates``) judge it. It sits below both, so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Submission:
    """What the downloader found for one miner (bytes are None when the object is missing)."""

    hotkey: str
    uid: int
    listings: bytes | None = None
    metadata: bytes | None = None
    listings_modified: datetime | None = None
    """When its listings.parquet landed (S3's last-modified)."""
    metadata_modified: datetime | None = None
    fetch_error: str | None = None
    """A reason code from downloading (``file_too_large``, ``download_failed``...)."""
