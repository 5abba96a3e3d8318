"""A miner's epoch result in words: the one renderer of verdicts. The terminal of the local network, the
status page, ``status``, the results file and the metrics all take their words (and the verdict's kind) from
:func:`verdict`, so the same result reads the same everywhere.

A verdict names the rule a zero crossed and the figure that crossed it ("9% of the rows false or unproven, more
than the 5% allowed"); hotkeys become names where the caller knows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resi.validation.params import ValidationParams

VALIDATOR = "validator"
"""The kind of a permit holder that uploaded nothing: it validates; it is not a failing miner."""
JOINED = "joined"
"""The kind of a uid registered after the epoch began that uploaded nothing: it could not be expected to take
part (``joined`` in the result)."""
PAID = "paid"
NOT_MINING = (VALIDATOR, JOINED)
"""The kinds of uids that are not judged as miners: no score, EMA or rejection series, not in miners' tables."""

GATE_WORDS = {
    "no_upload": "no upload by the deadline",
    "late_upload": "uploaded after the deadline",
    "missing_file": "one of the two files is missing",
    "wrong_nonce": "the metadata carries another nonce than the epoch's",
    "metadata_hotkey_mismatch": "the metadata names another hotkey",
    "metadata_epoch_mismatch": "the metadata names another epoch",
    "schema_version_mismatch": "another schema version",
    "sha256_mismatch": "listings.parquet does not hash to what the metadata says",
    "row_count_mismatch": "the metadata's row count is not the file's",
    "zipcode_counts_mismatch": "the metadata's zipcode counts are not the file's",
    "too_many_rows": "more rows than any assignment needs",
    "memory_limit_exceeded": "reading the file needed more memory than a validator allows",
    "time_limit_exceeded": "reading the file took longer than a validator allows",
    "judging_failed": "the file broke the reader",
}
"""Plain words for the gates a person meets most; any other gate is named by its code and its detail."""

ROW_WORDS = {
    "unassigned_zipcode": "in zipcodes not assigned this epoch",
    "scraped_outside_epoch": "scraped outside the epoch",
    "scraped_timestamp_not_utc": "with a scrape time not in UTC",
    "bad_source_url": "whose source_url is not the listing's own page",
    "duplicate_listing": "repeating a listing",
    "duplicate_address": "repeating an address",
    "invalid_utf8": "with text that is not UTF-8",
}
"""Row reasons in words (a reason ``check:column`` reads "failing check on column")."""


@dataclass(frozen=True)
class Verdict:
    kind: str
    """What decided: ``paid``, ``validator``, ``joined``, a gate code, ``copy_of``, ``copy_tie``,
    ``false_rows``, ``invalid_rows`` or ``no_assigned_rows``: a label value the metrics may use."""
    words: str

    @property
    def paid(self) -> bool:
        return self.kind == PAID


