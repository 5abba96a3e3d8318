"""Wire models of the Resi API, for both spec documents.

Every model accepts the camelCase and the snake_case spelling of each field (``epochId`` and
``epoch_id``) and writes camelCase unless a field's spec spelling is snake_case. Response models ignore
fields they do not know, so a server that adds fields does not break clients. The miner S3 access answer
comes in two shapes (``uploadUrl``/``fields``/``metadata`` and ``url``/``fields``/``folder``/``list_url``/
``expiry``); :class:`UploadAccess` reads both.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from resi import constants as c
from resi.epochs import parse_iso

EPOCH_ID = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}")


def _both(name: str) -> AliasChoices:
    return AliasChoices(to_camel(name), name)


class WireModel(BaseModel):
    """Snake-case attributes; camelCase or snake_case on input; camelCase on output."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_both, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StrictRequest(WireModel):
    """Requests: unknown fields are ignored (clients of other versions), types are strict about ints."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_both, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
        str_max_length=4096,
    )


Timestamp = Annotated[int, Field(ge=c.TIMESTAMP_MIN, le=c.TIMESTAMP_MAX, strict=True)]
MAX_COUNT = 1_000_000_000
"""Counts a request may carry: far beyond any real one, well inside what the store holds (64-bit)."""
Status = Literal["IN_PROGRESS", "COMPLETED", "FAILED", "TIMEOUT"]


# --- Requests --------------------------------------------------------------------------------------------------


class SignedRequest(StrictRequest):
    hotkey: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=256)
    timestamp: Timestamp


class SignedQuery(StrictRequest):
    """The signed query string of GET endpoints (values arrive as text)."""

    hotkey: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=256)
    timestamp: Annotated[int, Field(ge=c.TIMESTAMP_MIN, le=c.TIMESTAMP_MAX)]


class ZipcodeCompletion(StrictRequest):
    zipcode: str = Field(pattern=r"^\d{5}$")
    listings_scraped: int = Field(ge=0, le=MAX_COUNT, strict=True)
    completed_at: str | None = Field(default=None, max_length=64)


class StatusUpdateRequest(SignedRequest):
    epoch_id: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=1, max_length=128)
    status: Status
    listings_scraped: int | None = Field(default=None, ge=0, le=MAX_COUNT, strict=True)
    zipcodes_completed: list[ZipcodeCompletion] | None = Field(default=None, max_length=1000)
    s3_upload_complete: bool = False
    s3_upload_timestamp: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = Field(default=None, max_length=500)
    """Extension: why a FAILED or TIMEOUT happened."""


class FolderAccessRequest(SignedRequest):
    coldkey: str = Field(min_length=1, max_length=64)
    expiry: int | None = Field(default=None, ge=0, le=c.TIMESTAMP_MAX, strict=True)


class ValidatorUploadRequest(SignedRequest):
    epoch_id: str = Field(min_length=1, max_length=64)
    purpose: str = Field(default="epoch_validation_results", max_length=128)
    estimated_data_size_mb: float = Field(default=25, ge=0, le=100_000)
    retention_days: int = Field(default=90, ge=0, le=3650, strict=True)


class ValidatorAccessRequest(SignedRequest):
    expiry: int | None = Field(default=None, ge=0, le=c.TIMESTAMP_MAX, strict=True)


class MinerSpecificAccessRequest(SignedRequest):
    miner_hotkey: str = Field(min_length=1, max_length=64, serialization_alias="miner_hotkey")
    epoch_id: str | None = Field(default=None, max_length=64, serialization_alias="epoch_id")
    """Extension: also presign the epoch folder's list URL and GET URLs for its two files."""
    continuation_token: str | None = Field(default=None, max_length=1024, serialization_alias="continuation_token")
    """Extension: sign the list URLs for the page after this continuation token."""


# --- Responses -------------------------------------------------------------------------------------------------


