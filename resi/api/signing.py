"""The commitment strings of the Resi API and their signatures.

Both spec documents sign a commitment string with the hotkey (sr25519 over its UTF-8 bytes) and send
the signature as hex. We send hex without ``0x`` and accept it with or without. Verification returns
False, never raises, whatever the input.
"""

from __future__ import annotations

import json

from resi import constants as c
from resi.chain.keys import Signer, verify


def assignment_current(timestamp: int) -> str:
    return c.COMMIT_ASSIGNMENT_CURRENT.format(timestamp=timestamp)


def miner_status(hotkey: str, epoch_id: str, timestamp: int) -> str:
    return c.COMMIT_MINER_STATUS.format(hotkey=hotkey, epoch_id=epoch_id, timestamp=timestamp)


def miner_s3_access(coldkey: str, hotkey: str, timestamp: int) -> str:
    return c.COMMIT_MINER_S3_ACCESS.format(coldkey=coldkey, hotkey=hotkey, timestamp=timestamp)


def validator_upload(timestamp: int) -> str:
    return c.COMMIT_VALIDATOR_UPLOAD.format(timestamp=timestamp)


def validator_access(timestamp: int) -> str:
    return c.COMMIT_VALIDATOR_ACCESS.format(timestamp=timestamp)


def validator_miner_access(miner_hotkey: str, timestamp: int) -> str:
    return c.COMMIT_VALIDATOR_MINER_ACCESS.format(miner_hotkey=miner_hotkey, timestamp=timestamp)


def epoch_assignment(epoch_id: str, timestamp: int) -> str:
    return c.COMMIT_EPOCH_ASSIGNMENT.format(epoch_id=epoch_id, timestamp=timestamp)


def sign_commitment(signer: Signer, commitment: str) -> str:
    """Hex (no ``0x``) of the signer's signature over the commitment's UTF-8 bytes."""
    return signer.sign(commitment.encode("utf-8")).hex()


def decode_signature(signature_hex: object) -> bytes | None:
    """The signature bytes of a hex string with or without ``0x``; None when it is not 64 bytes of hex."""
    if not isinstance(signature_hex, str):
        return None
    text = signature_hex.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) != 128:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def verify_commitment(hotkey: str, commitment: str, signature_hex: object) -> bool:
    """Whether ``signature_hex`` is ``hotkey``'s signature of ``commitment``. Never raises."""
    signature = decode_signature(signature_hex)
    if signature is None or not isinstance(commitment, str):
        return False
    return verify(hotkey, commitment.encode("utf-8"), signature)


MANIFEST_CONTEXT = b"resi:validated-listings:manifest:"
"""Prefixed to a manifest's canonical bytes before signing: a manifest signature can never be taken for a
request's, nor one of those for a manifest's."""


def manifest_bytes(manifest: dict) -> bytes:
    """The canonical bytes of a manifest (every field but ``signature``): sorted keys, no spaces, ASCII."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sign_manifest(signer: Signer, manifest: dict) -> dict:
    """``manifest`` with its ``validator`` set to the signer's hotkey and ``signature`` (hex) over its
    canonical bytes."""
    body = {**{k: v for k, v in manifest.items() if k != "signature"}, "validator": signer.hotkey}
    return {**body, "signature": signer.sign(MANIFEST_CONTEXT + manifest_bytes(body)).hex()}


def verify_manifest(manifest: object) -> bool:
    """Whether ``manifest`` (parsed JSON) carries a valid signature by the hotkey it names. Never raises."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("validator"), str):
        return False
    signature = decode_signature(manifest.get("signature"))
    if signature is None:
        return False
    try:
        message = MANIFEST_CONTEXT + manifest_bytes(manifest)
    except (TypeError, ValueError):
        return False
    return verify(manifest["validator"], message, signature)
