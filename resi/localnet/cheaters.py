"""Cheating miners, for the local network only: each runs the real miner loop with a dishonest strategy, so
anyone can watch the validators catch it. Nothing in production imports this module.

    python -m resi.localnet.cheaters --strategy fabricate [the miner's flags]

Strategies: nothing (never uploads: register it without a process), wrong_nonce, fabricate (10% invented
rows), pad (30% duplicates and address variants), unassigned (scrapes zipcodes it was not given), copy
(re-uploads another miner's files later; ``--victim NAME``), bomb (a parquet bomb), stale (re-sends the
previous epoch's listings).
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from resi import market
from resi.api.models import Assignment
from resi.epochs import utcnow
from resi.listings.files import EpochFiles, build_epoch_files, read_metadata
from resi.listings.schema import READ_SCHEMA
from resi.miner.checkpoint import Checkpoint
from resi.miner.strategy import Honest, PackageInfo

STRATEGIES = ("nothing", "wrong_nonce", "fabricate", "pad", "unassigned", "copy", "bomb", "stale")


def _files(rows: pa.Table, assignment: Assignment, info: PackageInfo, **overrides) -> EpochFiles:
    values = {"hotkey": info.hotkey, "epoch_id": assignment.epoch_id, "nonce": assignment.nonce}
    values.update(overrides)
    return build_epoch_files(rows, scraper_name=info.scraper_name, scraper_version=info.scraper_version,
                             started_at=info.started_at, finished_at=utcnow(), **values)


class WrongNonce(Honest):
    name = "wrong_nonce"

    def package(self, rows, assignment, info):
        return _files(rows, assignment, info, nonce="0" * 16) if rows.num_rows else None


class Fabricate(Honest):
    """Real rows plus 10% invented ones: plausible values, well-formed URLs, ids the source never had."""

    name = "fabricate"
    share = 0.10

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        rng = random.Random(assignment.epoch_id)
        fakes = []
        for i in range(max(1, round(len(real) * self.share))):
            base = dict(rng.choice(real))
            fake_id = f"{base['zipcode']}9{rng.randint(10**9, 10**10 - 1)}"
            origin = base["source_url"].split("/realestateandhomes-detail/")[0]
            base.update(listing_id=fake_id, address=f"{9000 + i} Invented Way, {base['city']}, {base['state']} "
                        f"{base['zipcode']}", price=round(base["price"] * rng.uniform(0.8, 1.2), -2),
                        mls_id=f"FAKE{rng.randint(10**6, 10**7)}",
                        source_url=f"{origin}/realestateandhomes-detail/{9000 + i}-Invented-Way_{base['city']}_"
                                   f"{base['state']}_{base['zipcode']}_M{fake_id}")
            fakes.append(base)
        table = pa.Table.from_pylist(real + fakes, schema=READ_SCHEMA)
        return _files(table, assignment, info)


class Pad(Honest):
    """Real rows plus 15% exact duplicates and 15% address variants under new ids."""

    name = "pad"

    def package(self, rows, assignment, info):
        real = rows.to_pylist()
        n = max(1, round(len(real) * 0.15))
        variants = []
        for row in real[:n]:
            street, rest = row["address"].split(",", 1)
            variants.append(dict(row, listing_id=row["listing_id"] + "7", address=street.upper() + " ," + rest,
                                 source_url=row["source_url"] + "7"))
        table = pa.Table.from_pylist(real + real[-n:] + variants, schema=READ_SCHEMA)
        return _files(table, assignment, info)


class Unassigned(Honest):
    """Scrapes as many zipcodes as it was given, just not those."""

    name = "unassigned"

    def zipcodes(self, assignment):
        assigned = {z.zipcode for z in assignment.zipcodes}
        state = assignment.zipcodes[0].state if assignment.zipcodes else None
        pool = sorted(z for z, info in market.catalog().items() if z not in assigned and info.state == state)
        return random.Random(assignment.epoch_id).sample(pool, min(len(pool), len(assigned)))


class Bomb(Honest):
    """A parquet of two million identical rows: a few KB on the wire, gigabytes if decoded."""

    name = "bomb"

    def package(self, rows, assignment, info):
        if rows.num_rows == 0:
            return None
        return _files(rows.take(pa.array([0] * 2_000_000)), assignment, info)


@dataclass
class Copy(Honest):
    """Waits for another miner's files of the epoch, then uploads them, later, under its own hotkey."""

    victim_dir: Path = Path(".")
    name: str = "copy"

    def zipcodes(self, assignment):
        return []  # scrapes nothing

    def package(self, rows, assignment, info):
        folder = self.victim_dir / "epochs" / assignment.epoch_id
        for _ in range(120):
            if (folder / "metadata.json").exists():
                break
            time.sleep(1)
        else:
            return None
        time.sleep(3)  # land after the original
        meta = read_metadata((folder / "metadata.json").read_bytes())
        parquet = (folder / "listings.parquet").read_bytes()
        meta = meta.model_copy(update={"hotkey": info.hotkey})
        return EpochFiles(parquet, meta)


class Stale(Honest):
    """Scrapes every epoch but uploads the previous epoch's listings (nothing in its first epoch)."""

    name = "stale"

    def package(self, rows, assignment, info):
        checkpoint = Checkpoint(info.data_dir / "checkpoint.db")
        previous = [e for e in _epochs(checkpoint) if e < assignment.epoch_id]
        if not previous:
            return None
        old = checkpoint.rows(previous[-1])
        if old.num_rows == 0:
            return None
        return _files(old, assignment, info)


def _epochs(checkpoint: Checkpoint) -> list[str]:
    with sqlite3.connect(checkpoint.path) as db:
        return sorted(r[0] for r in db.execute("SELECT DISTINCT epoch_id FROM zipcodes"))


def strategy(name: str, victim_dir: Path | None = None):
    table = {"wrong_nonce": WrongNonce, "fabricate": Fabricate, "pad": Pad, "unassigned": Unassigned,
             "bomb": Bomb, "stale": Stale}
    if name == "copy":
        return Copy(victim_dir=victim_dir or Path("."))
    if name not in table:
        raise SystemExit(f"unknown strategy {name!r}; one of {', '.join(s for s in STRATEGIES if s != 'nothing')}")
    return table[name]()


def main(argv: list[str] | None = None) -> int:
    from resi.miner.cli import main as miner_main

    argv = list(sys.argv[1:] if argv is None else argv)
    name = victim = None
    for flag in ("--strategy", "--victim-dir"):
        if flag in argv:
            i = argv.index(flag)
            value = argv[i + 1]
            del argv[i:i + 2]
            if flag == "--strategy":
                name = value
            else:
                victim = Path(value)
    if name is None:
        print(__doc__)
        return 2
    return miner_main(argv, strategy=strategy(name, victim))


if __name__ == "__main__":
    sys.exit(main())
