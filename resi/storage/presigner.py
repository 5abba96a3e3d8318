"""The server side of object storage: boto3 presigns POST policies, list URLs and GET URLs.

Only the API server holds S3 credentials; it hands out URLs that expire and, for uploads, a policy that
confines the holder to one key prefix and a size range. Presigning is local computation (no request);
``ensure_bucket`` and ``check`` talk to S3.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import boto3
from botocore.auth import S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from resi.logs import register_secret

UPLOAD_CONTENT_TYPE = "application/octet-stream"
"""The one content type an upload policy admits (parquet and JSON alike are stored as bytes)."""


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None
    """None for AWS itself; the SeaweedFS URL locally."""
    region: str
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r}, access_key=***)"


class S3Presigner:
    def __init__(self, settings: S3Settings):
        register_secret(settings.secret_key)
        register_secret(settings.access_key)
        self.settings = settings
        self._post_auth = S3SigV4PostAuth(Credentials(settings.access_key, settings.secret_key), "s3", settings.region)
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.endpoint_url else "virtual"},
                connect_timeout=5,
                read_timeout=20,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def presigned_post(self, bucket: str, prefix: str, max_bytes: int, expires_at: datetime, min_bytes: int = 1) -> dict:
        """``{"url", "fields"}`` for uploads under ``prefix`` only, of ``min_bytes..max_bytes`` each, of content
        type :data:`UPLOAD_CONTENT_TYPE`, valid until ``expires_at`` exactly: the policy's expiration is that
        instant (to the millisecond), not a whole number of seconds from now, so credentials that die at an
        epoch's deadline live until it. The ``key`` field is ``{prefix}${filename}``; clients set their own
        key under the prefix."""
        conditions = [
            {"acl": "private"},
            {"Content-Type": UPLOAD_CONTENT_TYPE},
            ["starts-with", "$key", prefix],
            ["content-length-range", min_bytes, max_bytes],
        ]
        post = self._client.generate_presigned_post(
            Bucket=bucket,
            Key=prefix + "${filename}",
            Fields={"acl": "private", "Content-Type": UPLOAD_CONTENT_TYPE},
            Conditions=conditions,
            ExpiresIn=60,
        )
        # boto3 counts the expiry in whole seconds from its own clock: write the exact instant and sign again
        fields = post["fields"]
        policy = json.loads(base64.b64decode(fields["policy"]))
        at = expires_at.astimezone(timezone.utc)
        policy["expiration"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
        request = AWSRequest(method="POST", url=post["url"])
        request.context["timestamp"] = fields["x-amz-date"]
        fields["x-amz-signature"] = self._post_auth.signature(fields["policy"], request)
        return post

    def list_url(
        self,
        bucket: str,
        prefix: str,
        expires_in: int,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        max_keys: int | None = None,
    ) -> str:
        params: dict = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            params["Delimiter"] = delimiter
        if continuation_token:
            params["ContinuationToken"] = continuation_token
        if max_keys:
            params["MaxKeys"] = max_keys
        return self._client.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=expires_in)

    def get_url(self, bucket: str, key: str, expires_in: int) -> str:
        return self._client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (idempotent)."""
        try:
            self._client.head_bucket(Bucket=bucket)
        except Exception:
            try:
                self._client.create_bucket(Bucket=bucket)
            except self._client.exceptions.BucketAlreadyOwnedByYou:
                pass

    def check(self, bucket: str) -> None:
        """Raise unless ``bucket`` answers (for health checks)."""
        self._client.head_bucket(Bucket=bucket)

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        """Direct write with the server's credentials (tests and fixtures only; neurons never have them)."""
        self._client.put_object(Bucket=bucket, Key=key, Body=body)
