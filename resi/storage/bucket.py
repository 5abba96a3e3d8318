"""Read access to a bucket with the reader's own credentials (the consumers' side: ``resi-data sync``).

Neurons never hold S3 credentials; a consumer that Resi Labs gave read access to the validators' bucket does.
Credentials come from the caller or boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
profiles, instance roles). Everything read is bounded: a listing page at a time, an object only up to the size
the caller allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from resi.logs import register_secret
from resi.storage.presigned import ObjectTooLarge, StorageError


@dataclass(frozen=True)
class BucketSettings:
    bucket: str
    endpoint_url: str | None = None
    """None for AWS itself; e.g. a local network's SeaweedFS URL."""
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"BucketSettings(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, region={self.region!r})"


class BucketReader:
    def __init__(self, settings: BucketSettings):
        for secret in (settings.access_key, settings.secret_key):
            if secret:
                register_secret(secret)
        self.settings = settings
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=Config(
                signature_version="s3v4",
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path" if settings.endpoint_url else "virtual"},
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, a page at a time."""
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents") or []:
                    yield item["Key"], int(item.get("Size") or 0)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"listing {prefix!r}: {exc}", _status(exc), _code(exc)) from None

    def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes; :class:`ObjectTooLarge` past ``max_bytes`` (read no further)."""
        try:
            answer = self._client.get_object(Bucket=self.settings.bucket, Key=key)
            size = int(answer.get("ContentLength") or 0)
            if size > max_bytes:
                answer["Body"].close()
                raise ObjectTooLarge(f"{key}: {size} bytes, more than {max_bytes}")
            data = answer["Body"].read(max_bytes + 1)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"reading {key!r}: {exc}", _status(exc), _code(exc)) from None
        if len(data) > max_bytes:
            raise ObjectTooLarge(f"{key}: more than {max_bytes} bytes")
        return data


def _status(exc: Exception) -> int | None:
    return (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def _code(exc: Exception) -> str | None:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
