"""Try your listing source: run the miner's pipeline for some zipcodes into a folder.

    python -m resi.scraping --zipcodes 19103,08540 --out DIR [--source.url URL] [--source.proxy URL]

Writes DIR/listings.parquet and DIR/metadata.json exactly as a miner would (hotkey, epoch and nonce are
``manual``), and prints per zipcode the rows kept and the reasons records were dropped.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa

from resi.config import COUNT, Parser
from resi.epochs import utcnow
from resi.listings.files import build_epoch_files
from resi.logs import register_secret, setup_logging
from resi.scraping.flags import add_source_args, source_from_args
from resi.scraping.pipeline import Pipeline, dedupe


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m resi.scraping", description=__doc__)
    p.add_argument("--zipcodes", required=True, help="comma-separated 5-digit zipcodes")
    p.add_argument("--out", type=Path, required=True, help="folder for listings.parquet and metadata.json")
    p.add_argument("--concurrency", type=COUNT, default=4, help="zipcodes scraped at once")
    p.add_argument("--quiet", action="store_true", help="log lines instead of a progress line")
    add_source_args(p, "listing source (the same flags as the miner's)")
    args = p.parse_args(argv)
    setup_logging(name="scrape")
    register_secret(args.source_proxy)
    zipcodes = [z.strip() for z in args.zipcodes.split(",") if z.strip()]
    bad = [z for z in zipcodes if not re.fullmatch(r"\d{5}", z)]
    if bad or not zipcodes:
        print(f"error: not 5-digit zipcodes: {', '.join(bad) or '(none given)'}", file=sys.stderr)
        return 2
    source = source_from_args(args)
    started = utcnow()
    outcomes = asyncio.run(Pipeline(source, concurrency=args.concurrency).run(zipcodes, quiet=args.quiet))
    drops: Counter = Counter()
    rows = dedupe(pa.concat_tables([o.rows for o in outcomes]), drops)
    files = build_epoch_files(
        rows,
        hotkey="manual",
        epoch_id="manual",
        nonce="manual",
        scraper_name=source.name,
        scraper_version=source.version,
        started_at=started,
        finished_at=utcnow(),
    )
    parquet, metadata = files.save(args.out)
    print(f"{'zipcode':<8} {'records':>8} {'rows':>6}  dropped / error")
    for o in outcomes:
        detail = o.error or ", ".join(f"{k}={v}" for k, v in sorted(o.drops.items())) or "-"
        print(f"{o.zipcode:<8} {o.records:>8} {o.rows.num_rows:>6}  {detail}")
    if drops:
        print(f"across zipcodes: {dict(drops)}")
    print(f"{rows.num_rows} rows -> {parquet} ({len(files.parquet)} bytes), {metadata}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
