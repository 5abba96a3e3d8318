"""The real homeharvest-based source against the local listing site, with and without faults."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from resi.localnet.site import Faults
from resi.localnet.world import ListingWorld, WorldConfig, decode_property_id, encode_property_id
from resi.scraping.normalize import normalize_realtor, realtor_facts
from resi.scraping.pipeline import Pipeline
from resi.scraping.realtor import RealtorSource
from resi.scraping.source import SourceRefused
from tests.kit import PYTHON, run
from tests.servers import SiteThread

ZIP = "19103"  # 620 listings at scale 0.3: four pages of 200


def _ids(records):
    return [r["property_id"] for r in records]


def test_search_returns_exactly_the_sites_listings_across_pages():
    with SiteThread(WorldConfig(seed="t1", scale=0.3)) as site:
        source = RealtorSource(site.url, max_rps=0)
        before = time.time()
        result = run(source.search(ZIP))
        after = time.time()
        truth = site.truth(ZIP)
    assert len(truth) == 620 and result.requests == 1 + 4  # location look-up + four pages
    assert _ids(result.records) == _ids(truth)
    skip = ("last_update_date", "_observed_at")
    for got, want in zip(result.records, truth):
        assert {k: v for k, v in got.items() if k not in skip} == {k: v for k, v in want.items() if k not in skip}
    stamps = sorted({r["_observed_at"] for r in result.records})  # one per page, when its answer arrived
    assert len(stamps) == 4 and before < stamps[0] < stamps[-1] < after


def test_normalized_rows_match_the_sites_values():
    with SiteThread(WorldConfig(seed="t1", scale=0.3)) as site:
        source = RealtorSource(site.url, max_rps=0)
        outcome = run(Pipeline(source).scrape_zipcode(ZIP))
        truth = site.truth(ZIP)
    assert outcome.ok and outcome.rows.num_rows == len(truth) == 620 and not outcome.drops
    by_id = {r["listing_id"]: r for r in outcome.rows.to_pylist()}
    for record in truth:
        row = by_id[record["property_id"]]
        expected = normalize_realtor(record, time_of(row))
        assert row == expected


def time_of(row):
    from resi.epochs import parse_iso

    return parse_iso(row["scraped_timestamp"])


def test_fetch_by_id_gives_the_listing_sold_or_not():
    config = WorldConfig(seed="t2", scale=0.1, churn=5000)
    with SiteThread(config) as site:
        source = RealtorSource(site.url, max_rps=0)
        current = site.truth("08540")[0]
        fetched = run(source.fetch(current["property_id"]))
        assert fetched["property_id"] == current["property_id"] and fetched["list_price"] == current["list_price"]
        zipcode, slot, gen = decode_property_id(current["property_id"])

        def predecessor(home: dict) -> dict | None:
            z, s, g = decode_property_id(home["property_id"])
            return run(source.fetch(encode_property_id(z, s, g - 1)))

        # about one listing in seven is withdrawn (off_market) instead of sold: which ones depends on the hour
        before = [predecessor(home) for home in site.truth("08540")[:20]]
        assert all(b is not None and b["status"] in ("sold", "off_market") for b in before), before
        old = next(b for b in before if b["status"] == "sold")
        assert old["last_sold_price"]
        assert run(source.fetch(encode_property_id(zipcode, slot, gen + 50))) is None
        for malformed in ("not-an-id", "123456789012", "1" * 300):  # the site refuses ids it cannot have issued
            with pytest.raises(SourceRefused):
                run(source.fetch(malformed))
        assert source.owns_url(current["href"]) and not source.owns_url("https://elsewhere.example/x")
        history = [e["event_name"] for e in reversed(old["property_history"])]
        assert history[0] == "Listed" and history[-1] == "Sold" and "Pending" in history


def test_withdrawn_and_sold_listings_stay_reachable_with_their_dates():
    config = WorldConfig(seed="t2", scale=0.1, churn=100)
    now = time.time()
    world = ListingWorld(config)
    ended = []
    for home in world.current("08540", now):
        zipcode, slot, gen = decode_property_id(home.property_id)
        ended += [world.home(encode_property_id(zipcode, slot, g), now) for g in range(gen - 2, gen)]
    withdrawn = [h for h in ended if h.status == "off_market"]
    sold = [h for h in ended if h.status == "sold"]
    assert withdrawn and sold and all(h.status in ("sold", "off_market") for h in ended)
    for h in withdrawn:
        assert (
            h.history[-1].name == "Listing Removed"
            and h.sold_date is None
            and h.last_status_change <= datetime.fromtimestamp(now, timezone.utc)
        )
    with SiteThread(config) as site:
        source = RealtorSource(site.url, max_rps=0)
        facts = realtor_facts(run(source.fetch(withdrawn[0].property_id)), datetime.now(timezone.utc))
        assert facts["status"] == "off_market" and facts["events"][-1][2:] == ["status", "off_market"]
        before = time.time()
        result = run(source.search_sold("08540", 3))
        after = time.time()
    got = {r["property_id"] for r in result.records}
    surely = {h.property_id for h in world.sold("08540", after - 3 * 86_400, before)}
    possibly = {h.property_id for h in world.sold("08540", before - 3 * 86_400, after)}
    assert surely and surely <= got <= possibly
    assert all(r["status"] == "sold" for r in result.records)


def test_world_is_deterministic_stable_and_drifts():
    a = ListingWorld(WorldConfig(seed="w", scale=0.2, churn=200))
    b = ListingWorld(WorldConfig(seed="w", scale=0.2, churn=200))
    now = time.time()
    first = {h.property_id: h for h in a.current("19103", now)}
    assert list(first.values()) == b.current("19103", now)  # any process computes the same world
    minutes = {h.property_id: h for h in a.current("19103", now + 120)}
    same = sum(p in minutes and minutes[p].price == h.price and minutes[p].static == h.static for p, h in first.items())
    assert same >= 0.98 * len(first)  # fetched twice within minutes, a listing agrees with itself
    later = {h.property_id: h for h in a.current("19103", now + 3600)}
    kept = set(first) & set(later)
    assert 0 < len(kept) < len(first)  # some listings replaced by new ones
    changed = sum(first[p].price != later[p].price or first[p].is_pending != later[p].is_pending for p in kept)
    assert changed > 0  # prices cut, listings went pending
    for p in kept:
        assert later[p].static == first[p].static and later[p].list_date == first[p].list_date  # same id, same home
        assert later[p].property_id == p


FAULTS = Faults(rate_limit=0.12, server_error=0.12, slow=0.05, malformed=0.08, truncated=0.12, slow_seconds=1.5, retry_after=0.2)


def test_pipeline_finishes_through_faults_without_duplicates_or_strangers():
    zipcodes = ["19103", "08540", "10001"]
    with SiteThread(WorldConfig(seed="t3", scale=0.3), FAULTS) as site:
        source = RealtorSource(site.url, max_rps=0, timeout=1.0, max_attempts=10, backoff_cap=0.3)
        outcomes = run(Pipeline(source, concurrency=1, zipcode_attempts=3, retry_pause=0.1).run(zipcodes, quiet=True))
        truth = {z: {r["property_id"] for r in site.truth(z)} for z in zipcodes}
        faults = Counter(e.get("fault") for e in site.state.log)
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        ids = outcome.rows["listing_id"].to_pylist()
        assert len(ids) == len(set(ids)) == len(truth[outcome.zipcode]) and set(ids) == truth[outcome.zipcode]
    for fault in ("rate_limit", "server_error", "slow", "malformed", "truncated"):
        assert faults[fault], f"no {fault} fault happened: {faults}"  # the faults really happened


def test_a_zipcode_that_keeps_failing_is_reported_not_raised():
    with SiteThread(WorldConfig(seed="t4", scale=0.1), Faults(server_error=1.0)) as site:
        source = RealtorSource(site.url, max_rps=0, max_attempts=2, backoff_cap=0.01)
        outcome = run(Pipeline(source, zipcode_attempts=2, retry_pause=0.01).scrape_zipcode("08540"))
    assert not outcome.ok and "failed after 2 attempts" in outcome.error and outcome.rows.num_rows == 0


def test_403_is_a_blocked_source():
    from aiohttp import web

    from tests.servers import free_port

    async def forbidden(request):
        return web.Response(status=403, text="blocked by WAF")

    async def go():
        app = web.Application()
        app.router.add_post("/frontdoor/graphql", forbidden)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            return await Pipeline(RealtorSource(f"http://127.0.0.1:{port}", max_rps=0)).scrape_zipcode("08540")
        finally:
            await runner.cleanup()

    outcome = run(go())
    assert not outcome.ok and "403" in outcome.error


def test_scraping_command_writes_both_files(tmp_path):
    with SiteThread(WorldConfig(seed="t5", scale=0.05)) as site:
        out = subprocess.run(
            [
                PYTHON,
                "-m",
                "resi.scraping",
                "--zipcodes",
                "19103,08540",
                "--out",
                str(tmp_path),
                "--source.url",
                site.url,
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        expected = len(site.truth("19103")) + len(site.truth("08540"))
    assert out.returncode == 0, out.stderr
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["rowCount"] == expected and set(meta["zipcodeCounts"]) == {"19103", "08540"}
    assert "19103" in out.stdout and (tmp_path / "listings.parquet").exists()


@pytest.mark.parametrize("bad", ["1910", "abcde", ""])
def test_scraping_command_refuses_bad_zipcodes(tmp_path, bad):
    out = subprocess.run(
        [PYTHON, "-m", "resi.scraping", "--zipcodes", bad, "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
