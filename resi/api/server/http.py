"""Request parsing, errors in the spec's shapes, and the authorization every signed endpoint runs.

Order of checks (security rules): body shape (400) -> timestamp window (400) -> signature (401) ->
registration (401) -> validator permit (401) -> replay (401) -> rate limit (429). An invalid signature is
refused before anything is charged to the hotkey it names; a replay is refused without charging either.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from resi import constants as c
from resi import jsonsafe
from resi.api.server.context import ServerContext
from resi.api.signing import verify_commitment
from resi.chain.base import ChainError, Neuron
from resi.chain.keys import is_ss58

M = TypeVar("M", bound=BaseModel)


class HttpError(Exception):
    def __init__(self, status: int, *messages: str, headers: dict[str, str] | None = None):
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}


def error_response(status: int, messages: list[str], headers: dict[str, str] | None = None) -> web.Response:
    """Both spec error shapes in one body: ``detail`` and ``statusCode``/``message``/``error``."""
    body = {
        "statusCode": status,
        "message": messages,
        "error": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "detail": messages[0] if len(messages) == 1 else messages,
    }
    return web.json_response(body, status=status, headers=headers)


def _validation_messages(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors()[:20]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        out.append(f"{where}: {err.get('msg')}")
    return out


BODY_TIMEOUT = 15.0
"""Seconds a client has to send a body once its headers are in."""


async def read_body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await asyncio.wait_for(request.read(), timeout=BODY_TIMEOUT)
    except web.HTTPRequestEntityTooLarge:
        raise HttpError(413, "request body too large") from None
    except asyncio.TimeoutError:
        raise HttpError(408, f"the body did not arrive within {BODY_TIMEOUT:g} s") from None
    try:
        data = jsonsafe.loads(raw, max_depth=8)
    except jsonsafe.JsonRejected as exc:
        raise HttpError(400, f"body must be a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise HttpError(400, "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HttpError(400, *_validation_messages(exc)) from None


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise HttpError(400, *_validation_messages(exc)) from None


RATE_HEADERS = "rate_limit_headers"
"""Request key of the rate-limit headers; the error middleware puts them on whatever response goes out."""


def charge(ctx: ServerContext, request: web.Request, limit_key: str, who: str) -> None:
    """Count one call of ``who`` on ``limit_key`` (HttpError 429 past the limit); the response will carry
    ``X-RateLimit-Limit/Remaining/Reset``."""
    rule = ctx.config.rate_limits.get(limit_key)
    if rule is None:
        return
    now = ctx.now()
    allowed, remaining, reset = ctx.store.charge(f"{limit_key}:{who}", rule.limit, rule.window, now)
    ctx.charged += 1
    if ctx.charged % 1000 == 0:
        ctx.store.prune(now, max(r.window for r in ctx.config.rate_limits.values()))
    headers = {
        "X-RateLimit-Limit": str(rule.limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset + 0.999)),
    }
    request[RATE_HEADERS] = headers
    if not allowed:
        ctx.metrics.rate_limited.labels(limit_key).inc()
        headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
        raise HttpError(429, f"Rate limit of {rule.limit} per {rule.window:g} s exceeded")


async def authorize(
    ctx: ServerContext,
    request: web.Request,
    *,
    hotkey: str,
    commitment: str,
    signature: str,
    timestamp: int,
    limit_key: str,
    validator: bool = False,
) -> Neuron:
    """Run every check of a signed request and charge it; the caller's neuron."""
    now = ctx.now()
    if not c.TIMESTAMP_MIN <= timestamp <= c.TIMESTAMP_MAX or abs(now - timestamp) > c.TIMESTAMP_TOLERANCE_S:
        raise HttpError(400, "Invalid timestamp")
    if not is_ss58(hotkey):
        raise HttpError(400, "hotkey must be an ss58 address")
    if not verify_commitment(hotkey, commitment, signature):
        ctx.metrics.signature_failures.inc()
        raise HttpError(401, "Invalid signature")
    try:
        neuron = await ctx.metagraph.neuron(hotkey)
    except ChainError as exc:
        raise HttpError(503, f"chain unavailable: {exc}") from None
    if neuron is None:
        raise HttpError(401, f"Hotkey is not registered on subnet {ctx.config.netuid}")
    if validator and not neuron.validator_permit:
        raise HttpError(401, "You are not validator")
    if not ctx.store.first_use(hotkey, commitment, now, keep=2 * c.TIMESTAMP_TOLERANCE_S + 60):
        raise HttpError(401, "Request already used (replay)")
    charge(ctx, request, limit_key, hotkey)
    return neuron
