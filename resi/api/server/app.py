"""The reference server's aiohttp application: routes, errors in the spec's shapes, and never a 500 for bad input."""

from __future__ import annotations

import sqlite3
import time
from email.utils import formatdate

from aiohttp import web
from loguru import logger

from resi.api.server import routes_miner as miner
from resi.api.server import routes_public as public
from resi.api.server import routes_validator as validator
from resi.api.server.context import CTX, ServerContext
from resi.api.server.http import RATE_HEADERS, HttpError, error_response
from resi.api.server.ledger import LedgerError
from resi.api.server.openapi import ENDPOINTS

HANDLERS = {
    ("get", "/healthcheck"): public.healthcheck,
    ("get", "/api/v1/zipcode-assignments/stats"): public.stats,
    ("get", "/api/v1/zipcode-assignments/current"): miner.current_assignment,
    ("post", "/api/v1/zipcode-assignments/status"): miner.miner_status,
    ("post", "/get-folder-access"): miner.folder_access,
    ("post", "/api/v1/s3-access/validator-upload"): validator.validator_upload,
    ("post", "/get-validator-access"): validator.validator_access,
    ("post", "/get-miner-specific-access"): validator.miner_specific_access,
    ("get", "/api/v1/zipcode-assignments/epoch/{epochId}"): validator.epoch_assignment,
}


def route_of(request: web.Request) -> str:
    """The route's template (``/api/v1/zipcode-assignments/epoch/{epoch_id}``), ``other`` for a path no route
    matches: a label no stranger can multiply."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "other"


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    ctx.requests += 1
    began = time.perf_counter()
    try:
        declared = request.content_length
        if declared is not None and declared > ctx.config.max_body_bytes:  # refused before a byte is read
            raise HttpError(413, f"request body of {declared} bytes; at most {ctx.config.max_body_bytes}")
        response = await handler(request)
    except HttpError as exc:
        response = error_response(exc.status, exc.messages, exc.headers)
    except web.HTTPException as exc:  # aiohttp's own: 404, 405, 413 ...
        if exc.status < 400:
            raise
        response = error_response(
            exc.status, [exc.reason or "error"], {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        )
    except (sqlite3.Error, LedgerError) as exc:  # the state cannot be read or written (a full disk...): not the client's fault
        ctx.store_failed_at = time.monotonic()
        logger.error(f"state store error on {request.method} {request.path}: {exc}")
        response = error_response(503, ["Service temporarily unavailable (state store)"], {"Retry-After": "30"})
    except Exception:
        logger.exception(f"unhandled error on {request.method} {request.path}")
        response = error_response(500, ["Internal Server Error"])
    if response.status >= 400:
        ctx.errors += 1
    response.headers.update(request.get(RATE_HEADERS, {}))
    route = route_of(request)
    ctx.metrics.requests.labels(route, str(response.status)).inc()
    ctx.metrics.latency.labels(route).observe(time.perf_counter() - began)
    return response


async def root(request: web.Request) -> web.Response:
    """The address the local network prints answers with the API's documentation."""
    raise web.HTTPFound("/docs")


def build_app(ctx: ServerContext) -> web.Application:
    """The application for ``ctx``; the caller owns ``ctx``'s resources (state store, chain, S3)."""
    app = web.Application(middlewares=[errors], client_max_size=ctx.config.max_body_bytes)
    app[CTX] = ctx
    for endpoint in ENDPOINTS:
        handler = HANDLERS[(endpoint.method, endpoint.path)]
        path = endpoint.path.replace("{epochId}", "{epoch_id}")
        app.router.add_route(endpoint.method.upper(), path, handler)
    app.router.add_get("/docs-json", public.docs_json)
    app.router.add_get("/docs", public.docs)
    app.router.add_get("/", root)
    if ctx.config.clock_offset:

        async def skewed_date(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["Date"] = formatdate(ctx.now(), usegmt=True)

        app.on_response_prepare.append(skewed_date)
    return app
