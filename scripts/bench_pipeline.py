#!/usr/bin/env python3
"""Benchmark: normalize + validate + dedupe + write of 100,000 listings, against a bare pyarrow write.

    python scripts/bench_pipeline.py [--rows 100000] [--repeat 3]

Input: Realtor-shaped records from the local site's world (what homeharvest hands the pipeline). The
baseline, measured in the same run on the same machine, is a bare ``pa.Table.from_pylist`` + zstd
parquet write of the pipeline's own output rows. Prints rows per second of both and their ratio; the
pipeline's budget is 5x the bare write.
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


def records(n: int) -> list[dict]:
    world = ListingWorld(WorldConfig(seed="bench", scale=1.0))
    now = time.time()
    out: list[dict] = []
    for zipcode in sorted(market.catalog()):
        out.extend(to_realtor(h, "https://www.realtor.com") for h in world.current(zipcode, now))
        if len(out) >= n:
            return out[:n]
    return out


def pipeline(recs: list[dict]) -> tuple[bytes, int]:
    drops: Counter = Counter()
    table = dedupe(clean_records(recs, normalize_realtor, utcnow(), None, drops), drops)
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
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"pyarrow {pa.__version__}")
    print(f"input: {len(recs)} Realtor-shaped records -> {len(rows)} rows (dropped: {dict(drops) or 'none'})")
    pipe_times, bare_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        data, kept = pipeline(recs)
        pipe_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare = bare_write(rows)
        bare_times.append(time.perf_counter() - start)
    pipe, base = statistics.median(pipe_times), statistics.median(bare_times)
    print(f"pipeline (normalize+validate+dedupe+write): {pipe:.3f} s  {kept / pipe:,.0f} rows/s  ({len(data):,} bytes)")
    print(f"bare pyarrow write of the same rows:        {base:.3f} s  {len(rows) / base:,.0f} rows/s  ({len(bare):,} bytes)")
    ratio = pipe / base
    print(f"ratio: {ratio:.2f}x the bare write (budget 5x) -> {'OK' if ratio <= 5 else 'OVER BUDGET'}")
    return 0 if ratio <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
