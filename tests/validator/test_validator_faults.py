"""An outage is never a miner's fault: S3 cut for a minute, the API server killed and restarted, the listing
source down, the results-upload limit used up. A local network of real processes (30-second epochs); S3
sits behind a TCP proxy that the test cuts, the API is SIGKILLed and started again on its port."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

import pytest

from resi.clock import SystemClock
from resi.epochs import epoch_from_id
from resi.localnet.network import LocalNetwork, NetworkConfig
from resi.localnet.world import WorldConfig
from resi.scraping.realtor import RealtorSource
from resi.validation.truth import REFUSED, UNANSWERED, Snapshot
from resi.validator.refetch import Refetcher
from resi.validator.state import ValidatorState
from tests.e2e import db_rows, final_status, statuses, wait_for
from tests.kit import run
from tests.servers import SiteThread, TcpProxy

pytestmark = pytest.mark.slow

EPOCH = timedelta(seconds=30)


def done_epochs(net, validator) -> dict[str, dict]:
    rows = db_rows(
        net.validator_dir(validator) / "state.db", "SELECT epoch_id, results, finished_at FROM epochs WHERE status='done'"
    )
    return {e: {"miners": json.loads(r), "finished_at": f} for e, r, f in rows}


def uploaded_by_all(net, miners, epoch_id: str) -> bool:
    return all((s := final_status(net.run_dir, m.signer.hotkey, epoch_id)) and s["uploaded"] for m in miners)


def next_epoch_all_uploaded(net, miners, after: float, timeout: float) -> str:
    """The first epoch starting after ``after`` (unix time) for which every miner reported its upload."""

    def ready():
        for s in reversed(statuses(net.run_dir)):
            start = epoch_from_id(s["epoch_id"], EPOCH).start.timestamp()
            if start >= after and uploaded_by_all(net, miners, s["epoch_id"]):
                return s["epoch_id"]
        return None

    return wait_for(ready, timeout, interval=0.2, what="an epoch uploaded by every miner")


def until(moment: float, what: str) -> None:
    """Wait until unix time ``moment`` (a condition on the clock, whatever the machine's speed)."""
    wait_for(lambda: time.time() > moment, max(0.0, moment - time.time()) + 10, what=what)


def honest_scores(record: dict, miners) -> list[float]:
    by_hotkey = {m["hotkey"]: m for m in record["miners"]}
    return [by_hotkey[m.signer.hotkey]["score"] for m in miners]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, local_s3):
    proxy = TcpProxy(int(local_s3.endpoint.rsplit(":", 1)[1]))
    net = LocalNetwork(
        NetworkConfig(
            run_dir=tmp_path_factory.mktemp("faults"),
            epoch_minutes=0.5,
            listings_scale=0.02,
            block_seconds=1,
            api_args=["--s3-endpoint", f"http://127.0.0.1:{proxy.port}", "--rate-limits", "validator_upload=1/3600"],
        ),
        s3=local_s3,
    )
    try:
        net.start_infrastructure()
        miners = [net.register(f"m{i}") for i in range(2)]
        validator = net.register("v", validator=True)
        net.start_api()
        for m in miners:
            net.start_miner(m)
        net.start_validator(validator, "--validator.max_lag", "240")
        net.proxy, net.miners, net.validator = proxy, miners, validator
        yield net
    finally:
        net.stop()
        proxy.close()


def test_s3_down_for_a_minute_then_the_epoch_is_validated_as_usual(faulty):
    net = faulty
    epoch_id = next_epoch_all_uploaded(net, net.miners, time.time() - EPOCH.total_seconds(), 120)
    net.proxy.up = False  # S3 is gone before the validator gets to the epoch
    down_at = time.monotonic()
    deadline = epoch_from_id(epoch_id, EPOCH).end.timestamp()
    until(deadline + 15, "the validator to try while S3 is down")
    assert epoch_id not in done_epochs(net, net.validator)  # nothing judged on the outage
    wait_for(lambda: time.monotonic() - down_at >= 60, 70, what="a minute of outage")
    net.proxy.up = True
    record = wait_for(lambda: done_epochs(net, net.validator).get(epoch_id), 120, what="the epoch validated")
    assert all(score > 0.9 for score in honest_scores(record, net.miners)), record
    assert not any(m["gate"] in ("download_failed", "download_timeout") for m in record["miners"]), record
    log = net.validator.process.log_tail(2000)
    assert "S3 or the API is unreachable" in log and "Traceback" not in log


