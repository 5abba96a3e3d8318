"""Validator endpoints: read access to miners' data, past-epoch assignments, result upload credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from resi import constants as c
from resi.api import limits as lim
from resi.api import signing
from resi.api.models import (
    MinerSpecificAccessRequest,
    SignedQuery,
    ValidatorAccessRequest,
    ValidatorUploadRequest,
)
from resi.api.server.context import CTX, ServerContext
from resi.api.server.http import HttpError, authorize, read_body, read_query
from resi.api.server.routes_miner import upload_answer
from resi.chain.keys import is_ss58
from resi.epochs import Epoch, iso_z, utcnow


def _epoch(ctx: ServerContext, epoch_id: str, field: str = "epochId") -> Epoch:
    try:
        epoch = ctx.parse_epoch(epoch_id)
    except ValueError:
        raise HttpError(400, f"{field} is not an epoch id") from None
    if epoch.start > utcnow():
        raise HttpError(404, f"epoch {epoch_id} has not started")
    return epoch


def _read_ttl(ctx: ServerContext) -> int:
    return int(ctx.config.read_ttl.total_seconds())


async def epoch_assignment(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    epoch_id = request.match_info["epoch_id"]
    q = read_query(request, SignedQuery)
    await authorize(
        ctx,
        request,
        hotkey=q.hotkey,
        commitment=signing.epoch_assignment(epoch_id, q.timestamp),
        signature=q.signature,
        timestamp=q.timestamp,
        limit_key=lim.EPOCH_ASSIGNMENT,
        validator=True,
    )
    epoch = _epoch(ctx, epoch_id)
    record = ctx.store.epoch(epoch.id) or (ctx.epoch_record(epoch) if epoch == ctx.current_epoch() else None)
    if record is None:
        raise HttpError(404, f"no assignment was made for epoch {epoch.id}")
    return web.json_response(record["assignment"])


async def validator_upload(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await read_body(request, ValidatorUploadRequest)
    await authorize(
        ctx,
        request,
        hotkey=body.hotkey,
        commitment=signing.validator_upload(body.timestamp),
        signature=body.signature,
        timestamp=body.timestamp,
        limit_key=lim.VALIDATOR_UPLOAD,
        validator=True,
    )
    epoch = _epoch(ctx, body.epoch_id)
    prefix = c.validator_epoch_prefix(body.hotkey, epoch.id)
    expires = utcnow() + min(ctx.config.upload_ttl, timedelta(hours=1))
    post = ctx.presigner.presigned_post(ctx.config.validator_bucket, prefix, ctx.config.max_upload_bytes, expires)
    answer = upload_answer(post, prefix, expires, ctx.config.max_upload_bytes, None)
    return web.json_response(answer)


async def validator_access(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await read_body(request, ValidatorAccessRequest)
    await authorize(
        ctx,
        request,
        hotkey=body.hotkey,
        commitment=signing.validator_access(body.timestamp),
        signature=body.signature,
        timestamp=body.timestamp,
        limit_key=lim.VALIDATOR_ACCESS,
        validator=True,
    )
    ttl = _read_ttl(ctx)
    bucket, root = ctx.config.data_bucket, "data/hotkey="
    return web.json_response(
        {
            "bucket": bucket,
            "region": ctx.config.region,
            "validator_hotkey": body.hotkey,
            "expiry": iso_z(utcnow() + timedelta(seconds=ttl)),
            "expiry_seconds": ttl,
            "urls": {
                "global": {"list_all_data": ctx.presigner.list_url(bucket, root, ttl)},
                "miners": {"list_all_miners": ctx.presigner.list_url(bucket, root, ttl, delimiter="/")},
            },
            "structure_info": {
                "folder_structure": "data/hotkey={hotkey}/epoch={epoch_id}/",
                "description": "Each miner's epoch folder holds listings.parquet and metadata.json",
            },
        }
    )


async def miner_specific_access(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await read_body(request, MinerSpecificAccessRequest)
    await authorize(
        ctx,
        request,
        hotkey=body.hotkey,
        commitment=signing.validator_miner_access(body.miner_hotkey, body.timestamp),
        signature=body.signature,
        timestamp=body.timestamp,
        limit_key=lim.MINER_ACCESS,
        validator=True,
    )
    if not is_ss58(body.miner_hotkey):
        raise HttpError(400, "miner_hotkey must be an ss58 address")
    ttl = _read_ttl(ctx)
    bucket = ctx.config.data_bucket
    prefix = c.miner_prefix(body.miner_hotkey)
    answer: dict[str, Any] = {
        "bucket": bucket,
        "region": ctx.config.region,
        "miner_hotkey": body.miner_hotkey,
        "miner_url": ctx.presigner.list_url(bucket, prefix, ttl, continuation_token=body.continuation_token, max_keys=1000),
        "prefix": prefix,
        "expiry": iso_z(utcnow() + timedelta(seconds=ttl)),
    }
    if body.epoch_id is not None:
        epoch = _epoch(ctx, body.epoch_id, "epoch_id")
        epoch_prefix = c.miner_epoch_prefix(body.miner_hotkey, epoch.id)
        answer.update(
            epoch_id=epoch.id,
            epoch_prefix=epoch_prefix,
            epoch_list_url=ctx.presigner.list_url(bucket, epoch_prefix, ttl, continuation_token=body.continuation_token),
            files={name: ctx.presigner.get_url(bucket, epoch_prefix + name, ttl) for name in (c.LISTINGS_FILE, c.METADATA_FILE)},
        )
    return web.json_response(answer)
