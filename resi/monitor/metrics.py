"""The Prometheus series of each process, one class per role, each on a registry of its own (several
neurons can live in one test process). Names follow Prometheus' conventions: the unit in the name,
``_total`` on counters (added by ``prometheus_client``), and label values only from sets the code bounds:
reason names the code defines, uids (at most a subnet's size), routes of the server's own table, never a
hotkey or a path a stranger sent."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from resi.validation.verdict import NOT_MINING, stored_verdict

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}(:[a-z][a-z0-9_]{0,31})?")
"""A reason name of the code's: ``stale``, or a check and the schema column it concerns, ``mismatch:price``."""
MAX_LABEL_VALUES = 64
"""Distinct values a reason label takes before new ones are counted as ``other``."""


class LabelBound:
    """A label value that is a reason name of the code's (lower_snake, short), at most ``limit`` distinct
    ones; anything else, or past the limit, is ``other``: a series count no input can grow."""

    def __init__(self, limit: int = MAX_LABEL_VALUES):
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value or not _NAME.fullmatch(value):
            return "other"
        if value not in self.seen:
            if len(self.seen) >= self.limit:
                return "other"
            self.seen.add(value)
        return value


SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class MinerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.epochs = Counter("resi_miner_epochs", "Epochs worked to a reported status, by status", ["status"], registry=r)
        self.zipcodes = Counter(
            "resi_miner_zipcodes", "Zipcode scrapes finished, by outcome (ok, failed)", ["outcome"], registry=r
        )
        self.rows_scraped = Counter("resi_miner_rows_scraped", "Listing rows kept from the source's answers", registry=r)
        self.rows_uploaded = Counter("resi_miner_rows_uploaded", "Listing rows uploaded to S3", registry=r)
        self.uploaded_bytes = Counter(
            "resi_miner_uploaded_bytes", "Bytes of listings.parquet and metadata.json uploaded", registry=r
        )
        self.upload_retries = Counter("resi_miner_upload_retries", "Upload attempts that failed and were retried", registry=r)
        self.source_errors = Counter(
            "resi_miner_source_errors",
            "Zipcode scrapes the source failed, by kind (blocked, refused, unavailable)",
            ["kind"],
            registry=r,
        )
        self.last_upload = Gauge(
            "resi_miner_last_upload_timestamp_seconds", "When the last upload succeeded (Unix time)", registry=r
        )


class ValidatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.epochs_seen = Counter("resi_validator_epochs_seen", "Ended epochs this validator looked at", registry=r)
        self.epochs_validated = Counter("resi_validator_epochs_validated", "Epochs validated and counted in the EMA", registry=r)
        self.epochs_skipped = Counter(
            "resi_validator_epochs_skipped", "Epochs skipped (too old, no assignment, attempts used up)", registry=r
        )
        self.miner_seconds = Histogram(
            "resi_validator_miner_validation_seconds",
            "Seconds to judge one miner's upload (gates, rows, truth check, sample)",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.downloaded_bytes = Counter("resi_validator_downloaded_bytes", "Bytes of miners' files downloaded", registry=r)
        self.scores = Histogram(
            "resi_validator_epoch_scores", "Epoch scores of the miners judged", buckets=SCORE_BUCKETS, registry=r
        )
        self.miner_score = Gauge(
            "resi_validator_miner_score", "Each uid's score in the last validated epoch", ["uid"], registry=r
        )
        self.miner_ema = Gauge("resi_validator_miner_ema", "Each uid's EMA after the last validated epoch", ["uid"], registry=r)
        self.gate_rejections = Counter(
            "resi_validator_gate_rejections", "Uploads refused at a gate, by reason", ["reason"], registry=r
        )
        self.row_rejections = Counter("resi_validator_row_rejections", "Rows not counted, by reason", ["reason"], registry=r)
        self.weights_set = Counter("resi_validator_weights_set", "Weight submissions the chain took", registry=r)
        self.weights_failures = Counter(
            "resi_validator_weights_failures", "Weight submissions that failed, by kind (refused, error)", ["kind"], registry=r
        )
        self.last_validated = Gauge(
            "resi_validator_last_validated_timestamp_seconds", "When an epoch was last validated (Unix time)", registry=r
        )
        self.published_rows = Counter(
            "resi_validator_published_rows",
            "Validated listings written for publication (one row per proven listing per epoch)",
            registry=r,
        )
        self.upload_failures = Counter(
            "resi_validator_upload_failures",
            "Epochs whose results or validated listings could not be written or uploaded (S3 or the API: retried)",
            registry=r,
        )
        self.verdicts = Gauge(
            "resi_validator_epoch_verdicts",
            "Uids of the last validated epoch by verdict (paid, "
            "validator, joined, a gate, copy_of, false_rows, invalid_rows...; "
            "resi.validation.verdict)",
            ["verdict"],
            registry=r,
        )
        self._gate = LabelBound()
        self._row = LabelBound()
        self._verdict = LabelBound()

    def judged(self, documents: list[dict], ema: dict[int, tuple[str, float]]) -> None:
        """An epoch's final result documents (copies applied, each with its stored ``verdict``) and the EMA they
        produced. Validators, and uids that registered after the epoch began, are not miners: they are counted
        by their verdict only, never as scores or rejections."""
        self.miner_score.clear()
        self.miner_ema.clear()
        self.verdicts.clear()
        kinds: dict[str, int] = {}
        for document in documents:
            kind = stored_verdict(document).kind
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind in NOT_MINING:
                continue
            score = float(document.get("score") or 0)
            self.scores.observe(score)
            self.miner_score.labels(str(document["uid"])).set(score)
            ema_value = ema.get(int(document["uid"]))
            if ema_value is not None:
                self.miner_ema.labels(str(document["uid"])).set(ema_value[1])
            if document.get("gate"):
                self.gate_rejections.labels(self._gate(document["gate"])).inc()
            else:
                for reason, count in (document.get("reasons") or {}).items():
                    self.row_rejections.labels(self._row(reason)).inc(count)
        for kind, count in kinds.items():
            self.verdicts.labels(self._verdict(kind)).set(count)
        self.epochs_validated.inc()
        self.last_validated.set_to_current_time()


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.requests = Counter("resi_api_requests", "Requests answered, by route and status", ["route", "status"], registry=r)
        self.latency = Histogram(
            "resi_api_request_duration_seconds",
            "Seconds from request to response, by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.signature_failures = Counter(
            "resi_api_signature_failures", "Signed requests refused for their signature", registry=r
        )
        self.rate_limited = Counter(
            "resi_api_rate_limited",
            "Requests refused by a rate limit, by the limit's name (assignment, status, ...)",
            ["limit"],
            registry=r,
        )
