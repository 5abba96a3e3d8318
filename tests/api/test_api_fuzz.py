"""Schemathesis against the reference server's own OpenAPI document: whatever it sends, never a 500.

Schemathesis' pytest plugin does not run under this pytest, so the cases come from its Hypothesis
strategies (valid and invalid requests for every operation) in a plain test, bounded by ``max_examples``.
Half the runs re-sign each generated request with a registered validator's key, so that generated data
gets past authentication into the handlers.
"""

from __future__ import annotations

import itertools
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from resi.api import signing
from tests.servers import ApiNet

pytestmark = pytest.mark.slow

_counter = itertools.count()


@pytest.fixture(scope="module")
def fuzz_net(tmp_path_factory, local_s3):
    n = ApiNet(
        tmp_path_factory.mktemp("fuzz"),
        local_s3,
        "--rate-limits",
        "status=100000/60,folder_access=100000/60,validator_upload=100000/60,validator_access=100000/60,"
        "assignment=100000/60,epoch_assignment=100000/60,miner_access=100000/60,stats=100000/60",
    )
    yield n
    n.server.stop()


def _commitment(path: str, fields: dict, ts: int, hotkey: str) -> str | None:
    text = lambda key: str(fields.get(key, ""))  # noqa: E731
    if path.endswith("/current"):
        return signing.assignment_current(ts)
    if path.endswith("/status"):
        return signing.miner_status(hotkey, text("epochId"), ts)
    if path == "/get-folder-access":
        return signing.miner_s3_access(text("coldkey"), hotkey, ts)
    if path.endswith("/validator-upload"):
        return signing.validator_upload(ts)
    if path == "/get-validator-access":
        return signing.validator_access(ts)
    if path == "/get-miner-specific-access":
        return signing.validator_miner_access(text("miner_hotkey"), ts)
    if "/epoch/" in path:
        return signing.epoch_assignment(path.rsplit("/", 1)[-1], ts)
    return None


def sign(case, signer) -> None:
    """Replace the generated hotkey, timestamp and signature with a valid signed set."""
    ts = int(time.time()) - 250 + next(_counter) % 500
    fields = case.body if isinstance(case.body, dict) else case.query if isinstance(case.query, dict) else None
    if fields is None:
        return
    commitment = _commitment(case.formatted_path, fields, ts, signer.hotkey)
    if commitment is not None:
        fields.update(hotkey=signer.hotkey, timestamp=ts, signature=signing.sign_commitment(signer, commitment))


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gives_a_server_error(fuzz_net, mode, signed):
    schema = schemathesis.openapi.from_url(fuzz_net.server.url + "/docs-json")
    statuses: dict[int, int] = {}

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        if signed:
            sign(case, fuzz_net.validators[0])
        response = case.call(base_url=fuzz_net.server.url, timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        if response.status_code >= 400:
            body = response.json()
            assert body["statusCode"] == response.status_code and body["message"]

    check()
    assert sum(statuses.values()) >= 100, statuses
    if signed and mode == GenerationMode.POSITIVE:
        assert statuses.get(200, 0) >= 20, statuses  # generated requests got through to the handlers
