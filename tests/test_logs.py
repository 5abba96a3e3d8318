"""No secret reaches a log line: registered secrets, presigned signatures, URL credentials, key=value secrets."""

from __future__ import annotations

import io

from loguru import logger

from resi.logs import register_secret, scrub, setup_logging


def test_scrub_masks_every_kind_of_secret():
    register_secret("s3-secret-value-123")
    text = scrub("key s3-secret-value-123 and https://b.s3/x?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef0123 "
                 "proxy http://alice:hunter2@proxy:8080 {'secret_key': 'zzz', \"password\": \"pw\"} mnemonic=word1")
    for secret in ("s3-secret-value-123", "abcdef0123", "AKIA", "hunter2", "zzz", "pw\"", "word1"):
        assert secret not in text, (secret, text)
    assert "X-Amz-Signature=***" in text and "http://***@proxy:8080" in text


def test_configured_logging_scrubs_messages_and_exceptions(tmp_path):
    secret = "very-secret-" + "proxy-token"  # not literally in this file: tracebacks quote source lines
    register_secret(secret)
    log_file = tmp_path / "out.log"
    setup_logging(debug=True, log_file=log_file, name="test")
    sink = io.StringIO()
    logger.add(sink, level="DEBUG")
    logger.info(f"using proxy http://u:{secret}@host:1")
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        logger.exception("boom")
    logger.complete()
    for text in (sink.getvalue(), log_file.read_text()):
        assert secret not in text and "***" in text
    setup_logging()
