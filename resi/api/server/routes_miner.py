"""Miner endpoints: current assignment, status updates, upload credentials."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from resi import constants as c
from resi.api import limits as lim
from resi.api import signing
from resi.api.models import FolderAccessRequest, SignedQuery, StatusUpdateRequest
from resi.api.server.context import CTX
from resi.api.server.http import HttpError, authorize, read_body, read_query
from resi.epochs import UTC, iso_z, utcnow


async def current_assignment(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    q = read_query(request, SignedQuery)
    await authorize(
        ctx,
        request,
        hotkey=q.hotkey,
        commitment=signing.assignment_current(q.timestamp),
        signature=q.signature,
        timestamp=q.timestamp,
        limit_key=lim.ASSIGNMENT,
    )
    return web.Response(body=ctx.assignment_json(ctx.current_epoch()), content_type="application/json")


async def miner_status(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await read_body(request, StatusUpdateRequest)
    await authorize(
        ctx,
        request,
        hotkey=body.hotkey,
        commitment=signing.miner_status(body.hotkey, body.epoch_id, body.timestamp),
        signature=body.signature,
        timestamp=body.timestamp,
        limit_key=lim.STATUS,
    )
    try:
        epoch = ctx.parse_epoch(body.epoch_id)
    except ValueError:
        raise HttpError(400, "epochId is not an epoch id") from None
    now = utcnow()
    current = ctx.current_epoch()
    late_report = epoch.end <= now <= epoch.end + ctx.config.status_grace and body.status in (c.STATUS_TIMEOUT, c.STATUS_FAILED)
    if epoch != current and not late_report:
        raise HttpError(400, f"epochId {body.epoch_id} is not the current epoch ({current.id})")
    record = ctx.store.epoch(epoch.id) or (ctx.epoch_record(epoch) if epoch == current else None)
    if record is None or body.nonce != record["nonce"]:
        raise HttpError(400, "nonce does not match the epoch")
    assigned = {z["zipcode"] for z in record["assignment"]["zipcodes"]}
    unknown = sorted({z.zipcode for z in body.zipcodes_completed or []} - assigned)
    if unknown:
        raise HttpError(400, f"zipcodesCompleted has zipcodes not assigned this epoch: {', '.join(unknown[:10])}")
    ctx.store.add_status(epoch.id, body.hotkey, body.status, body.listings_scraped, body.s3_upload_complete, body.wire())
    return web.json_response(
        {
            "success": True,
            "message": "Miner status updated successfully",
            "epochId": epoch.id,
            "status": body.status,
            "timestamp": iso_z(now),
        }
    )


async def folder_access(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    body = await read_body(request, FolderAccessRequest)
    neuron = await authorize(
        ctx,
        request,
        hotkey=body.hotkey,
        commitment=signing.miner_s3_access(body.coldkey, body.hotkey, body.timestamp),
        signature=body.signature,
        timestamp=body.timestamp,
        limit_key=lim.FOLDER_ACCESS,
    )
    if neuron.coldkey != body.coldkey:
        raise HttpError(401, "coldkey does not own this hotkey")
    now = utcnow()
    requested = body.expiry if body.expiry is not None else body.timestamp + 86_400
    if requested <= now.timestamp():
        raise HttpError(400, "expiry is in the past")
    # The policy is for the current epoch's folder only and dies at its deadline: S3 itself refuses a late upload.
    epoch = ctx.current_epoch()
    expires = min(datetime.fromtimestamp(requested, UTC), now + ctx.config.upload_ttl, epoch.end)
    if expires - now < timedelta(seconds=1):
        raise HttpError(503, "the epoch is ending: ask again for the next one")
    prefix = c.miner_epoch_prefix(body.hotkey, epoch.id)
    post = ctx.presigner.presigned_post(ctx.config.data_bucket, prefix, ctx.config.max_upload_bytes, expires)
    folder = c.miner_prefix(body.hotkey)
    list_url = ctx.presigner.list_url(ctx.config.data_bucket, folder, int(ctx.config.read_ttl.total_seconds()))
    return web.json_response(upload_answer(post, prefix, expires, ctx.config.max_upload_bytes, list_url, folder_path=folder))


def upload_answer(
    post: dict, folder: str, expires: datetime, max_bytes: int, list_url: str | None, folder_path: str | None = None
) -> dict:
    """Both shapes of the spec's upload-credential answer in one body. ``folder``: the prefix the policy allows
    (an epoch's folder for miners); ``folder_path``: the spec's ``metadata.folderPath`` (default ``folder``)."""
    answer = {
        "success": True,
        "message": "S3 upload credentials generated successfully",
        "uploadUrl": post["url"],
        "url": post["url"],
        "fields": post["fields"],
        "folder": folder,
        "expiry": expires.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "metadata": {
            "folderPath": folder_path or folder,
            "expiresAt": iso_z(expires),
            "maxFileSize": f"{max_bytes // (1024 * 1024)}MB",
            "supportedFormats": ["parquet", "json"],
        },
        "structure_info": {
            "folder_structure": (folder_path or folder) + "epoch={epoch_id}/",
            "description": "Upload listings.parquet and metadata.json to epoch={epoch_id}/ under this folder",
        },
    }
    if list_url:
        answer["list_url"] = list_url
    return answer
