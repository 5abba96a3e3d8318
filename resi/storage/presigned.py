"""Object storage through presigned requests only (the client side: miners and validators).

Nobody but the API server holds S3 credentials. Miners upload with a presigned POST (a URL plus form
fields whose policy confines them to their prefix); validators list with presigned ``list_objects_v2``
URLs and download with presigned GET URLs. A presigned list URL cannot be extended with a continuation
token (the signature covers the query), so paging asks a ``renew`` callback for a freshly signed URL.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from resi.epochs import parse_iso

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MAX_LIST_XML_BYTES = 8 * 1024 * 1024
"""A page of 1,000 keys is about 300 KB of XML; anything far larger is not a list answer."""


class StorageError(RuntimeError):
    """An S3 request failed. ``status`` is the HTTP status (None for network errors), ``code`` the S3 code."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class ObjectTooLarge(StorageError):
    """A download went past its byte cap; nothing beyond the cap was read."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str


@dataclass
class Listing:
    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    complete: bool = True
    """False when the listing was truncated and could not be continued (no ``renew``, or page limit)."""


def _s3_error(status: int, body: bytes) -> StorageError:
    code = message = None
    try:
        root = ET.fromstring(body)
        code = root.findtext("Code")
        message = root.findtext("Message")
    except ET.ParseError:
        pass
    text = f"S3 answered {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    return StorageError(text, status=status, code=code)


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int, chunk: int = 256 * 1024) -> bytes | None:
    """The whole body, or None as soon as it exceeds ``max_bytes`` (nothing past the cap is buffered)."""
    parts: list[bytes] = []
    received = 0
    while True:
        part = await resp.content.read(min(chunk, max_bytes + 1 - received))
        if not part:
            return b"".join(parts)
        received += len(part)
        if received > max_bytes:
            return None
        parts.append(part)


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, 10))


async def upload_post(
    session: aiohttp.ClientSession,
    url: str,
    fields: dict[str, str],
    key: str,
    body: bytes,
    filename: str | None = None,
    timeout: float = 120.0,
) -> None:
    """Upload ``body`` to ``key`` through a presigned POST (``url`` + ``fields`` from the API).

    The policy decides what is allowed; S3 refuses a key outside the prefix (403), a body outside the
    content-length-range (400) and an expired policy (403), and this raises :class:`StorageError` then.
    """
    form = aiohttp.FormData()
    content_type = "application/octet-stream"
    for name, value in fields.items():
        if name.lower() == "content-type":
            content_type = str(value)
        if name.lower() not in ("key", "file"):
            form.add_field(name, str(value))
    form.add_field("key", key)
    form.add_field("file", body, filename=filename or key.rsplit("/", 1)[-1], content_type=content_type)
    try:
        async with session.post(url, data=form, timeout=_timeout(timeout)) as resp:
            if resp.status not in (200, 201, 204):
                raise _s3_error(resp.status, await resp.content.read(64 * 1024))
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise StorageError(f"upload of {key} failed: {exc!r}") from None


def parse_list_page(payload: bytes) -> tuple[list[ObjectInfo], list[str], bool, str | None]:
    """Objects, common prefixes, truncation flag and continuation token of one ``ListObjectsV2`` page."""
    try:
        root = ET.fromstring(payload)
    except ET.ParseError as exc:
        raise StorageError(f"list answer is not XML: {exc}") from None
    if root.tag not in (f"{_NS}ListBucketResult", "ListBucketResult"):
        raise StorageError(f"list answer is a {root.tag!r}, not a ListBucketResult")

    def find(el: ET.Element, name: str) -> str | None:
        value = el.findtext(f"{_NS}{name}")
        return value if value is not None else el.findtext(name)

    objects = []
    for item in list(root.iter(f"{_NS}Contents")) + list(root.iter("Contents")):
        try:
            objects.append(
                ObjectInfo(
                    key=find(item, "Key") or "",
                    size=int(find(item, "Size") or 0),
                    last_modified=parse_iso(find(item, "LastModified") or ""),
                    etag=(find(item, "ETag") or "").strip('"'),
                )
            )
        except ValueError as exc:
            raise StorageError(f"malformed entry in list answer: {exc}") from None
    prefixes = [find(p, "Prefix") or "" for p in list(root.iter(f"{_NS}CommonPrefixes")) + list(root.iter("CommonPrefixes"))]
    truncated = (find(root, "IsTruncated") or "false").strip().lower() == "true"
    token = find(root, "NextContinuationToken")
    return objects, prefixes, truncated, token


async def list_objects(
    session: aiohttp.ClientSession,
    url: str,
    renew: Callable[[str], Awaitable[str]] | None = None,
    max_pages: int = 100,
    timeout: float = 60.0,
) -> Listing:
    """Every object under a presigned list URL, following continuation through ``renew(token) -> url``."""
    listing = Listing()
    for _ in range(max_pages):
        try:
            async with session.get(url, timeout=_timeout(timeout)) as resp:
                if resp.status != 200:
                    raise _s3_error(resp.status, await resp.content.read(64 * 1024))
                payload = await _read_capped(resp, MAX_LIST_XML_BYTES)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise StorageError(f"list failed: {exc!r}") from None
        if payload is None:
            raise StorageError("list answer is larger than any real page")
        objects, prefixes, truncated, token = parse_list_page(payload)
        listing.objects.extend(objects)
        listing.prefixes.extend(prefixes)
        if not truncated:
            return listing
        if renew is None or not token:
            break
        url = await renew(token)
    listing.complete = False
    return listing


async def download(session: aiohttp.ClientSession, url: str, max_bytes: int, timeout: float = 120.0) -> bytes:
    """The body of a presigned GET, read at most up to ``max_bytes``: past that, :class:`ObjectTooLarge`."""
    try:
        async with session.get(url, timeout=_timeout(timeout)) as resp:
            if resp.status != 200:
                raise _s3_error(resp.status, await resp.content.read(64 * 1024))
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                raise ObjectTooLarge(f"object is {declared} bytes, over the cap of {max_bytes}", status=200)
            body = await _read_capped(resp, max_bytes)
            if body is None:
                raise ObjectTooLarge(f"object exceeds the cap of {max_bytes} bytes", status=200)
            return body
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise StorageError(f"download failed: {exc!r}") from None
