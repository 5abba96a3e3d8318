"""Downloads: a slow or huge miner never holds up the others, and memory holds a bounded number of them.

The miners' storage is a small aiohttp server that speaks the S3 list/GET answers (one miner slow, one
huge); the API's answer is the real model, filled with that server's URLs."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from resi.api.models import MinerSpecificAccess
from resi.validator.downloads import DownloadLimits, Outage, submissions
from tests.kit import run

LIST = """<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<IsTruncated>false</IsTruncated>{items}</ListBucketResult>"""
ITEM = "<Contents><Key>{key}</Key><Size>{size}</Size><LastModified>2025-10-01T17:00:00Z</LastModified><ETag>x</ETag></Contents>"


class FakeApi:
    """Only what ``submissions`` asks of the API client: presigned URLs for one miner's epoch."""

    def __init__(self, base: str):
        self.base = base

    async def miner_access(self, hotkey, epoch_id=None, continuation_token=None):
        prefix = f"data/hotkey={hotkey}/epoch={epoch_id}/"
        return MinerSpecificAccess(
            miner_hotkey=hotkey,
            miner_url=f"{self.base}/list/{hotkey}",
            prefix=f"data/hotkey={hotkey}/",
            epoch_id=epoch_id,
            epoch_prefix=prefix,
            epoch_list_url=f"{self.base}/list/{hotkey}",
            files={"listings.parquet": f"{self.base}/get/{hotkey}/l", "metadata.json": f"{self.base}/get/{hotkey}/m"},
        )


def storage_app(sizes: dict[str, int], slow: set[str]) -> web.Application:
    async def listing(request):
        hk = request.match_info["hk"]
        prefix = f"data/hotkey={hk}/epoch=E/"
        items = "".join(ITEM.format(key=prefix + n, size=sizes.get(hk, 10)) for n in ("listings.parquet", "metadata.json"))
        return web.Response(text=LIST.format(items=items), content_type="application/xml")

    async def get(request):
        hk = request.match_info["hk"]
        if hk in slow:
            await asyncio.sleep(4)
        return web.Response(body=b"x" * 10)

    app = web.Application()
    app.router.add_get("/list/{hk}", listing)
    app.router.add_get("/get/{hk}/{name}", get)
    return app


async def answers() -> bool:
    return True  # S3 and the API answer: a failure is the miner's own


@pytest.mark.slow
def test_a_slow_or_huge_miner_does_not_hold_up_the_others():
    async def go():
        runner = web.AppRunner(storage_app({"huge": 10**9}, {"slow"}))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        miners = [(0, "slow"), (1, "huge")] + [(i, f"m{i}") for i in range(2, 8)]
        limits = DownloadLimits(max_listings_bytes=1000, per_miner_timeout=1.5)
        seen = []
        start = time.monotonic()
        try:
            async for sub in submissions(FakeApi(base), miners, "E", limits, concurrency=3, reachable=answers):
                seen.append((sub.hotkey, sub.fetch_error, time.monotonic() - start))
        finally:
            await runner.cleanup()
        return seen

    seen = run(go())
    outcome = {hk: err for hk, err, _ in seen}
    assert outcome["slow"] == "download_timeout" and outcome["huge"] == "file_too_large"
    assert all(outcome[f"m{i}"] is None for i in range(2, 8)) and len(seen) == 8
    finished = {hk: t for hk, _, t in seen}
    assert max(finished[f"m{i}"] for i in range(2, 8)) < finished["slow"]  # the others did not wait for it
    assert finished["slow"] < 5  # and the slow one cost its own budget only


def test_a_failure_while_storage_is_unreachable_is_an_outage_not_the_miners_fault():
    async def cut_off() -> bool:
        return False

    async def go():
        runner = web.AppRunner(storage_app({}, {"slow"}))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        seen = []
        try:
            with pytest.raises(Outage, match="unreachable"):
                async for sub in submissions(
                    FakeApi(base),
                    [(0, "m0"), (1, "slow"), (2, "m2")],
                    "E",
                    DownloadLimits(per_miner_timeout=1.0),
                    concurrency=3,
                    reachable=cut_off,
                ):
                    seen.append(sub.hotkey)
        finally:
            await runner.cleanup()
        return seen

    assert "slow" not in run(go())  # nobody was handed a download_timeout
