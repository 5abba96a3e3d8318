"""The OpenAPI 3 document of the reference server, generated from the same pydantic models it validates with."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from resi import constants as c
from resi.api import models as m


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    signed_query: bool = False
    response: type[BaseModel] | None = None
    rate_limit: str | None = None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("get", "/healthcheck", "Server, database and S3 health (no auth, no limit)", response=m.Health),
    Endpoint(
        "get", "/api/v1/zipcode-assignments/stats", "Epoch and catalog statistics (public)", response=m.Stats, rate_limit="stats"
    ),
    Endpoint(
        "get",
        "/api/v1/zipcode-assignments/current",
        "Current epoch's assignment; signs `zipcode:assignment:current:{timestamp}`",
        signed_query=True,
        response=m.Assignment,
        rate_limit="assignment",
    ),
    Endpoint(
        "post",
        "/api/v1/zipcode-assignments/status",
        "Miner status; signs `miner:status:{hotkey}:{epochId}:{timestamp}`",
        body=m.StatusUpdateRequest,
        response=m.StatusResponse,
        rate_limit="status",
    ),
    Endpoint(
        "post",
        "/get-folder-access",
        "Miner upload credentials (presigned POST); signs `s3:data:access:{coldkey}:{hotkey}:{timestamp}`",
        body=m.FolderAccessRequest,
        response=m.UploadAccess,
        rate_limit="folder_access",
    ),
    Endpoint(
        "post",
        "/api/v1/s3-access/validator-upload",
        "Validator result upload credentials; signs `s3:validator:upload:{timestamp}`",
        body=m.ValidatorUploadRequest,
        response=m.UploadAccess,
        rate_limit="validator_upload",
    ),
    Endpoint(
        "post",
        "/get-validator-access",
        "Validator list URLs over all miners; signs `s3:validator:access:{timestamp}`",
        body=m.ValidatorAccessRequest,
        response=m.ValidatorAccess,
        rate_limit="validator_access",
    ),
    Endpoint(
        "post",
        "/get-miner-specific-access",
        "Validator access to one miner (list, and with epoch_id GET URLs); signs `s3:validator:miner:{miner_hotkey}:{timestamp}`",
        body=m.MinerSpecificAccessRequest,
        response=m.MinerSpecificAccess,
        rate_limit="miner_access",
    ),
    Endpoint(
        "get",
        "/api/v1/zipcode-assignments/epoch/{epochId}",
        "A past epoch's assignment (validators); signs `zipcode:validation:{epochId}:{timestamp}`",
        signed_query=True,
        response=m.Assignment,
        rate_limit="epoch_assignment",
    ),
)

_ERROR = {
    "type": "object",
    "properties": {
        "statusCode": {"type": "integer"},
        "message": {"type": "array", "items": {"type": "string"}},
        "error": {"type": "string"},
        "detail": {},
    },
}

_QUERY = [
    {"name": "hotkey", "in": "query", "required": True, "schema": {"type": "string"}},
    {"name": "signature", "in": "query", "required": True, "schema": {"type": "string"}},
    {
        "name": "timestamp",
        "in": "query",
        "required": True,
        "schema": {"type": "integer", "minimum": c.TIMESTAMP_MIN, "maximum": c.TIMESTAMP_MAX},
    },
]


@lru_cache(maxsize=8)
def openapi_document(server_url: str = "http://localhost:3000") -> dict:
    models = {e.body for e in ENDPOINTS if e.body} | {e.response for e in ENDPOINTS if e.response}
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda x: x.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    components = dict(schemas.get("$defs", {}))
    components["Error"] = _ERROR
    paths: dict[str, dict] = {}
    for e in ENDPOINTS:
        op: dict = {
            "summary": e.summary,
            "operationId": e.path.strip("/").replace("/", "_").replace("{", "").replace("}", "").replace("-", "_")
            + "_"
            + e.method,
            "responses": {},
        }
        if e.response:
            op["responses"]["200"] = {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{e.response.__name__}"}}},
            }
        for code, text in (
            ("400", "Malformed request or timestamp"),
            ("401", "Bad signature, unregistered or not a validator"),
            ("413", "Body too large"),
            ("429", "Rate limited"),
        ):
            op["responses"][code] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        params = list(_QUERY) if e.signed_query else []
        if "{epochId}" in e.path:
            params.append({"name": "epochId", "in": "path", "required": True, "schema": {"type": "string"}})
        if params:
            op["parameters"] = params
        if e.body:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}},
            }
        if e.rate_limit:
            op["x-rate-limit"] = e.rate_limit
        paths.setdefault(e.path, {})[e.method] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Resi Labs API (subnet 46 reference server)", "version": "1.0.0"},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": components},
    }
