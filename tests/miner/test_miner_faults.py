"""The miner's work under faults: S3 outages, stale credentials, API 429/5xx bursts, malformed answers, and
a deadline that cannot be met. The miner runs in this process (so faults can be timed); everything it
talks to is real: the reference server, SeaweedFS (behind a cuttable TCP proxy), the listing site."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.request
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest

from resi import constants as c
from resi.api.client import ResiApiClient
from resi.epochs import epoch_at, utcnow
from resi.listings.files import build_epoch_files, read_metadata, table_from_rows
from resi.localnet.network import LocalNetwork, NetworkConfig
from resi.miner.checkpoint import Checkpoint
from resi.miner.loop import Miner, MinerConfig
from resi.miner.upload import Uploader
from resi.scraping.realtor import RealtorSource
from tests.e2e import final_status, read_upload, wait_epoch_with
from tests.kit import run
from tests.listings.rows import good_row
from tests.servers import FaultyHttpProxy, TcpProxy

pytestmark = pytest.mark.slow

EPOCH_MINUTES = 1.0


def make_net(tmp_path, s3, *api_args, names=("m1", "m2", "m3", "m4")):
    net = LocalNetwork(
        NetworkConfig(
            run_dir=tmp_path, epoch_minutes=EPOCH_MINUTES, listings_scale=0.02, block_seconds=1, api_args=list(api_args)
        ),
        s3=s3,
    )
    net.start_infrastructure()
    net.people = {n: net.register(n) for n in names}
    net.start_api()
    return net


@pytest.fixture(scope="module")
def net(tmp_path_factory, local_s3):
    n = make_net(tmp_path_factory.mktemp("faultnet"), local_s3)
    yield n
    n.stop()


def set_site_faults(net, **faults):
    request = urllib.request.Request(net.site_url + "/_admin/faults", data=json.dumps(faults).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def files_for(signer, epoch_id: str):
    rows = [good_row(listing_id=str(1000 + i), address=f"{i} Oak St, Princeton, NJ 08540") for i in range(50)]
    now = utcnow()
    return build_epoch_files(
        table_from_rows(rows),
        hotkey=signer.hotkey,
        epoch_id=epoch_id,
        nonce="n",
        scraper_name="test",
        scraper_version="1",
        started_at=now,
        finished_at=now,
    )


def current_epoch():
    return epoch_at(utcnow(), timedelta(minutes=EPOCH_MINUTES))


def test_upload_waits_out_an_s3_outage(tmp_path, local_s3):
    proxy = TcpProxy(int(local_s3.endpoint.rsplit(":", 1)[1]))
    n = LocalNetwork(
        NetworkConfig(
            run_dir=tmp_path,
            epoch_minutes=10,
            listings_scale=0.02,
            block_seconds=1,
            api_args=["--s3-endpoint", f"http://127.0.0.1:{proxy.port}"],
        ),
        s3=local_s3,
    )
    try:
        n.start_infrastructure()
        miner = n.register("outage")
        n.start_api()
        wait_epoch_with(10, 90)
        epoch_id = epoch_at(utcnow(), timedelta(minutes=10)).id  # credentials admit the current epoch only
        files = files_for(miner.signer, epoch_id)
        proxy.up = False
        threading.Timer(4.0, lambda: setattr(proxy, "up", True)).start()

        async def go():
            async with ResiApiClient(n.api_url, miner.signer) as api:
                started = time.monotonic()
                verified = await Uploader(api, miner.signer.hotkey, backoff_cap=1.5).upload(
                    files, epoch_id, utcnow() + timedelta(seconds=60)
                )
                return verified, time.monotonic() - started

        verified, elapsed = run(go())
        assert verified and elapsed >= 3.5 and proxy.refused > 0
        parquet, meta, _ = read_upload(local_s3, miner.signer.hotkey, epoch_id)
        assert parquet == files.parquet and read_metadata(meta) == files.metadata
    finally:
        n.stop()
        proxy.close()


def test_expired_upload_credentials_are_renewed(tmp_path, local_s3):
    n = make_net(tmp_path, local_s3, "--upload-ttl-seconds", "2", names=("expiry",))
    try:
        signer = n.people["expiry"].signer
        wait_epoch_with(EPOCH_MINUTES, 30)
        epoch_id = current_epoch().id
        files = files_for(signer, epoch_id)

        async def go():
            async with ResiApiClient(n.api_url, signer, credential_margin=0) as api:
                stale = await api.miner_upload_access()
                await asyncio.sleep(3)  # the cached policy expires
                assert await Uploader(api, signer.hotkey).upload(files, epoch_id, utcnow() + timedelta(seconds=60))
                return stale, await api.miner_upload_access()

        stale, fresh = run(go())
        assert fresh.fields["policy"] != stale.fields["policy"]  # a new policy was asked for
        assert read_upload(local_s3, signer.hotkey, epoch_id)[0] == files.parquet
    finally:
        n.stop()


def make_miner(net, name: str, api_url: str, **config) -> tuple[Miner, ResiApiClient, RealtorSource]:
    signer = net.people[name].signer
    api = ResiApiClient(api_url, signer, backoff_base=0.2, backoff_cap=2)
    source = RealtorSource(net.site_url, max_rps=0, timeout=3, max_attempts=3, backoff_cap=0.2)
    data = net.run_dir / "inproc" / name
    cfg = MinerConfig(
        data_dir=data,
        concurrency=config.pop("concurrency", 4),
        upload_margin=config.pop("upload_margin", 8),
        poll_interval=1,
        zipcode_retry_pause=0.5,
    )
    return Miner(signer.hotkey, api, source, Checkpoint(data / "checkpoint.db"), Uploader(api, signer.hotkey), cfg), api, source


def test_bursts_of_api_429_and_5xx_are_waited_out(net):
    proxy = FaultyHttpProxy(net.api_url)
    proxy.faults = [
        ("/current", 503, '{"detail":"down"}'),
        ("/current", 429, '{"detail":"slow down"}'),
        ("/status", 502, "bad gateway"),
        ("/status", 429, '{"detail":"slow down"}'),
        ("/get-folder-access", 503, '{"statusCode":503,"message":["busy"],"error":"x"}'),
        ("/get-folder-access", 500, ""),
    ]
    try:
        wait_epoch_with(EPOCH_MINUTES, min_remaining=30)
        miner, api, _ = make_miner(net, "m1", proxy.url)

        async def go():
            async with api:
                assignment = await api.current_assignment()
                return await miner.run_epoch(assignment, asyncio.Event())

        assert run(go()) == c.STATUS_COMPLETED
        assert proxy.faulted == 6 and not proxy.faults
        assert final_status(net.run_dir, net.people["m1"].signer.hotkey)["status"] == "COMPLETED"
    finally:
        proxy.close()


def test_malformed_api_answers_are_logged_and_the_loop_goes_on(net):
    proxy = FaultyHttpProxy(net.api_url)
    proxy.faults = [("/current", 200, "{not json"), ("/current", 200, '{"success": true}'), ("/current", 200, "[]")]
    from loguru import logger

    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="ERROR")
    try:
        wait_epoch_with(EPOCH_MINUTES, min_remaining=30)
        miner, api, _ = make_miner(net, "m2", proxy.url)
        hotkey = net.people["m2"].signer.hotkey

        async def go():
            stop = asyncio.Event()
            task = asyncio.create_task(miner.run(stop))
            for _ in range(120):
                if final_status(net.run_dir, hotkey):
                    break
                await asyncio.sleep(0.5)
            stop.set()
            await task
            await api.close()

        run(go())
        assert final_status(net.run_dir, hotkey)["status"] == "COMPLETED"
        assert proxy.faulted == 3 and sum("malformed answer" in line for line in seen) == 3
    finally:
        logger.remove(sink)
        proxy.close()


def test_a_deadline_that_cannot_be_met_uploads_partial_data_in_time(net):
    wait_epoch_with(EPOCH_MINUTES, min_remaining=35)
    epoch = current_epoch()
    left = (epoch.end - utcnow()).total_seconds()
    set_site_faults(net, slow=1.0, slow_seconds=1.5)
    try:
        miner, api, _ = make_miner(net, "m3", net.api_url, concurrency=1, upload_margin=left - 5)

        async def go():
            async with api:
                return await miner.run_epoch(await api.current_assignment(), asyncio.Event())

        assert run(go()) == c.STATUS_TIMEOUT
    finally:
        set_site_faults(net, slow=0.0)
    hotkey = net.people["m3"].signer.hotkey
    status = final_status(net.run_dir, hotkey)
    assert status["status"] == "TIMEOUT" and status["uploaded"] and status["epoch_id"] == epoch.id
    assert status["body"]["failureReason"]
    parquet, meta, modified = read_upload(net.s3, hotkey, epoch.id)
    meta = read_metadata(meta)
    with sqlite3.connect(net.run_dir / "api" / "state.db") as db:
        assignment = json.loads(db.execute("SELECT assignment FROM epochs WHERE epoch_id=?", (epoch.id,)).fetchone()[0])
    assert 0 < meta.row_count and len(meta.zipcode_counts) < len(assignment["zipcodes"])
    assert all(parsedate_to_datetime(v) < epoch.end for v in modified.values())
