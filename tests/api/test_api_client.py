"""Client behaviour under faults: retries, 429 waits, pacing, credential reuse, both error shapes, timeouts.

The faults come from a scripted aiohttp server on loopback (the real client, real HTTP); pacing is also
shown against the real reference server.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from resi.api.client import ResiApiClient
from resi.api.errors import ApiError, MalformedResponse
from resi.api.limits import RateLimit
from resi.api.signing import assignment_current, verify_commitment
from resi.epochs import iso_z, utcnow
from tests.kit import closed_port, run
from tests.servers import ApiNet

ASSIGNMENT = {
    "success": True,
    "epochId": "2025-10-01T16-00-00",
    "epochStart": "2025-10-01T16:00:00.000Z",
    "epochEnd": "2025-10-01T20:00:00.000Z",
    "nonce": "376ce532f42cf2a5",
    "targetListings": 10000,
    "tolerancePercent": 10,
    "submissionDeadline": "2025-10-01T20:00:00.000Z",
    "zipcodes": [
        {
            "zipcode": "19103",
            "expectedListings": 250,
            "state": "PA",
            "city": "Philadelphia",
            "county": "Philadelphia County",
            "marketTier": "PREMIUM",
            "geographicRegion": "Northeast",
        }
    ],
    "metadata": {"totalExpectedListings": 250, "zipcodeCount": 1, "algorithmVersion": "v1.0", "selectionSeed": 1},
}
SNAKE_ASSIGNMENT = {
    "success": True,
    "epoch_id": "2025-10-01T16-00-00",
    "epoch_start": "2025-10-01T16:00:00.000Z",
    "epoch_end": "2025-10-01T20:00:00.000Z",
    "nonce": "n",
    "target_listings": 10000,
    "tolerance_percent": 10,
    "submission_deadline": "2025-10-01T20:00:00.000Z",
    "zipcodes": [{"zipcode": "08540", "expected_listings": 300, "market_tier": "premium"}],
}


@asynccontextmanager
async def scripted(*answers):
    """A server answering each request with the next (status, headers, json, delay); records requests."""
    seen: list[dict] = []
    queue = list(answers)

    async def handle(request: web.Request):
        seen.append({"t": time.monotonic(), "query": dict(request.query), "path": request.path})
        status, headers, body, delay = queue.pop(0) if len(queue) > 1 else queue[0]
        if delay:
            await asyncio.sleep(delay)
        if isinstance(body, (bytes, str)):
            return web.Response(status=status, headers=headers, body=body)
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", seen
    finally:
        await runner.cleanup()


def ok(body=ASSIGNMENT, headers=None, delay=0.0):
    return (200, headers or {}, body, delay)


def test_5xx_is_retried_with_fresh_signatures(wallets):
    signer = wallets("m")

    async def go():
        async with scripted((503, {}, {"detail": "down"}, 0), (502, {}, "bad gateway", 0), ok()) as (url, seen):
            async with ResiApiClient(url, signer, backoff_base=0.01) as client:
                result = await client.current_assignment()
        return result, seen

    result, seen = run(go())
    assert result.epoch_id == "2025-10-01T16-00-00" and len(seen) == 3
    stamps = [int(s["query"]["timestamp"]) for s in seen]
    assert len(set(stamps)) == 3  # never reuses a signed commitment
    for s in seen:
        assert verify_commitment(signer.hotkey, assignment_current(int(s["query"]["timestamp"])), s["query"]["signature"])


def test_connection_errors_give_up_after_the_attempt_budget(wallets):
    async def go():
        async with ResiApiClient(f"http://127.0.0.1:{closed_port()}", wallets("m"), max_attempts=3, backoff_base=0.01) as client:
            await client.current_assignment()

    start = time.monotonic()
    with pytest.raises(ApiError) as err:
        run(go())
    assert err.value.status is None and err.value.retryable and time.monotonic() - start < 5


def test_429_waits_for_retry_after(wallets):
    async def go():
        async with scripted((429, {"Retry-After": "1"}, {"detail": "Daily limit of 20 exceeded."}, 0), ok()) as (url, seen):
            async with ResiApiClient(url, wallets("m")) as client:
                await client.current_assignment()
        return seen

    seen = run(go())
    assert len(seen) == 2 and seen[1]["t"] - seen[0]["t"] >= 1.0


def test_429_waits_for_the_rate_limit_reset_header(wallets):
    async def go():
        reset = str(int(time.time()) + 2)
        async with scripted((429, {"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"}, {"detail": "slow"}, 0), ok()) as (
            url,
            seen,
        ):
            async with ResiApiClient(url, wallets("m")) as client:
                await client.current_assignment()
        return seen

    seen = run(go())
    assert seen[1]["t"] - seen[0]["t"] >= 0.9


def test_a_429_too_far_away_is_raised_not_waited(wallets):
    async def go():
        async with scripted((429, {"Retry-After": "86400"}, {"detail": "Daily limit of 20 exceeded."}, 0)) as (url, _):
            async with ResiApiClient(url, wallets("m"), max_rate_wait=5) as client:
                await client.current_assignment()

    with pytest.raises(ApiError) as err:
        run(go())
    assert err.value.status == 429 and err.value.messages == ["Daily limit of 20 exceeded."]


@pytest.mark.parametrize(
    "body,messages",
    [
        ({"detail": "Invalid signature"}, ["Invalid signature"]),
        (
            {
                "statusCode": 400,
                "message": ["timestamp must not be greater than 2147483647", "hotkey must be a string"],
                "error": "Bad Request",
            },
            ["timestamp must not be greater than 2147483647", "hotkey must be a string"],
        ),
        ("plain text failure", ["plain text failure"]),
    ],
)
def test_both_error_shapes_become_one_exception(wallets, body, messages):
    async def go():
        async with scripted((400, {}, body, 0)) as (url, seen):
            async with ResiApiClient(url, wallets("m")) as client:
                try:
                    await client.current_assignment()
                finally:
                    assert len(seen) == 1  # a 400 is not retried

    with pytest.raises(ApiError) as err:
        run(go())
    assert err.value.status == 400 and err.value.messages == messages and not err.value.retryable


def test_snake_case_answers_are_read_too(wallets):
    async def go():
        async with scripted(ok(SNAKE_ASSIGNMENT)) as (url, _):
            async with ResiApiClient(url, wallets("m")) as client:
                return await client.current_assignment()

    a = run(go())
    assert a.epoch_id == "2025-10-01T16-00-00" and a.expected() == {"08540": 300}
    assert a.zipcodes[0].market_tier == "PREMIUM"


@pytest.mark.parametrize("body", [{"success": True}, [1, 2, 3], b"<html>gateway</html>"])
def test_malformed_answers_raise_a_typed_error(wallets, body):
    async def go():
        async with scripted(ok(body)) as (url, _):
            async with ResiApiClient(url, wallets("m")) as client:
                await client.current_assignment()

    with pytest.raises(MalformedResponse):
        run(go())


def test_every_call_has_a_timeout(wallets):
    async def go():
        async with scripted(ok(delay=3)) as (url, seen):
            async with ResiApiClient(url, wallets("m"), timeout=0.3, max_attempts=2, backoff_base=0.01) as client:
                start = time.monotonic()
                try:
                    await client.current_assignment()
                except ApiError as exc:
                    return exc, time.monotonic() - start, len(seen)

    err, elapsed, attempts = run(go())
    assert err.status is None and attempts == 2 and elapsed < 2


def test_upload_credentials_are_reused_until_shortly_before_expiry(wallets):
    now = [time.time()]
    expires = iso_z(utcnow().fromtimestamp(now[0] + 600, utcnow().tzinfo))
    answer = {
        "uploadUrl": "http://s3",
        "fields": {"key": "data/hotkey=x/${filename}"},
        "metadata": {"folderPath": "data/hotkey=x/", "expiresAt": expires},
    }

    async def go():
        async with scripted(ok(answer)) as (url, seen):
            async with ResiApiClient(url, wallets("m"), clock=lambda: now[0], credential_margin=300) as client:
                first = await client.miner_upload_access()
                now[0] += 200  # 400 s left: still fresh
                second = await client.miner_upload_access()
                now[0] += 150  # 250 s left: inside the margin
                third = await client.miner_upload_access()
        return first, second, third, seen

    first, second, third, seen = run(go())
    assert first is second and third is not second and len(seen) == 2


@pytest.mark.slow
def test_client_paces_itself_under_the_servers_limit(tmp_path, local_s3):
    n = ApiNet(tmp_path, local_s3, "--rate-limits", "assignment=3/2")
    try:

        async def go():
            async with n.client(n.miners[0], rate_limits={"assignment": RateLimit(3, 2)}) as c:
                start = time.monotonic()
                for _ in range(7):
                    await c.current_assignment()  # a 429 would raise: max_attempts=2 and no waiting budget
                return time.monotonic() - start

        assert run(go()) >= 4.0
    finally:
        n.server.stop()


def test_a_caller_bounds_every_rate_limit_wait(wallets):
    from resi.api import limits as lim

    async def go():
        async with scripted(ok({"success": True, "url": "http://s3", "fields": {}, "folder": "validators/x/"})) as (url, seen):
            async with ResiApiClient(url, wallets("v"), rate_limits={lim.VALIDATOR_UPLOAD: RateLimit(1, 3600)}) as client:
                await client.validator_upload_access("2025-10-01T16-00-00")
                started = time.monotonic()
                with pytest.raises(ApiError) as err:
                    await client.validator_upload_access("2025-10-01T20-00-00", max_wait=5)
                return time.monotonic() - started, err.value, seen

    waited, error, seen = run(go())
    assert waited < 1 and error.status == 429 and error.retry_after > 3000 and len(seen) == 1
