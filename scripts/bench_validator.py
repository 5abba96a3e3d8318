#!/usr/bin/env python3
"""Benchmark: a validator's local checks for N miners against a bare pyarrow read + concat + dedupe.

    python scripts/bench_validator.py [--miners 32,64,128,256] [--rows 10000] [--dir DIR]

Input: one epoch of the local listing world (``resi/localnet/population.py``): about ``--rows`` listings
assigned, the validator's snapshot, and per miner a ``listings.parquet`` + ``metadata.json`` written with the
project's own writer (honest miners, fabricators, padders, whole and partial copies). For each N, two child
processes run on the same files:

- the validation path, with only the network faked (the files are read from disk, the refetch answered from
  the world): every miner through ``Sandbox.prepare`` in its child process (gates, row checks, the snapshot
  comparison, the sample, fingerprints), ``finish`` (the truth check and the score), then copy detection, the
  EMA and the weights, exactly as ``Validator.process`` does;
- the baseline: ``pq.read_table`` of every file, ``concat_tables`` and a group-by on ``listing_id``.

Printed per N: seconds, rows per second, the ratio to the baseline, and the peak resident memory of the
validating process (its own high-water mark, ``VmHWM``) and of its judging child (``ru_maxrss``). The budget is
3x the baseline and under 1 GiB.

Then, at the largest N, the cost of publishing the epoch's validated listings: the same validation run again
with the evidence folded per listing as it is judged (``resi/validation/dataset.py``), the two tables built,
written as Parquet and the manifest signed, as ``Validator.process`` does; printed as the time ratio and the
peak RSS added against the run without publishing (budget: at most 10% more time, 150 MB more memory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resi.validator.sandbox import SandboxLimits  # noqa: E402


def generate(folder: Path, miners: int, rows: int) -> None:
    from resi.localnet.population import make_epoch, submission

    stamp = folder / "generated.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"miners": miners, "rows": rows}:
        return  # the same population is already there (--dir given twice)
    folder.mkdir(parents=True, exist_ok=True)
    epoch = make_epoch(rows)
    plain = (epoch.ctx, epoch.snapshot, epoch.answers)  # what the validator has; nothing of the world's code
    (folder / "epoch.pickle").write_bytes(pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL))
    for i in range(miners):
        sub = submission(epoch, i)
        (folder / f"{i}.parquet").write_bytes(sub.listings)
        (folder / f"{i}.json").write_bytes(sub.metadata)
    stamp.write_text(json.dumps({"miners": miners, "rows": rows}))


def _load(folder: Path, i: int, ctx):
    from resi.listings.upload import Submission

    landed = ctx.start + timedelta(hours=1, minutes=30, seconds=i)  # as population.landed
    return Submission(
        f"hotkey-{i:04d}", i, (folder / f"{i}.parquet").read_bytes(), (folder / f"{i}.json").read_bytes(), landed, landed
    )


def _peaks() -> dict:
    from resi.processes import peak_rss_mb

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rss_mb": peak_rss_mb(),
        "child_rss_mb": children.ru_maxrss / 1024,
        "cpu_s": me.ru_utime + me.ru_stime,
        "child_cpu_s": children.ru_utime + children.ru_stime,
    }


def child_validate(folder: Path, miners: int, workers: int, publish: bool = False) -> dict:
    from resi.validation.copies import find_copies
    from resi.validation.dataset import EpochDataset
    from resi.validation.evaluate import EpochInputs, apply_copies
    from resi.validation.params import ValidationParams
    from resi.validation.scoring import update_ema, weights
    from resi.validator.judging import judge_all
    from resi.validator.sandbox import SandboxLimits, SandboxPool

    ctx, snapshot, answers = pickle.loads((folder / "epoch.pickle").read_bytes())
    params = ValidationParams()

    async def downloaded():
        for i in range(miners):
            yield _load(folder, i, ctx)

    async def refetch(ids: list[str]) -> dict:
        return {listing_id: answers.get(listing_id) for listing_id in ids}

    published: dict = {}

    async def run() -> list:
        pool = SandboxPool(SandboxLimits(workers=workers))
        inputs = EpochInputs(ctx, params, snapshot, "0x" + "ab" * 32)
        pool.set_epoch(inputs)
        dataset = EpochDataset(ctx.epoch_id) if publish else None
        try:
            judged = await judge_all(downloaded(), pool, refetch, inputs, workers, None, dataset)
        finally:
            await pool.close()
        copies = find_copies(judged.uploads, params.copy_overlap)
        apply_copies(judged.results, copies)
        ema = update_ema({}, {r.uid: (r.hotkey, r.score) for r in judged.results}, params.ema_alpha)
        weights(ema)
        if dataset is not None:
            published.update(_publish(dataset, copies, ctx, snapshot, answers, folder))
        return judged.results

    from loguru import logger

    logger.remove()  # the per-miner lines go nowhere: the benchmark prints its own table
    start = time.perf_counter()
    results = asyncio.run(run())
    seconds = time.perf_counter() - start
    rows = sum(r.rows_uploaded for r in results)
    verdicts = sorted({(r.gate or "ok", r.copy.split(":")[0] if r.copy else "", round(r.score, 3)) for r in results})
    return {"seconds": seconds, "rows": rows, "verdicts": verdicts, **published, **_peaks()}


def _publish(dataset, copies: dict, ctx, snapshot, answers: dict, folder: Path) -> dict:
    """The validated listings as the validator writes them: tables, Parquet bytes, a signed manifest."""
    from resi.api.signing import sign_manifest
    from resi.chain.keys import create_wallet
    from resi.listings.validated import LISTINGS_FILE, OBSERVATIONS_FILE, manifest, parquet_bytes

    def static(listing_id: str, by_snapshot: bool) -> dict:
        return (snapshot.facts[listing_id] if by_snapshot else answers[listing_id])["static"]

    listings, observations = dataset.build(copies, static)
    files = {LISTINGS_FILE: parquet_bytes(listings), OBSERVATIONS_FILE: parquet_bytes(observations)}
    signer = create_wallet(folder / "wallets", "bench-validator")
    sign_manifest(signer, manifest(ctx.epoch_id, 1, "0x" + "ab" * 32, listings, files, "bench", ctx.expected))
    return {
        "published_rows": listings.num_rows,
        "observations": observations.num_rows,
        "published_bytes": sum(len(b) for b in files.values()),
    }


def child_baseline(folder: Path, miners: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    tables = [pq.read_table(pa.BufferReader((folder / f"{i}.parquet").read_bytes())) for i in range(miners)]
    table = pa.concat_tables(tables)
    distinct = table.group_by("listing_id").aggregate([]).num_rows
    return {"seconds": time.perf_counter() - start, "rows": table.num_rows, "distinct": distinct, **_peaks()}


def _child(kind: str, folder: Path, miners: int, workers: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--dir", str(folder), "--miners", str(miners), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", default="32,64,128,256", help="comma-separated miner counts")
    parser.add_argument("--rows", type=int, default=10_000, help="listings assigned (rows per honest miner)")
    parser.add_argument("--dir", type=Path, default=None, help="where the generated files go (default: a temp dir)")
    parser.add_argument(
        "--workers",
        type=int,
        default=SandboxLimits().workers,
        help="judging children side by side (the validator's --judging.workers)",
    )
    parser.add_argument("--child", choices=("validate", "publish", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(n) for n in str(args.miners).split(",")]
    if args.child:
        if args.child in ("validate", "publish"):
            print(json.dumps(child_validate(args.dir, counts[0], args.workers, publish=args.child == "publish")))
        else:
            print(json.dumps(child_baseline(args.dir, counts[0])))
        return 0
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-validator-"))
    started = time.perf_counter()
    generate(folder, max(counts), args.rows)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.processor() or 'cpu ?'}, "
        f"Python {platform.python_version()}"
    )
    print(f"judging children side by side: {args.workers}")
    print(f"generated {max(counts)} miners' files in {folder} ({time.perf_counter() - started:.1f} s)")
    print(
        f"{'miners':>6} {'rows':>10} {'validate s':>11} {'rows/s':>10} {'baseline s':>11} {'ratio':>6} "
        f"{'peak MB':>8} {'child MB':>9}"
    )
    ok = True
    for n in counts:
        base = _child("baseline", folder, n, args.workers)
        val = _child("validate", folder, n, args.workers)
        ratio = val["seconds"] / base["seconds"]
        peak = max(val["rss_mb"], val["child_rss_mb"])
        ok &= peak < 1024 and (n != max(counts) or ratio <= 3)
        print(
            f"{n:>6} {val['rows']:>10,} {val['seconds']:>11.2f} {val['rows'] / val['seconds']:>10,.0f} "
            f"{base['seconds']:>11.2f} {ratio:>6.2f} {val['rss_mb']:>8.0f} {val['child_rss_mb']:>9.0f}"
        )
        print(
            f"{'':>6} CPU s: validator {val['cpu_s']:.1f}, judging children {val['child_cpu_s']:.1f}; verdicts: {val['verdicts']}"
        )
    print(
        f"budget: 3x the baseline at {max(counts)} miners (fixed costs, children starting and the snapshot index, "
        "weigh on fewer), peak under 1024 MB ->",
        "OK" if ok else "OVER BUDGET",
    )
    n = max(counts)
    runs = [(_child("validate", folder, n, args.workers), _child("publish", folder, n, args.workers)) for _ in range(3)]
    bare = min(r[0]["seconds"] for r in runs)
    with_data = min(r[1]["seconds"] for r in runs)
    added_mb = min(r[1]["rss_mb"] for r in runs) - min(r[0]["rss_mb"] for r in runs)
    pub = runs[0][1]
    fits = with_data / bare <= 1.10 and added_mb <= 150
    print(
        f"publishing the validated listings at {n} miners (best of 3 each): {pub['published_rows']:,} listings, "
        f"{pub['observations']:,} observations, {pub['published_bytes'] / 1e6:.2f} MB of Parquet; time "
        f"{with_data:.2f} s vs {bare:.2f} s without ({with_data / bare:.3f}x), peak RSS {added_mb:+.0f} MB "
        f"(budget 1.10x, +150 MB) ->",
        "OK" if fits else "OVER BUDGET",
    )
    return 0 if ok and fits else 1


if __name__ == "__main__":
    sys.exit(main())
