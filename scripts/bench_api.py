#!/usr/bin/env python3
"""Benchmark: the reference API server against a bare aiohttp route with the same sr25519 check, on loopback.

    python scripts/bench_api.py [--seconds 5] [--miners 20]

Both servers run as child processes; the client here sends requests signed ahead of time (each hotkey signs
distinct timestamps: none is a replay). Printed: closed-loop throughput and server CPU per request for both
(the reference server on ``GET /api/v1/zipcode-assignments/current``: signature, registration, replay,
rate-limit and the assignment), p50/p99 at 200 signed requests per second, and the valid clients' p99 at
200 per second while a flood of invalid signatures arrives as fast as this client sends them (bounded in time
and count). Goals: at least 50% of the bare route's throughput, p99 under 25 ms in both latency runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resi.api import signing  # noqa: E402
from resi.processes import free_port, wait_http  # noqa: E402

CURRENT = "/api/v1/zipcode-assignments/current"


def bare_server(port: int) -> None:
    """The baseline: one aiohttp route doing the same signature check and answering a small JSON."""
    from aiohttp import web

    async def route(request: web.Request) -> web.Response:
        q = request.query
        try:
            ts = int(q["timestamp"])
        except (KeyError, ValueError):
            return web.json_response({"detail": "bad"}, status=400)
        if not signing.verify_commitment(q.get("hotkey", ""), signing.assignment_current(ts), q.get("signature")):
            return web.json_response({"detail": "Invalid signature"}, status=401)
        return web.json_response({"success": True})

    app = web.Application()
    app.router.add_get(CURRENT, route)
    app.router.add_get("/healthcheck", lambda r: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signed(signers, count: int) -> list[dict]:
    now = int(time.time())
    out = []
    for i in range(count):
        signer, ts = signers[i % len(signers)], now - 200 + i // len(signers)
        out.append(
            {
                "hotkey": signer.hotkey,
                "timestamp": ts,
                "signature": signing.sign_commitment(signer, signing.assignment_current(ts)),
            }
        )
    return out


async def closed_loop(url: str, queries: list[dict], concurrency: int) -> tuple[float, int]:
    import aiohttp

    todo = iter(queries)
    ok = 0

    async def worker(session) -> None:
        nonlocal ok
        for q in todo:
            async with session.get(url, params=q) as r:
                await r.read()
                ok += r.status == 200

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - start, ok


async def paced(
    url: str, queries: list[dict], rate: float, flood: list[dict] | None = None, flood_seconds: float = 0.0
) -> tuple[list[float], int]:
    """Latencies of ``queries`` sent at ``rate`` per second (open loop), with ``flood`` sent meanwhile."""
    import aiohttp

    latencies: list[float] = []
    flooded = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(q: dict) -> None:
            start = time.perf_counter()
            async with session.get(url, params=q) as r:
                await r.read()
            latencies.append(time.perf_counter() - start)

        pending = iter(flood or [])  # shared: the flood is bounded by its list

        async def flooder() -> None:
            nonlocal flooded
            end = time.perf_counter() + flood_seconds
            for q in pending:
                if time.perf_counter() > end:
                    return
                async with session.get(url, params=q) as r:
                    await r.read()
                flooded += 1

        floods = [asyncio.create_task(flooder()) for _ in range(8 if flood else 0)]
        tasks, start = [], time.perf_counter()
        for i, q in enumerate(queries):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(q)))
        await asyncio.gather(*tasks)
        for task in floods:
            task.cancel()
        await asyncio.gather(*floods, return_exceptions=True)
    return sorted(latencies), flooded


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each latency run")
    parser.add_argument("--requests", type=int, default=3000, help="requests of each throughput run")
    parser.add_argument("--miners", type=int, default=20)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_server(args.bare)
        return 0
    from resi.chain.keys import create_wallet
    from resi.chain.store import SimulatedChainStore

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    signers = [create_wallet(work / "wallets", f"m{i}") for i in range(args.miners)]
    chain = SimulatedChainStore(work / "chain.db", create=True)
    for s in signers:
        chain.register(s.hotkey, s.coldkey)
    api_port, bare_port = free_port(), free_port()
    log = open(work / "api.log", "wb")
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resi.api.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--state-dir",
            str(work / "state"),
            "--chain",
            str(work / "chain.db"),
            "--local",
            "--rate-limits",
            "assignment=1000000/60",
        ],
        stdout=log,
        stderr=log,
    )
    bare = subprocess.Popen([sys.executable, __file__, "--bare", str(bare_port)])
    try:
        wait_http(f"http://127.0.0.1:{api_port}/healthcheck", 120, api)
        wait_http(f"http://127.0.0.1:{bare_port}/healthcheck", 60, bare)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}")
        rate = 200
        needed = 2 * args.requests + 3 * int(rate * args.seconds) + 100
        queries = signed(signers, needed)
        batches = iter([queries[i : i + n] for i, n in ((0, args.requests), (args.requests, args.requests))])
        rest = queries[2 * args.requests :]
        rows = {}
        for name, port, pid in (("bare", bare_port, bare.pid), ("api", api_port, api.pid)):
            url = f"http://127.0.0.1:{port}{CURRENT}"
            asyncio.run(closed_loop(url, signed(signers[:1], 20) if name == "bare" else rest[-20:], 4))  # warm up
            before = cpu_seconds(pid)
            seconds, ok = asyncio.run(closed_loop(url, next(batches), 16))
            cpu = cpu_seconds(pid) - before
            rows[name] = (ok / seconds, cpu / max(ok, 1) * 1000, ok)
            print(
                f"{name:>5}: {ok} ok in {seconds:.2f} s = {ok / seconds:,.0f} req/s, server CPU "
                f"{cpu / max(ok, 1) * 1000:.3f} ms per request"
            )
        share = rows["api"][0] / rows["bare"][0]
        print(
            f"throughput: api / bare = {share:.0%} (goal >= 50%); CPU per request ratio {rows['api'][1] / rows['bare'][1]:.2f}x"
        )
        url = f"http://127.0.0.1:{api_port}{CURRENT}"
        n = int(rate * args.seconds)
        steady, _ = asyncio.run(paced(url, rest[:n], rate))
        print(f"at {rate} req/s for {args.seconds:g} s: p50 {pct(steady, 0.5):.1f} ms, p99 {pct(steady, 0.99):.1f} ms")
        bad = [dict(q, signature="0x" + "11" * 64) for q in signed(signers, 5000)] * 4  # at most 20,000
        flooded_lat, flooded = asyncio.run(paced(url, rest[n : 2 * n], rate, bad, args.seconds))
        print(
            f"with {flooded:,} invalid signatures meanwhile ({flooded / args.seconds:,.0f}/s): valid p50 "
            f"{pct(flooded_lat, 0.5):.1f} ms, p99 {pct(flooded_lat, 0.99):.1f} ms"
        )
        ok = share >= 0.5 and pct(steady, 0.99) < 25 and pct(flooded_lat, 0.99) < 25
        print("goals: >= 50% throughput, p99 < 25 ms steady and under the flood ->", "OK" if ok else "MISSED")
        return 0 if ok else 1
    finally:
        for proc in (api, bare):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
