"""What a miner scrapes and what it uploads. Production miners are honest: the assigned zipcodes, and
exactly the rows scraped, packaged as they are. (The local network's cheating miners implement the same
protocol elsewhere, in ``resi/localnet/cheaters.py``, to show the validators catching them.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from resi.api.models import Assignment
from resi.epochs import utcnow
from resi.listings.files import EpochFiles, build_epoch_files


@dataclass(frozen=True)
class PackageInfo:
    hotkey: str
    scraper_name: str
    scraper_version: str
    started_at: datetime
    data_dir: Path


class Strategy(Protocol):
    name: str

    def zipcodes(self, assignment: Assignment) -> list[str]:
        """The zipcodes to scrape this epoch."""
        ...

    def package(self, rows: pa.Table, assignment: Assignment, info: PackageInfo) -> EpochFiles | None:
        """The files to upload (None: nothing to upload)."""
        ...


class Honest:
    name = "honest"

    def zipcodes(self, assignment: Assignment) -> list[str]:
        return [z.zipcode for z in assignment.zipcodes]

    def package(self, rows: pa.Table, assignment: Assignment, info: PackageInfo) -> EpochFiles | None:
        if rows.num_rows == 0:
            return None
        return build_epoch_files(
            rows,
            hotkey=info.hotkey,
            epoch_id=assignment.epoch_id,
            nonce=assignment.nonce,
            scraper_name=info.scraper_name,
            scraper_version=info.scraper_version,
            started_at=info.started_at,
            finished_at=utcnow(),
        )
