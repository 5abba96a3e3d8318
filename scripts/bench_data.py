#!/usr/bin/env python3
"""Benchmark: resi-data over a quarter, half and a full year of one validator's epochs (about 22 million rows).

    python scripts/bench_data.py [--days 91,182,365] [--listings 10000] [--dir DIR]

Generates epochs in the published layout (``resi/localnet/published.py``: about ``--listings`` listings over 20
zipcodes, 6 epochs a day, listings appearing, cutting prices, going pending, selling, withdrawn), signed by one
validator. For each period, in child processes (each its own peak RSS, ``VmHWM``):

- sync: ``resi-data sync --from`` the generated folder into an empty mirror (every manifest verified);
- market: the ``market`` view for one zipcode over the whole period;
- changes: the ``changes`` view for one zipcode over the last day, and over the whole period;
- baseline: a bare DuckDB ``read_parquet`` of the same files computing the same market answer (inventory and
  median price per epoch of the zipcode) with no verification and no consensus.

Goals on 2 cores: market and changes for one zipcode over a year under 1 s and within 2x the bare scan's time;
peak RSS under 1 GB; time growing no faster than linearly in epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZIPCODE = "19105"
EPOCHS_PER_DAY = 6


def generate(folder: Path, epochs: int, listings: int) -> float:
    """The first ``epochs`` epochs under ``folder`` (kept across runs: more epochs extend the same market)."""
    from resi.chain.keys import create_wallet
    from resi.localnet.published import Market, publish

    stamp = folder / "generated.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"epochs": epochs, "listings": listings}:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    signer = create_wallet(folder / "wallets", "bench-validator")
    started = time.perf_counter()
    for epoch in Market(listings=listings, zipcodes=20, seed=46).epochs(epochs):
        publish(epoch, signer, folder / "published")
    stamp.write_text(json.dumps({"epochs": epochs, "listings": listings}))
    (folder / "validator.txt").write_text(signer.hotkey)
    return time.perf_counter() - started


def _peak() -> float:
    from resi.processes import peak_rss_mb

    return peak_rss_mb()


def child(kind: str, folder: Path, epochs: int) -> dict:
    """One measured step in this (child) process."""
    from resi.data.mirror import FolderSource, Mirror, trust_list

    mirror = Mirror(folder / f"mirror-{epochs}")
    if kind == "sync":
        shutil.rmtree(mirror.root, ignore_errors=True)
        published = folder / "published"
        keep = sorted(p.name for p in (published / "validators").glob("*/*"))[:epochs]
        source = _Subset(FolderSource(published), set(keep))
        started = time.perf_counter()
        report = mirror.sync(source, trust_list([(folder / "validator.txt").read_text()]))
        return {
            "seconds": time.perf_counter() - started,
            "epochs": len(report.mirrored),
            "rejected": len(report.rejected),
            "rss_mb": _peak(),
        }
    import duckdb

    from resi.data.views import connect

    if kind == "baseline":
        con = duckdb.connect()
        files = mirror.files("listings")
        started = time.perf_counter()
        rows = con.execute(
            "SELECT epoch_id, count(*), median(price) FROM read_parquet(?) WHERE zipcode = ? AND listing_status "
            "IN ('active', 'pending') GROUP BY epoch_id ORDER BY epoch_id",
            [files, ZIPCODE],
        ).fetchall()
        return {"seconds": time.perf_counter() - started, "rows": len(rows), "answer": rows[-1][1:], "rss_mb": _peak()}
    started = time.perf_counter()
    con = connect(mirror)
    if kind == "market":
        rows = con.execute(
            "SELECT epoch_id, inventory, median_price FROM market WHERE zipcode = ? ORDER BY epoch_id", [ZIPCODE]
        ).fetchall()
        answer = rows[-1][1:]
    else:
        since = sorted(m["epoch_id"] for m in mirror.manifests())[-EPOCHS_PER_DAY if kind == "day" else 0]
        rows = con.execute("SELECT * FROM changes WHERE zipcode = ? AND epoch_id >= ?", [ZIPCODE, since]).fetchall()
        answer = len(rows)
    return {"seconds": time.perf_counter() - started, "rows": len(rows), "answer": answer, "rss_mb": _peak()}


class _Subset:
    """A folder source limited to some epochs (the first N of the generated year)."""

    def __init__(self, source, epochs: set[str]):
        self.source, self.epochs = source, epochs

    def find(self):
        return (p for p in self.source.find() if Path(p.where).parent.name in self.epochs)

    def read(self, key: str, max_bytes: int) -> bytes:
        return self.source.read(key, max_bytes)


def _run(kind: str, folder: Path, epochs: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--dir", str(folder), "--epochs", str(epochs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", default="91,182,365", help="comma-separated periods, in days")
    parser.add_argument("--listings", type=int, default=10_000, help="listings on the market per epoch")
    parser.add_argument("--dir", type=Path, default=None, help="where the generated epochs go (default: a temp dir)")
    parser.add_argument("--child", choices=("sync", "market", "day", "year", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.epochs), default=str))
        return 0
    days = [int(d) for d in args.days.split(",")]
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    most = max(days) * EPOCHS_PER_DAY
    took = generate(folder, most, args.listings)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"generated {most} epochs of ~{args.listings} listings in {folder} ({took:.0f} s; 0 when reused)")
    print(
        f"{'days':>5} {'epochs':>7} {'rows':>11} {'sync s':>7} {'market s':>9} {'base s':>7} {'ratio':>6} "
        f"{'day chg s':>9} {'all chg s':>9} {'ratio':>6} {'peak MB':>8}"
    )
    ok, per_epoch = True, []
    for d in days:
        epochs = d * EPOCHS_PER_DAY
        sync = _run("sync", folder, epochs)
        base = min((_run("baseline", folder, epochs) for _ in range(3)), key=lambda r: r["seconds"])
        market = min((_run("market", folder, epochs) for _ in range(3)), key=lambda r: r["seconds"])
        day = min((_run("day", folder, epochs) for _ in range(3)), key=lambda r: r["seconds"])
        year = min((_run("year", folder, epochs) for _ in range(3)), key=lambda r: r["seconds"])
        peak = max(r["rss_mb"] for r in (sync, base, market, day, year))
        rows = epochs * args.listings
        assert tuple(market["answer"]) == tuple(base["answer"]), (market, base)  # the same answer
        print(
            f"{d:>5} {epochs:>7} {rows:>11,} {sync['seconds']:>7.1f} {market['seconds']:>9.2f} "
            f"{base['seconds']:>7.2f} {market['seconds'] / base['seconds']:>6.2f} {day['seconds']:>9.2f} "
            f"{year['seconds']:>9.2f} {year['seconds'] / base['seconds']:>6.2f} {peak:>8.0f}"
        )
        per_epoch.append((epochs, max(market["seconds"], year["seconds"]) / epochs))
        if d == max(days):
            ok &= market["seconds"] < 1 and year["seconds"] < 1
            ok &= market["seconds"] <= 2 * base["seconds"] and year["seconds"] <= 2 * base["seconds"]
        ok &= peak < 1024 and sync["rejected"] == 0
    linear = per_epoch[-1][1] <= 1.25 * per_epoch[0][1]
    print(
        f"time per epoch from {per_epoch[0][0]} to {per_epoch[-1][0]} epochs: {per_epoch[0][1] * 1e3:.2f} -> "
        f"{per_epoch[-1][1] * 1e3:.2f} ms ({'no faster than linear' if linear else 'FASTER than linear'})"
    )
    ok &= linear
    print(
        "goals (a year: market and changes under 1 s and within 2x the bare scan; peak under 1 GB) ->", "OK" if ok else "NOT MET"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
