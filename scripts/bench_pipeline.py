#!/usr/bin/env python3
"""Benchmark: normalize + validate + dedupe + write of 100,000 listings, against a bare pyarrow write.

    python scripts/bench_pipeline.py [--rows 100000] [--repeat 3]

Input: Realtor-shaped records from the local site's world (what homeharvest hands the pipeline), stamped
with their answer time per page of 200 as the source's transport stamps them. The baseline, measured in the
same run on the same machine, is a bare ``pa.Table.from_pylist`` + zstd parquet write of the pipeline's own
output rows. Prints rows per second of both and their ratio for the pipeline as miners run it (the
columnar fast path, ``resi/scraping/realtor_table.py``) and for the record-by-record definition it must
equal; the budget is 3x the bare write. Exits 1 if the two paths' outputs differ or the budget is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from resi import market  # noqa: E402
from resi.epochs import utcnow  # noqa: E402
from resi.listings.files import parquet_bytes  # noqa: E402
from resi.listings.schema import LISTING_SCHEMA  # noqa: E402
from resi.localnet.world import ListingWorld, WorldConfig, to_realtor  # noqa: E402
from resi.scraping.normalize import normalize_realtor  # noqa: E402
from resi.scraping.pipeline import clean_records, dedupe  # noqa: E402
from resi.scraping.realtor_table import realtor_table  # noqa: E402


def records(n: int) -> list[dict]:
    world = ListingWorld(WorldConfig(seed="bench", scale=1.0))
    now = time.time()
    out: list[dict] = []
    for zipcode in sorted(market.catalog()):
        out.extend(to_realtor(h, "https://www.realtor.com") for h in world.current(zipcode, now))
        if len(out) >= n:
            break
    for i, record in enumerate(out[:n]):
        record["_observed_at"] = now + i // 200 * 0.25
    return out[:n]


def pipeline(recs: list[dict], fast: bool) -> tuple[bytes, int]:
    drops: Counter = Counter()
    rows = clean_records(recs, normalize_realtor, utcnow(), None, drops, realtor_table if fast else None)
    table = dedupe(rows, drops)
    return parquet_bytes(table), table.num_rows


def bare_write(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=LISTING_SCHEMA), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    recs = records(args.rows)
    drops: Counter = Counter()
    rows = dedupe(clean_records(recs, normalize_realtor, utcnow(), None, drops), drops).to_pylist()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, pyarrow {pa.__version__}")
    print(f"input: {len(recs)} Realtor-shaped records -> {len(rows)} rows (dropped: {dict(drops) or 'none'})")
    times: dict[str, list[float]] = {"fast": [], "definition": [], "bare": []}
    outputs = {}
    for _ in range(args.repeat):
        for name in ("fast", "definition"):
            start = time.perf_counter()
            outputs[name] = pipeline(recs, fast=name == "fast")
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        bare = bare_write(rows)
        times["bare"].append(time.perf_counter() - start)
    base = statistics.median(times["bare"])
    print(f"bare pyarrow write of the same rows:        {base:.3f} s  {len(rows) / base:,.0f} rows/s  ({len(bare):,} bytes)")
    for name, label in (("definition", "record by record (the definition)"), ("fast", "columnar fast path")):
        seconds = statistics.median(times[name])
        data, kept = outputs[name]
        print(
            f"pipeline, {label + ':':<34} {seconds:.3f} s  {kept / seconds:,.0f} rows/s  ({len(data):,} bytes)"
            f"  {seconds / base:.2f}x the bare write"
        )
    same = outputs["fast"][0] == outputs["definition"][0]
    ratio = statistics.median(times["fast"]) / base
    print(f"the two paths write {'identical' if same else 'DIFFERENT'} files")
    print(f"ratio: {ratio:.2f}x the bare write (budget 3x) -> {'OK' if ratio <= 3 else 'OVER BUDGET'}")
    return 0 if same and ratio <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
