"""Consensus constants of subnet 46: one place for each.

Everything here must be identical on every miner, validator and the API server; operator
settings (ports, folders, concurrency) are flags instead, declared next to the code that uses them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from resi import __version__

# --- Network -------------------------------------------------------------------------------------------
NETUID: Final = 46
"""Subnet 46 on finney (mainnet)."""

TESTNET_NETUID: Final = 428
"""The same subnet on the bittensor testnet (``--subtensor.network test --netuid 428``)."""

DEFAULT_API_URL: Final = "https://api.resilabs.com"

# --- Epochs --------------------------------------------------------------------------------------------
EPOCH_LENGTH: Final = timedelta(hours=4)
"""Epochs are aligned to UTC: 00, 04, 08, 12, 16, 20. Local networks shorten them with a flag."""

EPOCH_ID_FORMAT: Final = "%Y-%m-%dT%H-%M-%S"
"""Epoch ids look like ``2025-10-01T16-00-00`` (the start of the epoch, UTC)."""

TIMESTAMP_MIN: Final = 1_600_000_000
TIMESTAMP_MAX: Final = 2_147_483_647
TIMESTAMP_TOLERANCE_S: Final = 300
"""A signed request's timestamp must be within this many seconds of server time, both directions."""

# --- Commitments (what a hotkey signs; sr25519 over the UTF-8 bytes) -------------------------------------
COMMIT_ASSIGNMENT_CURRENT: Final = "zipcode:assignment:current:{timestamp}"
COMMIT_MINER_STATUS: Final = "miner:status:{hotkey}:{epoch_id}:{timestamp}"
COMMIT_MINER_S3_ACCESS: Final = "s3:data:access:{coldkey}:{hotkey}:{timestamp}"
COMMIT_VALIDATOR_UPLOAD: Final = "s3:validator:upload:{timestamp}"
COMMIT_VALIDATOR_ACCESS: Final = "s3:validator:access:{timestamp}"
COMMIT_VALIDATOR_MINER_ACCESS: Final = "s3:validator:miner:{miner_hotkey}:{timestamp}"
COMMIT_EPOCH_ASSIGNMENT: Final = "zipcode:validation:{epoch_id}:{timestamp}"

# --- Miner statuses ----------------------------------------------------------------------------------------
STATUS_IN_PROGRESS: Final = "IN_PROGRESS"
STATUS_COMPLETED: Final = "COMPLETED"
STATUS_FAILED: Final = "FAILED"
STATUS_TIMEOUT: Final = "TIMEOUT"
MINER_STATUSES: Final = (STATUS_IN_PROGRESS, STATUS_COMPLETED, STATUS_FAILED, STATUS_TIMEOUT)

# --- Object storage layout -----------------------------------------------------------------------------------
MINER_PREFIX: Final = "data/hotkey={hotkey}/"
MINER_EPOCH_PREFIX: Final = "data/hotkey={hotkey}/epoch={epoch_id}/"
LISTINGS_FILE: Final = "listings.parquet"
METADATA_FILE: Final = "metadata.json"
VALIDATOR_PREFIX: Final = "validators/{hotkey}/"
VALIDATOR_EPOCH_PREFIX: Final = "validators/{hotkey}/{epoch_id}/"
VALIDATION_RESULTS_FILE: Final = "validation_results.json"

# --- Listing data ----------------------------------------------------------------------------------------------
SCHEMA_VERSION: Final = "1.0"
"""Version of the listing schema in ``resi/listings/schema.py``; written into every metadata.json."""

MAX_UPLOAD_BYTES: Final = 100 * 1024 * 1024
"""Upper bound of the presigned POST's content-length-range (the spec's ``maxFileSize: 100MB``)."""

# --- Assignment defaults (the live service's documented configuration) -----------------------------------------
TARGET_LISTINGS: Final = 10_000
TOLERANCE_PERCENT: Final = 10
MIN_ZIPCODE_LISTINGS: Final = 200
MAX_ZIPCODE_LISTINGS: Final = 3_000
ZIPCODE_COOLDOWN: Final = timedelta(hours=24)


# --- Weights -----------------------------------------------------------------------------------------------------
def weights_version_key(version: str) -> int:
    """The version key of a package version, as opentensor's subnet template makes it:
    ``1000 * major + 10 * minor + patch`` (``1.2.3`` -> 1023)."""
    major, minor, patch = (int(part) for part in (version.split("+")[0].split(".") + ["0", "0"])[:3])
    return 1000 * major + 10 * minor + patch


WEIGHTS_VERSION_KEY: Final = weights_version_key(__version__)
"""Sent with every weight vector; the subnet owner raises ``WeightsVersionKey`` on chain to refuse the
weights of validators older than a release that changed scoring."""


def miner_prefix(hotkey: str) -> str:
    """``data/hotkey={hotkey}/``: everything a miner may write."""
    return MINER_PREFIX.format(hotkey=hotkey)


def miner_epoch_prefix(hotkey: str, epoch_id: str) -> str:
    """``data/hotkey={hotkey}/epoch={epoch_id}/``: one epoch's upload of one miner."""
    return MINER_EPOCH_PREFIX.format(hotkey=hotkey, epoch_id=epoch_id)


def validator_epoch_prefix(hotkey: str, epoch_id: str) -> str:
    """``validators/{hotkey}/{epoch_id}/``: where a validator's results for an epoch go."""
    return VALIDATOR_EPOCH_PREFIX.format(hotkey=hotkey, epoch_id=epoch_id)


NETWORKS = ("finney", "test", "local", "archive")
"""The chain names bittensor knows (any other chain is given as a ``ws://`` or ``wss://`` endpoint)."""
MAX_CLOCK_SKEW_SECONDS = 60.0
"""A neuron whose clock is further off the API's than this refuses to start: epoch deadlines are absolute."""
