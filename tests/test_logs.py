"""No secret reaches a log line: registered secrets, presigned signatures, URL credentials, key=value secrets."""

from __future__ import annotations

import io

from loguru import logger

from resi.logs import register_secret, scrub, setup_logging


def test_scrub_masks_every_kind_of_secret():
    register_secret("s3-secret-value-123")
    text = scrub(
        "key s3-secret-value-123 and https://b.s3/x?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef0123 "
        "proxy http://alice:hunter2@proxy:8080 {'secret_key': 'zzz', \"password\": \"pw\"} mnemonic=word1"
    )
    for secret in ("s3-secret-value-123", "abcdef0123", "AKIA", "hunter2", "zzz", 'pw"', "word1"):
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


def test_scrub_masks_presigned_fields_in_dicts_and_json_and_bare_mnemonics():
    fields = {"key": "data/x", "policy": "eyJleHBpcmF0aW9u", "x-amz-signature": "0a1b2c3d4e5f"}
    text = scrub(f'fields {fields} json {{"X-Amz-Signature": "9f8e7d6c", "X-Amz-Credential": "AKIA/2025"}}')
    for secret in ("eyJleHBpcmF0aW9u", "0a1b2c3d4e5f", "9f8e7d6c", "AKIA/2025"):
        assert secret not in text, (secret, text)
    phrase = "abandon ability able about above absent absorb abstract absurd abuse access accident"
    for words in (phrase, phrase + " account accuse achieve acid acoustic acquire across act action actor actress"):
        scrubbed = scrub(f"Restored from {words}.")
        assert scrubbed.startswith("Restored ") and "***" in scrubbed
        assert not any(word in scrubbed for word in words.split()), scrubbed
    plain = "epoch 2025-10-01T16-00-00: uid 7 score 0.97 (ok; 9812 of 9840 rows valid), weights set on 12 uids"
    assert scrub(plain) == plain
