"""Presigned uploads, lists and downloads against a real SeaweedFS that enforces the POST policy."""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from resi.storage import ObjectTooLarge, StorageError, download, list_objects, upload_post
from resi.storage.presigner import S3Presigner
from tests.conftest import TEST_BUCKET
from tests.kit import PYTHON, run


@pytest.fixture
def presigner(local_s3) -> S3Presigner:
    return S3Presigner(local_s3.settings)


@pytest.fixture
def prefix() -> str:
    return f"data/hotkey=test-{uuid.uuid4().hex[:10]}/"


async def _upload(url, fields, key, body):
    async with aiohttp.ClientSession() as session:
        await upload_post(session, url, fields, key, body)


def test_upload_lands_under_the_allowed_prefix(presigner, prefix):
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=1024, expires_at=_in(60))
    key = prefix + "epoch=2025-10-01T16-00-00/listings.parquet"
    run(_upload(post["url"], post["fields"], key, b"parquet bytes"))

    async def check():
        async with aiohttp.ClientSession() as session:
            listing = await list_objects(session, presigner.list_url(TEST_BUCKET, prefix, 60))
            body = await download(session, presigner.get_url(TEST_BUCKET, key, 60), max_bytes=1024)
        return listing, body

    listing, body = run(check())
    assert [o.key for o in listing.objects] == [key] and listing.complete
    assert listing.objects[0].size == len(b"parquet bytes") and body == b"parquet bytes"


def test_key_outside_the_prefix_is_refused(presigner, prefix):
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=1024, expires_at=_in(60))
    with pytest.raises(StorageError) as err:
        run(_upload(post["url"], post["fields"], "data/hotkey=someone-else/listings.parquet", b"x" * 10))
    assert err.value.status == 403 and err.value.code == "AccessDenied"


def test_body_over_the_size_range_is_refused(presigner, prefix):
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=100, expires_at=_in(60))
    with pytest.raises(StorageError) as err:
        run(_upload(post["url"], post["fields"], prefix + "big.bin", b"x" * 101))
    assert err.value.status == 400 and err.value.code == "EntityTooLarge"


def _in(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def _sleep_until(moment: datetime) -> None:
    while (left := (moment - datetime.now(timezone.utc)).total_seconds()) > 0:
        time.sleep(left)


def test_a_policy_lives_until_its_instant_and_not_after(presigner, prefix):
    """Credentials that die at a deadline live until it: a policy expiring at T.9 admits a POST at T.1 (a
    whole-second expiry would have died at T), and refuses one after T.9."""
    second = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
    expires = second + timedelta(milliseconds=900)
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=100, expires_at=expires)
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    assert policy["expiration"] == expires.strftime("%Y-%m-%dT%H:%M:%S.900Z")
    _sleep_until(second + timedelta(milliseconds=100))
    run(_upload(post["url"], post["fields"], prefix + "in-time.bin", b"x"))
    _sleep_until(expires + timedelta(milliseconds=300))
    with pytest.raises(StorageError) as err:
        run(_upload(post["url"], post["fields"], prefix + "late.bin", b"x"))
    assert err.value.status == 403


def test_decoded_policy_restricts_prefix_size_and_expiry(presigner, prefix):
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=5000, expires_at=_in(600))
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    assert ["starts-with", "$key", prefix] in policy["conditions"]
    assert ["content-length-range", 1, 5000] in policy["conditions"]
    assert policy["expiration"].endswith("Z")


def test_tampered_policy_is_refused(presigner, prefix):
    post = presigner.presigned_post(TEST_BUCKET, prefix, max_bytes=100, expires_at=_in(60))
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not (isinstance(c, list) and c[0] == "starts-with")]
    fields = dict(post["fields"], policy=base64.b64encode(json.dumps(policy).encode()).decode())
    with pytest.raises(StorageError) as err:
        run(_upload(post["url"], fields, "anywhere/at-all.bin", b"x"))
    assert err.value.status == 403


def test_list_of_more_than_1000_keys_comes_back_whole(presigner, prefix):
    keys = [f"{prefix}epoch=e/{i:05d}.bin" for i in range(1_050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: presigner.put_object(TEST_BUCKET, k, b"1"), keys))
    pages: list[str] = []

    async def renew(token: str) -> str:
        pages.append(token)
        return presigner.list_url(TEST_BUCKET, prefix, 60, continuation_token=token)

    async def go(renewer):
        async with aiohttp.ClientSession() as session:
            return await list_objects(session, presigner.list_url(TEST_BUCKET, prefix, 60), renew=renewer)

    whole = run(go(renew))
    assert sorted(o.key for o in whole.objects) == keys and whole.complete and len(pages) >= 1
    partial = run(go(None))
    assert not partial.complete and len(partial.objects) < len(keys)


def test_bad_list_signature_is_an_error(presigner, prefix):
    url = presigner.list_url(TEST_BUCKET, prefix, 60)

    async def go():
        async with aiohttp.ClientSession() as session:
            await list_objects(session, url[:-4] + "0000")

    with pytest.raises(StorageError) as err:
        run(go())
    assert err.value.status == 403


def test_download_over_its_cap_stops_at_the_cap(presigner, prefix):
    key = prefix + "big.bin"
    presigner.put_object(TEST_BUCKET, key, b"y" * 300_000)

    async def go(cap):
        async with aiohttp.ClientSession() as session:
            return await download(session, presigner.get_url(TEST_BUCKET, key, 60), max_bytes=cap)

    assert len(run(go(300_000))) == 300_000
    with pytest.raises(ObjectTooLarge):
        run(go(100_000))


def test_download_of_an_endless_undeclared_body_stops_at_the_cap():
    """A server that streams forever without a Content-Length: the reader stops near the cap."""
    sent = {"bytes": 0}

    async def endless(request):
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            while sent["bytes"] < 50_000_000:
                await resp.write(b"z" * 65536)
                sent["bytes"] += 65536
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def go():
        app = web.Application()
        app.router.add_get("/obj", endless)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(ObjectTooLarge):
                    await download(session, f"http://127.0.0.1:{port}/obj", max_bytes=1_000_000)
        finally:
            await runner.cleanup()

    run(go())
    assert sent["bytes"] < 10_000_000


@pytest.mark.slow
def test_seaweedfs_dies_with_a_killed_parent(tmp_path):
    """A launcher that is SIGKILLed leaves no weed process behind."""
    import os
    import signal
    import subprocess
    import time

    code = (
        "import sys, time; from pathlib import Path; from resi.storage.seaweed import LocalS3; "
        f"s3 = LocalS3(Path({str(tmp_path)!r})).start(); print(s3.process.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True)
    weed_pid = int(parent.stdout.readline())
    os.kill(weed_pid, 0)  # running
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    for _ in range(100):
        try:
            os.kill(weed_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(weed_pid, signal.SIGKILL)
        raise AssertionError("weed outlived its parent")
