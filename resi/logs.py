"""One loguru configuration for every entry point, with secrets scrubbed from every line.

Call :func:`setup_logging` once in ``main``; libraries only ``from loguru import logger``. Secrets that
are known at run time (S3 keys, proxy credentials) are registered with :func:`register_secret`; presigned
URL signatures, credentials in URLs and anything shaped like a mnemonic are masked by pattern.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from loguru import logger

_MASK = "***"
_secrets: set[str] = set()

_KEYS = r"x-amz-signature|x-amz-credential|x-amz-security-token|signature|awsaccesskeyid|policy"
_PATTERNS = [
    # Presigned URL signatures and credentials (query string or form field).
    re.compile(rf"(?i)((?:{_KEYS})=)[^&\s\"']+"),
    # user:password@ in URLs (proxies).
    re.compile(r"(?i)(\w+://)[^/\s:@]+:[^/\s@]+@"),
    # "secret"/"password"/"mnemonic" = value, and the presigned fields, in dicts, JSON and key=value text.
    re.compile(
        rf"(?i)([\"']?(?:secret[_-]?key|secret|password|mnemonic|private[_-]?key|{_KEYS})[\"']?\s*[:=]\s*"
        r"[\"']?)[^\"'\s,}&]+"
    ),
]
_WORD = r"[a-z]{3,8}"
_MNEMONIC = re.compile(rf"\b{_WORD}(?:\s+{_WORD}){{11,}}\b")
"""12 or more lowercase words of 3 to 8 letters in a row: a BIP-39 phrase (12 to 24 such words), masked whole."""


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log line (ignored when empty or very short)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` with every known secret and secret-shaped token masked."""
    for secret in _secrets:
        text = text.replace(secret, _MASK)
    text = _PATTERNS[0].sub(lambda m: m.group(1) + _MASK, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + _MASK + "@", text)
    text = _PATTERNS[2].sub(lambda m: m.group(1) + _MASK, text)
    return _MNEMONIC.sub(_MASK, text)


def _patch(record) -> None:
    record["message"] = scrub(record["message"])
    if record["exception"] is not None:
        exc_type, exc, tb = record["exception"]
        if exc is not None and _secrets:
            # Exceptions are rendered from their args; a scrubbed copy keeps the traceback useful.
            try:
                scrubbed = exc_type(scrub(str(exc)))
                scrubbed.__traceback__ = exc.__traceback__
                record["exception"] = record["exception"]._replace(value=scrubbed)
            except Exception:  # exception types with unusual constructors keep their message
                pass


def setup_logging(debug: bool = False, trace: bool = False, log_file: Path | None = None, name: str = "") -> None:
    """Configure loguru: stderr at INFO (DEBUG with ``debug``, TRACE with ``trace``), optionally a file."""
    level = "TRACE" if trace else "DEBUG" if debug else "INFO"
    logger.remove()
    logger.configure(patcher=_patch, extra={"name": name})
    _SINK.update(
        level=level,
        format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
        + (f"{name} | " if name else "")
        + "<level>{message}</level>",
    )
    logger.add(sys.stderr, backtrace=False, diagnose=False, **_SINK)
    if log_file is not None:
        add_log_file(log_file)


_SINK: dict = {"level": "INFO", "format": "{message}"}


def add_log_file(path: Path) -> bool:
    """Also log to ``path`` (rotated at 50 MB, five files kept); False, said on stderr, if it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.add(path, backtrace=False, diagnose=False, rotation="50 MB", retention=5, **_SINK)
    except OSError as exc:
        logger.warning(f"cannot log to {path} ({exc}): logging to stderr only")
        return False
    return True
