"""Monitoring pieces on their own: bounded labels, the metrics of an epoch's results, the endpoint over real HTTP
(/metrics, /healthz turning 503 on a stall, pages that fail without taking the server down), the watchdog's
exit, the status page's escaping of what miners control, and the API server's series after signed, forged and
rate-limited requests."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from resi.api import signing
from resi.chain.keys import create_wallet
from resi.chain.store import SimulatedChainStore
from resi.monitor.metrics import MAX_LABEL_VALUES, LabelBound, ValidatorMetrics
from resi.monitor.server import MonitorServer
from resi.monitor.watchdog import STALLED_EXIT, Heartbeat, Watchdog
from resi.pages import upload_record, validator_section
from resi.processes import free_port
from resi.status import miner_report, validator_report
from resi.validation.evaluate import MinerResult
from resi.validator.state import ValidatorState
from tests.e2e import wait_for
from tests.kit import FakeClock
from tests.servers import ApiServer


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_label_values_are_the_codes_names_and_bounded():
    bound = LabelBound(limit=3)
    assert bound("stale") == "stale" and bound("mismatch:price") == "mismatch:price"
    # what a stranger could choose is never a label value
    for hostile in (
        "5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX",
        "x" * 100,
        "a b",
        "<script>",
        "",
        None,
        "Mismatch:price",
        "range:price:extra",
    ):
        assert bound(hostile) == "other"
    assert bound("one_more") == "one_more"
    assert bound("past_the_limit") == "other" and bound("stale") == "stale"  # seen ones still count as themselves
    assert LabelBound().limit == MAX_LABEL_VALUES


def test_an_epochs_results_become_scores_emas_and_reasons():
    m = ValidatorMetrics()
    results = [
        MinerResult(0, "hk0", score=0.9, reasons={"mismatch:price": 3}),
        MinerResult(1, "hk1", score=0.0, gate="no_upload", reasons={"no_upload": 1}),
        MinerResult(2, "hk2", score=0.0, reasons={"not_found_at_source": 40, "5Fhostile key": 2}),
        MinerResult(3, "vali", score=0.0, gate="no_upload", reasons={"no_upload": 1}, role="validator"),
        MinerResult(4, "new", score=0.0, gate="no_upload", reasons={"no_upload": 1}, joined=True),
    ]
    m.judged([r.as_dict() for r in results], {0: ("hk0", 0.5), 1: ("hk1", 0.0), 2: ("hk2", 0.1), 3: ("vali", 0.0)})
    value = m.registry.get_sample_value
    assert value("resi_validator_epochs_validated_total") == 1
    assert value("resi_validator_miner_score", {"uid": "0"}) == 0.9
    assert value("resi_validator_miner_ema", {"uid": "2"}) == 0.1
    assert value("resi_validator_gate_rejections_total", {"reason": "no_upload"}) == 1  # hk1 only
    assert value("resi_validator_row_rejections_total", {"reason": "mismatch:price"}) == 3
    assert value("resi_validator_row_rejections_total", {"reason": "other"}) == 2
    assert value("resi_validator_epoch_scores_count") == 3
    # a validator and a uid that registered during the epoch are no failing miners: counted by verdict only
    for uid in ("3", "4"):
        assert value("resi_validator_miner_score", {"uid": uid}) is None
        assert value("resi_validator_miner_ema", {"uid": uid}) is None
    assert {
        k: value("resi_validator_epoch_verdicts", {"verdict": k})
        for k in ("paid", "no_upload", "false_rows", "validator", "joined")
    } == {"paid": 1, "no_upload": 1, "false_rows": 1, "validator": 1, "joined": 1}
    # the next epoch replaces the per-uid gauges: a uid gone from the subnet leaves no stale series
    m.judged([MinerResult(0, "hk0", score=1.0).as_dict()], {0: ("hk0", 0.75)})
    assert value("resi_validator_miner_score", {"uid": "2"}) is None
    assert value("resi_validator_miner_ema", {"uid": "0"}) == 0.75
    assert value("resi_validator_epoch_verdicts", {"verdict": "validator"}) is None


def test_the_endpoint_serves_metrics_health_and_survives_a_failing_page():
    clock = FakeClock(1000.0)
    heartbeat = Heartbeat(clock)
    watchdog = Watchdog(heartbeat, stall_seconds=60, exit_seconds=0)
    metrics = ValidatorMetrics()
    metrics.epochs_seen.inc()

    def broken() -> str:
        raise RuntimeError("a page that fails")

    server = MonitorServer(
        "127.0.0.1", 0, metrics.registry, watchdog.health, {"/": lambda: "<p>hello</p>", "/broken": broken}
    ).start()
    try:
        status, kind, body = get(server.url + "/metrics")
        assert status == 200 and kind.startswith("text/plain")
        assert samples(body)[("resi_validator_epochs_seen_total", ())] == 1
        status, _, body = get(server.url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        clock.advance(61)
        status, _, body = get(server.url + "/healthz")
        assert status == 503 and json.loads(body)["status"] == "stalled" and json.loads(body)["idle_seconds"] >= 61
        heartbeat.beat("judged uid 3")
        status, _, body = get(server.url + "/healthz")
        assert status == 200 and json.loads(body)["last_progress"] == "judged uid 3"
        assert get(server.url + "/broken")[0] == 500
        assert get(server.url + "/?a=1")[:2] == (200, "text/html; charset=utf-8")
        assert get(server.url + "/nothing-here")[0] == 404
    finally:
        server.stop()


def test_the_watchdog_ends_the_process_only_after_the_exit_limit():
    clock = FakeClock(1000.0)
    heartbeat = Heartbeat(clock)
    codes: list[int] = []
    Watchdog(heartbeat, stall_seconds=5, exit_seconds=30, on_stall=codes.append, interval=0.01).start()
    clock.advance(20)
    time.sleep(0.2)
    assert codes == []  # stalled (503) but not yet past the exit limit
    clock.advance(11)
    wait_for(lambda: codes, 5, interval=0.01, what="the watchdog to act")
    assert codes == [STALLED_EXIT]


def test_the_status_page_escapes_what_miners_and_the_chain_control(tmp_path):
    state = ValidatorState(tmp_path / "state.db")
    state.begin("2026-03-02T16-00-00", 10, "0xab", [(0, "<b>hk0</b>"), (1, "hk1")])
    results = [
        {
            "uid": 0,
            "hotkey": "<b>hk0</b>",
            "score": 0.0,
            "gate": "metadata_unreadable",
            "gate_detail": "<script>alert(1)</script>",
            "ema": 0.0,
            "weight": 0.0,
        },
        {
            "uid": 1,
            "hotkey": "hk1",
            "score": 0.8,
            "completeness": 0.9,
            "quality": 1.0,
            "truth_factor": 0.9,
            "ema": 0.4,
            "weight": 1.0,
        },
    ]
    state.commit("2026-03-02T16-00-00", results, {0: ("<b>hk0</b>", 0.0), 1: ("hk1", 0.4)}, ([1], [1.0]))
    state.close()
    html = validator_section(tmp_path / "state.db")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "metadata unreadable" in html
    assert html.count("<tr class='miner") == 2 and "<polyline" in html


@pytest.mark.slow
def test_the_api_server_counts_routes_signatures_and_rate_limits(tmp_path, local_s3):
    chain = SimulatedChainStore(tmp_path / "chain.db", create=True)
    miner = create_wallet(tmp_path / "w", "miner")
    stranger = create_wallet(tmp_path / "w", "stranger")
    chain.register(miner.hotkey, miner.coldkey, stake=1)
    port = free_port()
    server = ApiServer(
        tmp_path, tmp_path / "chain.db", local_s3, "--metrics.port", str(port), "--rate-limits", "assignment=3/60"
    ).start()
    try:
        url = server.url + "/api/v1/zipcode-assignments/current"

        def query(signer, sig=None):
            ts = int(time.time())
            return {
                "hotkey": signer.hotkey,
                "timestamp": str(ts),
                "signature": sig or signing.sign_commitment(signer, signing.assignment_current(ts)),
            }

        def call(params=None, path=url):
            query_string = "?" + urllib.parse.urlencode(params) if params else ""
            return get(path + query_string)[0]

        statuses = [call(query(miner))]
        time.sleep(1.1)  # a new second: a new commitment, not a replay
        statuses.append(call(query(miner, sig="ab" * 64)))  # forged in the miner's name
        statuses.append(call(query(stranger)))  # well signed, not registered
        statuses.append(call())  # unsigned
        statuses.append(call(path=server.url + "/" + stranger.hotkey))  # a path no route has
        assert statuses == [200, 401, 401, 400, 404]
        for _ in range(3):  # the limit is 3 a minute here: one was used, forged requests cost nothing
            time.sleep(1.05)
            statuses.append(call(query(miner)))
        assert statuses[5:] == [200, 200, 429], statuses
        text = get(f"http://127.0.0.1:{port}/metrics")[2]
        found = samples(text)
        route = "/api/v1/zipcode-assignments/current"
        assert found[("resi_api_requests_total", (("route", route), ("status", "200")))] == statuses.count(200)
        assert found[("resi_api_requests_total", (("route", route), ("status", "401")))] == 2
        assert found[("resi_api_requests_total", (("route", route), ("status", "429")))] == statuses.count(429)
        assert found[("resi_api_requests_total", (("route", "other"), ("status", "404")))] == 1
        assert found[("resi_api_signature_failures_total", ())] == 1
        assert found[("resi_api_rate_limited_total", (("limit", "assignment"),))] == statuses.count(429)
        assert found[("resi_api_request_duration_seconds_count", (("route", route),))] == 7
        assert stranger.hotkey not in text and miner.hotkey not in text
    finally:
        server.stop()


def test_readers_beside_a_neuron_never_write_its_files(tmp_path):
    """The status pages and ``status`` read the neuron's SQLite files read-only: a file whose tables are not made
    yet reads as 'nothing yet' and stays as it was; a write through a reader fails."""
    empty, checkpoint = tmp_path / "state.db", tmp_path / "checkpoint.db"
    for path in (empty, checkpoint):
        sqlite3.connect(path).close()
    assert "no epoch validated yet" in validator_section(empty)
    assert upload_record(checkpoint) == "no epoch yet"
    assert miner_report(tmp_path, "hk", {}, 3)["epochs"] == [] and validator_report(tmp_path, "hk", {}, 3)["epochs"] == []
    for path in (empty, checkpoint):
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    reader = ValidatorState(empty, readonly=True)
    with pytest.raises(sqlite3.OperationalError):
        reader.skip("2026-03-02T16-00-00", "a write")
    reader.close()
