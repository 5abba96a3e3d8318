"""Watching a local network that ran an epoch: the Prometheus series of a validator, a miner and the API server
have plausible values, and the network's status page, loaded in headless Chromium, lists every miner with its
score and the reason of each zero, draws the EMA chart, and asks nothing of any machine but this one."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from resi.localnet.network import LocalNetwork, NetworkConfig
from tests.browser import Chromium, chromium_or_skip
from tests.e2e import db_rows, wait_for

pytestmark = pytest.mark.slow


def scrape(url: str) -> dict[str, list[tuple[dict, float]]]:
    """A /metrics page: sample name -> [(labels, value)]."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(series: dict, name: str, **labels) -> float:
    return sum(v for got, v in series.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


@pytest.fixture(scope="module")
def network(tmp_path_factory, local_s3):
    """Two honest miners, a fabricating one, a validator; up until the validator counted two epochs, one of them
    with an upload from every miner and its weights set."""
    net = LocalNetwork(
        NetworkConfig(run_dir=tmp_path_factory.mktemp("watched"), epoch_minutes=0.5, listings_scale=0.02, block_seconds=1),
        s3=local_s3,
    )
    try:
        net.start_infrastructure()
        honest = [net.register(f"miner{i}") for i in (1, 2)]
        cheat = net.register("cheat-fabricate")
        validator = net.register("validator1", validator=True)
        net.start_api()
        for p in honest:
            net.start_miner(p)
        net.start_cheater(cheat, "fabricate", victim=honest[0])
        net.start_validator(validator)
        net.serve_page()
        state = net.validator_dir(validator) / "state.db"
        miners = {p.uid: p for p in (*honest, cheat)}

        def judged_epoch():
            done = db_rows(state, "SELECT epoch_id, results, weights_set FROM epochs WHERE status='done'")
            for epoch_id, results, weights_set in done:
                by_uid = {r["uid"]: r for r in json.loads(results)}
                uploaded = cheat.uid in by_uid and by_uid[cheat.uid].get("gate") is None
                if len(done) >= 2 and weights_set and uploaded and all(by_uid.get(p.uid, {}).get("score", 0) > 0 for p in honest):
                    return epoch_id
            return None

        epoch_id = wait_for(judged_epoch, 300, interval=1, what="an epoch every miner uploaded to, validated")
        yield net, validator, honest, cheat, miners, epoch_id
    finally:
        net.stop()


def test_metrics_of_a_validator_a_miner_and_the_api_after_an_epoch(network):
    net, validator, honest, cheat, miners, _ = network
    v = scrape(validator.monitor_url)
    assert total(v, "resi_validator_epochs_validated_total") >= 1
    assert total(v, "resi_validator_epochs_seen_total") >= total(v, "resi_validator_epochs_validated_total") + total(
        v, "resi_validator_epochs_skipped_total"
    )
    scores = {int(labels["uid"]): value for labels, value in v["resi_validator_miner_score"]}
    assert set(miners) <= set(scores)  # a score per miner
    assert all(scores[p.uid] > 0 for p in honest) and scores[cheat.uid] == 0
    assert all(0 <= value <= 1 for value in scores.values())
    assert total(v, "resi_validator_weights_set_total") >= 1
    assert total(v, "resi_validator_downloaded_bytes_total") > 0
    assert total(v, "resi_validator_miner_validation_seconds_count") >= len(miners)
    assert total(v, "resi_validator_row_rejections_total", reason="not_found_at_source") > 0  # the fabricator's
    assert total(v, "resi_validator_published_rows_total") > 0  # validated listings written for publication
    assert total(v, "resi_validator_upload_failures_total") == 0

    m = scrape(honest[0].monitor_url)
    assert total(m, "resi_miner_rows_uploaded_total") > 0
    assert total(m, "resi_miner_rows_scraped_total") >= total(m, "resi_miner_rows_uploaded_total") > 0
    assert total(m, "resi_miner_zipcodes_total", outcome="ok") > 0
    assert total(m, "resi_miner_epochs_total", status="COMPLETED") >= 1
    assert total(m, "resi_miner_last_upload_timestamp_seconds") > 0

    api = scrape(net.api_monitor_url)
    assert total(api, "resi_api_requests_total", route="/api/v1/zipcode-assignments/current", status="200") > 0
    assert total(api, "resi_api_requests_total", route="/get-miner-specific-access", status="200") > 0
    assert total(api, "resi_api_request_duration_seconds_count") == total(api, "resi_api_requests_total")
    for p in net.participants:  # hotkeys are never label values
        assert all(p.signer.hotkey not in json.dumps(labels) for series in api.values() for labels, _ in series)

    for url in (validator.monitor_url, honest[0].monitor_url):
        with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"


ROWS = """JSON.stringify({
  rows: [...document.querySelectorAll('h2.validator ~ table tr.miner')].map(tr => ({
    uid: tr.dataset.uid, who: tr.children[1].textContent, score: tr.querySelector('td.score').textContent,
    ema: tr.querySelector('td.ema').textContent, weight: tr.querySelector('td.weight').textContent,
    reason: tr.querySelector('td.reason').textContent,
    upload: (tr.querySelector('td.upload') || {}).textContent})),
  lines: [...document.querySelectorAll('svg#ema-chart polyline.ema')].map(l => ({
    uid: l.dataset.uid, name: l.dataset.name, points: l.points.length, width: l.getBBox().width,
    style: l.getAttribute('stroke') + '|' + (l.getAttribute('stroke-dasharray') || '')})),
  legend: [...document.querySelectorAll('ul.legend li')].map(li => {
    const r = li.getBoundingClientRect();
    return {uid: li.dataset.uid, text: li.textContent, visible: r.width > 0 && r.right <= window.innerWidth}; }),
  chart: (() => { const r = document.querySelector('svg#ema-chart').getBoundingClientRect();
                  return [r.width, r.height]; })(),
  validators: (document.querySelector('p.not-mining.validator') || {}).textContent,
  folded: document.querySelectorAll('details.older').length,
  open: document.querySelectorAll('details.older[open]').length,
  published: (document.querySelector('p.published') || {}).textContent,
})"""


def test_the_network_page_in_chromium(network, tmp_path):
    """One row per miner (name, score, EMA, weight, the verdict in words, its own upload record), validators
    named apart and never in the miners' table, the chart's every line named in a legend that fits and drawn in
    a style of its own, older epochs folded."""
    binary = chromium_or_skip()
    net, validator, honest, cheat, miners, epoch_id = network
    with Chromium(tmp_path / "profile", binary) as browser:
        visit = browser.visit(net.page.url + "/", ROWS)
        own = browser.visit(validator.monitor_url + "/", ROWS.replace("h2.validator ~ ", ""))
    shot = tmp_path / "network-page.png"
    shot.write_bytes(visit.screenshot)
    assert visit.screenshot.startswith(b"\x89PNG\r\n\x1a\n") and shot.stat().st_size > 10_000

    page = json.loads(visit.value)
    rows = page["rows"]
    assert sorted(r["uid"] for r in rows) == sorted(str(uid) for uid in miners)  # once each, nobody else
    for p in miners.values():  # every miner, by name, with its score and verdict in words
        (mine,) = [r for r in rows if r["uid"] == str(p.uid)]
        assert mine["who"] == p.name, (p.name, rows)
        if p in honest:
            assert float(mine["score"]) > 0 and mine["reason"].startswith("paid: "), mine
        else:
            assert float(mine["score"]) == 0 and "false or unproven, more than the 5% allowed" in mine["reason"], mine
        assert float(mine["ema"]) >= 0 and float(mine["weight"]) >= 0
        assert mine["upload"].startswith("epoch ") and " zipcodes, " in mine["upload"], mine
    assert page["validators"] == f"validators (they validate; weight 0): {validator.name}"
    assert page["chart"][0] > 300 and page["chart"][1] > 100
    drawn = {line["uid"]: line for line in page["lines"]}
    assert set(drawn) == {str(uid) for uid in miners}  # a line per miner, none for the validator
    assert {line["name"] for line in drawn.values()} == {p.name for p in miners.values()}
    assert len({line["style"] for line in drawn.values()}) == len(drawn)  # each its own colour or dash
    assert any(line["points"] >= 2 and line["width"] > 0 for line in drawn.values())  # a line over epochs
    legend = {item["uid"]: item for item in page["legend"]}
    assert set(legend) == set(drawn) and all(item["visible"] for item in legend.values())
    assert all(miners[int(uid)].name in item["text"] for uid, item in legend.items())
    assert page["folded"] >= 1 and page["open"] == 0  # older epochs folded away

    own_page = json.loads(own.value)
    assert {str(uid) for uid in miners} <= {r["uid"] for r in own_page["rows"]}  # the validator's own page, too
    assert own_page["published"].startswith("validated listings: epoch ") and " listings in " in own_page["published"]

    for url in visit.requests + own.requests:  # nothing leaves the machine
        assert url.startswith(("http://127.0.0.1:", "data:", "about:")), url
    assert visit.requests and visit.requests[0].startswith(net.page.url)


def test_the_metrics_count_verdicts_as_the_results_file_says_them(network):
    """The validator's verdict series count the kinds of its last validated epoch's results file; the validator
    is counted as a validator, never as a miner's score."""
    net, validator, honest, cheat, miners, _ = network
    folder = net.validator_dir(validator) / "results"

    def latest() -> Counter:
        newest = sorted(folder.glob("*.json"))[-1]
        return Counter(m["verdict"]["kind"] for m in json.loads(newest.read_text())["miners"])

    def agree():  # the series change when an epoch is counted, its file is written a moment later: read again
        before = latest()
        series = scrape(validator.monitor_url)
        counted = {labels["verdict"]: value for labels, value in series["resi_validator_epoch_verdicts"]}
        same = latest() == before and counted == {kind: float(n) for kind, n in before.items()}
        return (series, counted) if same else None

    series, counted = wait_for(agree, 60, interval=0.5, what="the verdict series to match the newest results file")
    assert counted["validator"] == 1 and counted["paid"] == len(honest)
    scored = {int(labels["uid"]) for labels, _ in series["resi_validator_miner_score"]}
    assert validator.uid not in scored and set(miners) <= scored
