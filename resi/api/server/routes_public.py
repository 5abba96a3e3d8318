"""Public endpoints: health, statistics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from aiohttp import web

from resi import market
from resi.api import limits as lim
from resi.api.server.context import CTX
from resi.api.server.http import charge
from resi.api.server.openapi import openapi_document
from resi.epochs import utcnow

VERSION = "1.0.0"


async def healthcheck(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    database_ok = ctx.store_ok()
    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(ctx.presigner.check, ctx.config.data_bucket), timeout=10)
        s3_ok = True
    except Exception:
        s3_ok = False
    latency = (time.perf_counter() - start) * 1000
    graph = ctx.metagraph.graph
    uptime = time.time() - ctx.started
    healthy = database_ok and s3_ok
    body = {
        "status": "ok" if healthy else "error",
        "timestamp": time.time(),
        "uptime": uptime,
        "database": "connected" if database_ok else "unavailable",
        "version": VERSION,
        "service": "resi-labs-api",
        "bucket": ctx.config.data_bucket,
        "region": ctx.config.region,
        "folder_structure": "data/hotkey={hotkey}/epoch={epoch_id}/",
        "s3_ok": s3_ok,
        "s3_latency_ms": round(latency, 2),
        "database_ok": database_ok,
        "metagraph_syncer": {
            "enabled": True,
            "netuid": ctx.config.netuid,
            "sync_interval": ctx.config.metagraph_ttl,
            "hotkeys_count": len(graph.neurons) if graph else 0,
            "last_sync": "never" if graph is None else f"{time.monotonic() - ctx.metagraph.fetched_at:.0f}s ago",
        },
        "stats": {
            "uptime_hours": round(uptime / 3600, 4),
            "total_requests": ctx.requests,
            "total_errors": ctx.errors,
            "error_rate": ctx.errors / ctx.requests if ctx.requests else 0.0,
        },
    }
    return web.json_response(body, status=200 if healthy else 503)


async def stats(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    charge(ctx, request, lim.STATS, request.remote or "unknown")
    now = utcnow()
    epoch = ctx.current_epoch()
    record = ctx.epoch_record(epoch)
    assignment = record["assignment"]
    zips = [z for z in market.catalog().values() if ctx.config.states is None or z.state in ctx.config.states]
    by_tier = Counter(z.tier for z in zips)
    by_state = Counter(z.state for z in zips)
    low, high = ctx.config.expected_range()
    remaining = int((epoch.end - now).total_seconds())
    body = {
        "success": True,
        "currentTime": int(now.timestamp()),
        "systemStatus": "operational",
        "epochStatus": {
            "currentEpoch": {
                "id": epoch.id,
                "status": "ACTIVE",
                "startTime": assignment["epochStart"],
                "endTime": assignment["epochEnd"],
                "nonce": record["nonce"],
                "zipcodeCount": len(assignment["zipcodes"]),
                "targetListings": assignment["targetListings"],
                "actualExpected": assignment["metadata"]["totalExpectedListings"],
            },
            "timing": {
                "timeUntilEpochEnd": remaining,
                "timeUntilNextEpoch": remaining,
                "epochDurationHours": ctx.config.epoch_length.total_seconds() / 3600,
            },
            "nextEpoch": {"startTime": assignment["epochEnd"]},
        },
        "zipcodeStatistics": {
            "totalZipcodes": len(zips),
            "activeZipcodes": len(zips),
            "inactiveZipcodes": 0,
            "stateDistribution": [{"state": s, "count": n} for s, n in sorted(by_state.items())],
            "tierDistribution": [{"tier": t, "count": by_tier[t]} for t in market.TIERS],
            "configuration": {
                "targetListings": ctx.config.target_listings,
                "tolerancePercent": ctx.config.tolerance_percent,
                "cooldownHours": ctx.config.cooldown.total_seconds() / 3600,
                "minListings": low,
                "maxListings": high,
            },
        },
        "recentPerformance": [
            {
                "epochId": e["epoch_id"],
                "status": "ACTIVE" if e["epoch_id"] == epoch.id else "COMPLETED",
                "zipcodesAssigned": len(e["assignment"]["zipcodes"]),
                "targetListings": e["assignment"]["targetListings"],
                "actualExpected": e["assignment"]["metadata"]["totalExpectedListings"],
            }
            for e in ctx.store.recent_epochs(10)
        ],
    }
    return web.json_response(body)


async def docs_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(str(request.url.origin())))


async def docs(request: web.Request) -> web.Response:
    doc = openapi_document(str(request.url.origin()))
    rows = "".join(
        f"<tr><td><code>{method.upper()}</code></td><td><code>{path}</code></td><td>{op.get('summary', '')}</td></tr>"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    )
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Resi Labs API (reference server)</title></head>"
        f"<body><h1>Resi Labs API {VERSION}</h1><p>OpenAPI document: <a href='/docs-json'>/docs-json</a></p>"
        f"<table border='1' cellpadding='4'><tr><th>method</th><th>path</th><th>summary</th></tr>{rows}</table>"
        "</body></html>"
    )
    return web.Response(text=html, content_type="text/html")