class ZipcodeAssignment(WireModel):
    zipcode: str
    expected_listings: int
    state: str | None = None
    city: str | None = None
    county: str | None = None
    market_tier: str | None = None
    geographic_region: str | None = None

    @field_validator("market_tier")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if isinstance(value, str) else value

    @field_validator("zipcode", mode="before")
    @classmethod
    def _zip(cls, value: Any) -> Any:
        return f"{value:05d}" if isinstance(value, int) else value


class AssignmentMetadata(WireModel):
    total_expected_listings: int | None = None
    zipcode_count: int | None = None
    algorithm_version: str | None = None
    selection_seed: int | None = None


class Assignment(WireModel):
    """The zipcodes of an epoch (current or past): what every miner of the epoch was asked to scrape."""

    success: bool = True
    epoch_id: str
    epoch_start: datetime
    epoch_end: datetime
    nonce: str
    target_listings: int
    tolerance_percent: float
    submission_deadline: datetime
    zipcodes: list[ZipcodeAssignment]
    metadata: AssignmentMetadata | None = None

    @field_validator("epoch_start", "epoch_end", "submission_deadline", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_iso(value) if isinstance(value, str) else value

    @field_validator("epoch_id")
    @classmethod
    def _epoch_id(cls, value: str) -> str:
        """Epoch ids become folder and file names: only the documented form is taken."""
        if not EPOCH_ID.fullmatch(value):
            raise ValueError(f"not an epoch id: {value[:40]!r}")
        return value

    def expected(self) -> dict[str, int]:
        return {z.zipcode: z.expected_listings for z in self.zipcodes}


class StatusResponse(WireModel):
    success: bool = True
    message: str | None = None
    epoch_id: str | None = None
    status: str | None = None
    timestamp: str | None = None


class UploadAccess(WireModel):
    """Presigned POST credentials, from either shape of the miner (or validator) S3 access answer."""

    url: str
    fields: dict[str, str]
    folder: str
    expires_at: datetime | None = None
    list_url: str | None = None
    max_file_size: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _either_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        meta = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
        url = data.get("url") or data.get("uploadUrl") or data.get("upload_url")
        folder = data.get("folder") or meta.get("folderPath") or meta.get("folder_path")
        expiry = meta.get("expiresAt") or meta.get("expires_at") or data.get("expiry") or data.get("expires_at")
        out = {
            "url": url,
            "fields": data.get("fields"),
            "folder": folder,
            "expires_at": expiry,
            "list_url": data.get("list_url") or data.get("listUrl"),
            "max_file_size": meta.get("maxFileSize") or meta.get("max_file_size"),
        }
        if out["folder"] is None and isinstance(out["fields"], dict):
            key = str(out["fields"].get("key", ""))
            out["folder"] = key.split("${filename}")[0] if key else None
        return out

    @field_validator("expires_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_iso(value) if isinstance(value, str) else value

    @field_validator("fields", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class ValidatorAccessUrls(WireModel):
    list_all_data: str | None = None
    list_all_miners: str | None = None


class ValidatorAccess(WireModel):
    bucket: str | None = None
    region: str | None = None
    validator_hotkey: str | None = None
    expiry: datetime | None = None
    expiry_seconds: int | None = None
    urls: dict[str, ValidatorAccessUrls] = Field(default_factory=dict)

    @field_validator("expiry", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_iso(value) if isinstance(value, str) else value


class MinerSpecificAccess(WireModel):
    bucket: str | None = None
    region: str | None = None
    miner_hotkey: str
    miner_url: str
    prefix: str
    expiry: datetime | None = None
    epoch_id: str | None = None
    epoch_prefix: str | None = None
    epoch_list_url: str | None = None
    files: dict[str, str] = Field(default_factory=dict)
    """Extension: presigned GET URL by file name (``listings.parquet``, ``metadata.json``) of ``epoch_id``."""

    @field_validator("expiry", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_iso(value) if isinstance(value, str) else value


class LooseModel(WireModel):
    """Stats and health answers differ between deployments; keep every field."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Health(LooseModel):
    status: str


class Stats(LooseModel):
    success: bool = True