def verdict(result: Mapping[str, Any], params: ValidationParams | None = None, names: Mapping[str, str] | None = None) -> Verdict:
    """The verdict of one result document (``MinerResult.as_dict()`` as the results file and the state keep
    it). ``params``: the rules the result was judged by (the consensus defaults when None); ``names``: hotkey ->
    a name to say instead."""
    p = params or ValidationParams()
    names = names or {}
    if result.get("role") == VALIDATOR:
        return Verdict(VALIDATOR, "a validator: it validates, it does not mine (weight 0)")
    if result.get("joined"):
        return Verdict(JOINED, "registered after the epoch began: not expected to take part")
    if float(result.get("score") or 0) > 0:
        return Verdict(PAID, _paid(result))
    gate = result.get("gate")
    if gate:
        detail = printable(str(result.get("gate_detail") or ""))
        words = GATE_WORDS.get(gate, printable(str(gate)[:64]).replace("_", " "))
        return Verdict(gate, f"{words} ({detail})" if detail and detail != words else words)
    if result.get("copy"):
        kind, _, other = str(result["copy"]).partition(":")
        other = names.get(other, other)
        if kind == "copy_of":
            return Verdict(kind, f"copy of {other}'s upload, which landed first")
        return Verdict(kind, f"the same upload as {other} in the same second: nobody can tell who was first")
    if float(result.get("truth_factor", 1)) == 0:
        rate = float(result.get("estimated_fabrication") or 0)
        return Verdict(
            "false_rows",
            f"{_pct(rate)} of the rows false or unproven, more than the {_pct(p.fabrication_threshold)} allowed{_sample(result)}",
        )
    if float(result.get("quality", 1)) == 0:
        uploaded = int(result.get("rows_uploaded") or 0)
        invalid = uploaded - int(result.get("rows_valid") or 0)
        return Verdict(
            "invalid_rows",
            f"{invalid} of {uploaded} rows invalid, more than the {_pct(1 / p.invalid_penalty)} allowed{_most(result)}",
        )
    if float(result.get("completeness", 1)) == 0:
        return Verdict("no_assigned_rows", "no proven rows in the assigned zipcodes")
    return Verdict("score_0", "score 0")


def _paid(result: Mapping[str, Any]) -> str:
    parts = [f"{float(result.get('completeness') or 0):.0%} of the expected listings"]
    uploaded, valid = int(result.get("rows_uploaded") or 0), int(result.get("rows_valid") or 0)
    if valid < uploaded:
        parts.append(f"{uploaded - valid} of {uploaded} rows invalid")
    rate = float(result.get("estimated_fabrication") or 0)
    if rate > 0:
        parts.append(f"{_pct(rate)} false or unproven")
    size = int(result.get("sample_size") or 0)
    parts.append(
        f"{int(result.get('sample_confirmed') or 0)} of {size} refetched rows confirmed"
        if size
        else "every row matched the validator's snapshot"
    )
    return "paid: " + ", ".join(parts)


def _sample(result: Mapping[str, Any]) -> str:
    size = int(result.get("sample_size") or 0)
    if not size:
        return ""
    return f" ({int(result.get('sample_bad') or 0)} of {size} refetched rows false)"


def _most(result: Mapping[str, Any]) -> str:
    reasons = {k: int(v) for k, v in (result.get("reasons") or {}).items() if k != "fabrication_over_threshold"}
    if not reasons:
        return ""
    reason, count = max(reasons.items(), key=lambda kv: (kv[1], kv[0]))
    return f"; most: {count} {row_words(reason)}"


def printable(text: str) -> str:
    """``text`` with every control character (a terminal escape a miner's file could smuggle into a detail)
    shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


def row_words(reason: str) -> str:
    """A row reason in words."""
    if reason in ROW_WORDS:
        return ROW_WORDS[reason]
    check, _, column = printable(reason[:64]).partition(":")
    return f"failing {check.replace('_', ' ')} on {column}" if column else reason.replace("_", " ")


def _pct(share: float) -> str:
    """A share as a person reads it: whole percents, one decimal below 10% when it matters."""
    percent = share * 100
    if percent < 10 and round(percent, 1) != round(percent):
        return f"{percent:.1f}%"
    return f"{percent:.0f}%"


def stored_verdict(document: Mapping[str, Any], names: Mapping[str, str] | None = None) -> Verdict:
    """The verdict a validator stored with a result (``verdict``: kind and words, rendered by :func:`verdict`
    under the rules it judged by), hotkeys said as ``names``; rendered now under the default rules for a
    document from before verdicts were stored."""
    stored = document.get("verdict")
    if not isinstance(stored, Mapping) or not isinstance(stored.get("words"), str):
        return verdict(document, names=names)
    words = stored["words"]
    for hotkey, name in (names or {}).items():
        if hotkey and hotkey in words:
            words = words.replace(hotkey, name)
    return Verdict(str(stored.get("kind") or ""), words)