def test_the_api_killed_and_restarted_then_the_epoch_is_validated_as_usual(faulty):
    net = faulty
    epoch_id = next_epoch_all_uploaded(net, net.miners, time.time(), 180)
    net.api.kill()
    deadline = epoch_from_id(epoch_id, EPOCH).end.timestamp()
    until(deadline + 15, "the validator to try while the API is down")
    assert epoch_id not in done_epochs(net, net.validator)
    net.api.start()
    record = wait_for(lambda: done_epochs(net, net.validator).get(epoch_id), 120, what="the epoch validated")
    assert all(score > 0.9 for score in honest_scores(record, net.miners)), record


def test_a_used_up_results_upload_limit_does_not_delay_the_next_epoch(faulty):
    net = faulty
    epoch_id = next_epoch_all_uploaded(net, net.miners, time.time(), 120)  # the limit was used up long before
    record = wait_for(lambda: done_epochs(net, net.validator).get(epoch_id), 120, what="the next epoch validated")
    lateness = record["finished_at"] - epoch_from_id(epoch_id, EPOCH).end.timestamp()
    assert lateness < 30, lateness  # the validator's grace is 5 s; judging two miners takes a few more
    log = net.validator.process.log_tail(3000)
    assert "results upload waits for the API's limit" in log


def test_the_source_down_during_validation_delays_the_epoch_not_the_miners(faulty):
    net = faulty

    def site_faults(**values):
        request = urllib.request.Request(net.site_url + "/_admin/faults", data=json.dumps(values).encode(), method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    epoch_id = next_epoch_all_uploaded(net, net.miners, time.time(), 120)
    site_faults(server_error=1.0)  # every request to the listing site fails: no snapshot can be taken
    try:
        deadline = epoch_from_id(epoch_id, EPOCH).end.timestamp()
        until(deadline + 20, "the validator to try while the source is down")
        assert epoch_id not in done_epochs(net, net.validator)
    finally:
        site_faults(server_error=0.0)
    record = wait_for(lambda: done_epochs(net, net.validator).get(epoch_id), 150, what="the epoch validated")
    assert all(score > 0.9 for score in honest_scores(record, net.miners)), record


# --- refetches: the source refusing a row is not the source being down -------------------------------------------


def test_a_refused_refetch_is_the_rows_a_failing_source_is_unanswered(tmp_path):
    with SiteThread(WorldConfig(seed="rf", scale=0.1)) as site:
        known = site.truth("08540")[0]["property_id"]
        snapshot = Snapshot({known: {}}, {})
        source = RealtorSource(site.url, max_rps=0, max_attempts=2, backoff_cap=0.05)
        state = ValidatorState(tmp_path / "s.db")
        refetch = Refetcher(source, state, "E", snapshot, 4, SystemClock())
        ids = [known, "123456789012", "1" + "9" * 16]  # exists; the site refuses; well formed, never issued
        answers = run(refetch(ids))
        assert answers[known]["listing_id"] == known and answers[ids[1]] == REFUSED and answers[ids[2]] is None
        site.state.faults.detail_error = 1.0  # look-ups by id fail, the known listing's too: the source is down
        down = run(refetch([known, "1" + "8" * 16]))
        assert down["1" + "8" * 16] == UNANSWERED and down[known]["listing_id"] == known  # cached answer kept
        assert "1" + "8" * 16 not in Refetcher(source, state, "E", snapshot, 4, SystemClock()).answers  # not kept
        site.state.faults.detail_error = 0.0
        back = run(refetch(["1" + "8" * 16]))
        assert back["1" + "8" * 16] is None  # asked again once the source answers
        assert Refetcher(source, state, "E", snapshot, 4, SystemClock()).answers == refetch.answers  # kept
