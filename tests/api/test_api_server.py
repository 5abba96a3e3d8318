"""The reference server over real HTTP, with SeaweedFS and the simulated chain, driven by the real client."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import pytest

from resi.api import signing
from resi.api.client import ResiApiClient
from resi.api.errors import ApiError
from resi.epochs import epoch_at, utcnow
from resi.storage import StorageError, list_objects, upload_post
from resi.storage.presigner import S3Presigner
from tests.e2e import wait_epoch_with
from tests.kit import run
from tests.servers import ApiNet, ApiServer


@pytest.fixture(autouse=True)
def away_from_an_epoch_boundary():
    """The servers' epochs are 4 hours, changing at 00, 04, ... UTC: a test that reads "the current epoch" more
    than once must not straddle a change, so each starts with a minute of its epoch left (a wait of under a
    minute, in about one run in 240)."""
    wait_epoch_with(240, 60)


@pytest.fixture(scope="module")
def net(tmp_path_factory, local_s3):
    n = ApiNet(tmp_path_factory.mktemp("apinet"), local_s3)
    yield n
    n.server.stop()


async def _raw(method: str, url: str, **kw) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, **kw) as r:
            text = await r.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = {"text": text}
            return r.status, body, dict(r.headers)


def raw(method: str, url: str, **kw):
    return run(_raw(method, url, **kw))


def signed_query(signer, commitment_fn, ts=None, sig=None):
    ts = int(time.time()) if ts is None else ts
    return {
        "hotkey": signer.hotkey,
        "timestamp": ts,
        "signature": sig if sig is not None else signing.sign_commitment(signer, commitment_fn(ts)),
    }


# --- happy paths ------------------------------------------------------------------------------------------


def test_health_and_stats_have_the_documented_shape(net):
    async def go():
        async with net.client(None) as c:
            return await c.healthcheck(), await c.stats()

    health, stats = run(go())
    assert health.status == "ok" and health.s3_ok is True and health.database == "connected"
    current = stats.epochStatus["currentEpoch"]
    assert current["zipcodeCount"] >= 1 and len(current["nonce"]) == 16
    assert stats.zipcodeStatistics["configuration"]["targetListings"] == 500


def test_assignment_is_within_tolerance_and_the_same_for_every_miner(net):
    async def go(signer):
        async with net.client(signer) as c:
            return await c.current_assignment()

    a, b = run(go(net.miners[0])), run(go(net.miners[1]))
    assert a == b
    total = sum(a.expected().values())
    assert 450 <= total <= 550 and a.metadata.total_expected_listings == total
    assert all(z.market_tier in ("PREMIUM", "STANDARD", "EMERGING") and len(z.zipcode) == 5 for z in a.zipcodes)
    assert a.submission_deadline == a.epoch_end and a.epoch_start < a.epoch_end


def test_status_update_is_stored_and_checked(net):
    miner = net.miners[2]

    async def go():
        async with net.client(miner) as c:
            a = await c.current_assignment()
            ok = await c.update_status(
                a.epoch_id,
                a.nonce,
                "COMPLETED",
                listings_scraped=12,
                zipcodes_completed=[
                    {"zipcode": a.zipcodes[0].zipcode, "listingsScraped": 12, "completedAt": "2025-10-01T17:30:00.000Z"}
                ],
                s3_upload_complete=True,
            )
            errors = []
            for kwargs in ({"nonce": "0" * 16}, {"epoch_id": "2020-01-01T00-00-00"}):
                try:
                    await c.update_status(kwargs.get("epoch_id", a.epoch_id), kwargs.get("nonce", a.nonce), "IN_PROGRESS")
                except ApiError as exc:
                    errors.append(exc)
            return a, ok, errors

    a, ok, errors = run(go())
    assert ok.success and ok.status == "COMPLETED" and ok.epoch_id == a.epoch_id
    assert [e.status for e in errors] == [400, 400]
    assert "nonce" in errors[0].messages[0] and "not the current epoch" in errors[1].messages[0]


def test_miner_upload_lands_under_its_epoch_folder_and_nowhere_else(net):
    miner, other = net.miners[3], net.miners[4]
    epoch = epoch_at(utcnow())  # the server's epochs are 4 hours

    async def go():
        # reused until 5 s before they expire (at the epoch's deadline, a minute or more away: the fixture above)
        async with net.client(miner, credential_margin=5) as c, aiohttp.ClientSession() as s:
            access = await c.miner_upload_access()
            again = await c.miner_upload_access()
            own = access.folder + "listings.parquet"
            await upload_post(s, access.url, access.fields, own, b"rows" * 10)
            refused = []
            for key, fields in (
                (f"data/hotkey={other.hotkey}/epoch={epoch.id}/listings.parquet", access.fields),
                (f"data/hotkey={miner.hotkey}/epoch=2025-10-01T16-00-00/listings.parquet", access.fields),
                (own, {**access.fields, "Content-Type": "text/html"}),
            ):
                try:
                    await upload_post(s, access.url, fields, key, b"x")
                    refused.append(None)
                except StorageError as exc:
                    refused.append(exc.status)
            listing = await list_objects(s, access.list_url)
            return access, again, own, refused, listing

    access, again, own, refused, listing = run(go())
    assert access is again  # credentials reused while valid
    assert access.folder == f"data/hotkey={miner.hotkey}/epoch={epoch.id}/"
    assert refused == [403, 403, 403]  # another miner, another epoch, another content type
    assert [o.key for o in listing.objects] == [own]
    policy = json.loads(base64.b64decode(access.fields["policy"]))
    assert ["starts-with", "$key", access.folder] in policy["conditions"]
    assert {"Content-Type": "application/octet-stream"} in policy["conditions"]
    assert ["content-length-range", 1, 100 * 1024 * 1024] in policy["conditions"]
    # alive until the epoch's deadline exactly (not a whole number of seconds from the request), and not after
    assert policy["expiration"] == epoch.end.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_validator_endpoints_happy_path(net):
    miner, validator = net.miners[3], net.validators[0]

    async def go():
        async with net.client(miner) as c:
            a = await c.current_assignment()
        async with net.client(validator) as c, aiohttp.ClientSession() as s:
            past = await c.epoch_assignment(a.epoch_id)
            access = await c.validator_access()
            miners = await list_objects(s, access.urls["miners"].list_all_miners)
            one = await c.miner_access(miner.hotkey, a.epoch_id)
            upload = await c.validator_upload_access(a.epoch_id)
            await upload_post(s, upload.url, upload.fields, upload.folder + "validation_results.json", b"{}")
            return a, past, miners, one, upload

    a, past, miners, one, upload = run(go())
    assert past == a and past.nonce == a.nonce
    assert f"data/hotkey={miner.hotkey}/" in miners.prefixes
    assert one.prefix == f"data/hotkey={miner.hotkey}/" and set(one.files) == {"listings.parquet", "metadata.json"}
    assert one.epoch_prefix == f"data/hotkey={miner.hotkey}/epoch={a.epoch_id}/"
    assert upload.folder == f"validators/{validator.hotkey}/{a.epoch_id}/"


def test_a_validators_credential_admits_the_epochs_validated_listings_in_its_folder_only(net):
    """One credential serves the epoch's files: the results, the two Parquet files and the manifest (of the
    sizes they have: up to the upload cap), in the validator's own epoch folder and nowhere else."""
    validator, other = net.validators[1], net.validators[2]
    epoch = epoch_at(utcnow())
    files = {
        "validation_results.json": b"{}",
        "validated/listings.parquet": b"P" * 3_000_000,
        "validated/observations.parquet": b"P" * 200_000,
        "validated/manifest.json": b"{}",
    }
    elsewhere = [
        f"validators/{other.hotkey}/{epoch.id}/validated/listings.parquet",
        f"validators/{validator.hotkey}/2025-10-01T16-00-00/validated/listings.parquet",
        f"validators/{validator.hotkey}/validated/listings.parquet",
        f"data/hotkey={validator.hotkey}/epoch={epoch.id}/listings.parquet",
    ]

    async def go():
        async with net.client(validator) as c, aiohttp.ClientSession() as s:
            upload = await c.validator_upload_access(epoch.id)
            for name, data in files.items():
                await upload_post(s, upload.url, upload.fields, upload.folder + name, data)
            refused = []
            for key in elsewhere:
                try:
                    await upload_post(s, upload.url, upload.fields, key, b"x")
                    refused.append(None)
                except StorageError as exc:
                    refused.append(exc.status)
            return upload, refused

    upload, refused = run(go())
    assert refused == [403] * len(elsewhere)
    url = S3Presigner(net.server.s3.settings).list_url(net.server.validator_bucket, upload.folder, 60)
    listing = run(_list(url))
    assert sorted(o.key for o in listing.objects) == sorted(upload.folder + name for name in files)
    assert {o.key[len(upload.folder) :]: o.size for o in listing.objects} == {k: len(v) for k, v in files.items()}


async def _list(url: str):
    async with aiohttp.ClientSession() as s:
        return await list_objects(s, url)


# --- refusals ------------------------------------------------------------------------------------------------


def test_bad_signature_unregistered_and_non_validator_are_401(net):
    url = net.server.url + "/api/v1/zipcode-assignments/current"
    miner = net.miners[5]
    q = signed_query(miner, signing.assignment_current)
    q["signature"] = signed_query(net.miners[6], signing.assignment_current, ts=q["timestamp"])["signature"]
    status, body, _ = raw("GET", url, params=q)
    assert status == 401 and body["detail"] == "Invalid signature" and body["statusCode"] == 401
    status, body, _ = raw("GET", url, params=signed_query(net.stranger, signing.assignment_current))
    assert status == 401 and "not registered" in body["detail"]

    ts = int(time.time())
    body = {"hotkey": miner.hotkey, "timestamp": ts, "signature": signing.sign_commitment(miner, signing.validator_access(ts))}
    status, answer, _ = raw("POST", net.server.url + "/get-validator-access", json=body)
    assert status == 401 and answer["detail"] == "You are not validator"


@pytest.mark.parametrize("offset", [-400, 400])
def test_stale_and_future_timestamps_are_400(net, offset):
    q = signed_query(net.miners[5], signing.assignment_current, ts=int(time.time()) + offset)
    status, body, _ = raw("GET", net.server.url + "/api/v1/zipcode-assignments/current", params=q)
    assert status == 400 and body["detail"] == "Invalid timestamp"


@pytest.mark.parametrize(
    "payload,expected",
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (json.dumps({"hotkey": 5, "signature": "ab", "timestamp": "soon"}).encode(), 400),
        (json.dumps({"hotkey": "x", "signature": "ab", "timestamp": 99}).encode(), 400),
        (b"\xff\xfe\x00", 400),
        (b"{" + b'"a":"' + b"x" * 70_000 + b'"}', 413),
    ],
)
def test_malformed_bodies_are_4xx_in_the_spec_shape(net, payload, expected):
    status, body, _ = raw(
        "POST", net.server.url + "/get-folder-access", data=payload, headers={"Content-Type": "application/json"}
    )
    assert status == expected and body["statusCode"] == expected and body["message"]


def test_unknown_route_is_404_in_the_spec_shape(net):
    status, body, _ = raw("GET", net.server.url + "/nope")
    assert status == 404 and body["statusCode"] == 404


def test_replayed_request_is_refused(net):
    q = signed_query(net.miners[6], signing.assignment_current)
    url = net.server.url + "/api/v1/zipcode-assignments/current"
    assert raw("GET", url, params=q)[0] == 200
    status, body, _ = raw("GET", url, params=q)
    assert status == 401 and "replay" in body["detail"]


def test_rate_limit_429_with_headers_and_bad_signatures_cost_nothing(net):
    miner, url = net.miners[7], net.server.url + "/api/v1/zipcode-assignments/status"
    ts0 = int(time.time()) - 100
    for i in range(20):  # forged requests in the miner's name
        body = {
            "hotkey": miner.hotkey,
            "signature": "ab" * 64,
            "timestamp": ts0 + i,
            "epochId": "e",
            "nonce": "n",
            "status": "IN_PROGRESS",
        }
        assert raw("POST", url, json=body)[0] == 401
    seen = []
    for i in range(6):
        ts = ts0 + 50 + i
        body = {
            "hotkey": miner.hotkey,
            "timestamp": ts,
            "epochId": "2020-01-01T00-00-00",
            "nonce": "n",
            "status": "IN_PROGRESS",
            "signature": signing.sign_commitment(miner, signing.miner_status(miner.hotkey, "2020-01-01T00-00-00", ts)),
        }
        seen.append(raw("POST", url, json=body))
    statuses = [s for s, _, _ in seen]
    assert statuses[:5] == [400] * 5, statuses  # authorized (then refused for the epoch): the quota was intact
    status, body, headers = seen[5]
    assert status == 429 and headers["X-RateLimit-Limit"] == "5" and headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Reset"]) > time.time() - 1 and int(headers["Retry-After"]) >= 1
    assert seen[0][2]["X-RateLimit-Remaining"] == "4"


def test_folder_access_with_someone_elses_coldkey_is_refused(net):
    miner, other = net.miners[0], net.miners[1]
    ts = int(time.time())
    body = {
        "hotkey": miner.hotkey,
        "coldkey": other.coldkey,
        "timestamp": ts,
        "signature": signing.sign_commitment(miner, signing.miner_s3_access(other.coldkey, miner.hotkey, ts)),
    }
    status, answer, _ = raw("POST", net.server.url + "/get-folder-access", json=body)
    assert status == 401 and "coldkey" in answer["detail"]


def test_openapi_document_matches_the_server(net):
    status, doc, _ = raw("GET", net.server.url + "/docs-json")
    assert status == 200 and doc["openapi"].startswith("3.")
    from resi.api.server.app import HANDLERS

    assert {(m, p) for p, ops in doc["paths"].items() for m in ops} == set(HANDLERS)
    assert raw("GET", net.server.url + "/docs")[0] == 200


# --- restart -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_keeps_epoch_nonce_and_assignment(tmp_path, local_s3):
    n = ApiNet(tmp_path, local_s3, "--epoch-minutes", "240")
    try:

        async def get():
            async with n.client(n.miners[0]) as c:
                return await c.current_assignment()

        before = run(get())
        n.server.restart()
        after = run(get())
        assert after == before
    finally:
        n.server.stop()


@pytest.mark.slow
def test_nothing_used_is_forgotten_across_kill_9(tmp_path, local_s3):
    """Seen commitments and rate-limit counts live in memory with an append-only log: a SIGKILL right after
    the answers loses neither (no replay accepted, no fresh quota)."""
    n = ApiNet(tmp_path, local_s3, "--epoch-minutes", "240")
    try:
        url = n.server.url + "/api/v1/zipcode-assignments/current"
        used = signed_query(n.miners[0], signing.assignment_current)
        assert raw("GET", url, params=used)[0] == 200
        now = int(time.time())
        answers = [
            raw("GET", url, params=signed_query(n.miners[1], signing.assignment_current, ts=now - 30 + i))[0] for i in range(10)
        ]  # the whole per-minute quota
        assert answers == [200] * 10
        n.server.restart(kill=True)
        status, body, _ = raw("GET", url, params=used)
        assert status == 401 and "replay" in body["detail"]
        status, _, headers = raw("GET", url, params=signed_query(n.miners[1], signing.assignment_current))
        assert status == 429 and headers["X-RateLimit-Remaining"] == "0"
        assert raw("GET", url, params=signed_query(n.miners[2], signing.assignment_current))[0] == 200
    finally:
        n.server.stop()


@pytest.mark.slow
def test_a_second_server_on_the_same_state_refuses_to_start(tmp_path, local_s3):
    n = ApiNet(tmp_path, local_s3)
    try:
        second = ApiServer(tmp_path, tmp_path / "chain.db", local_s3)
        with pytest.raises(RuntimeError, match="one server per --state-dir"):
            second.start()
    finally:
        n.server.stop()


# --- the server never answers 500 ------------------------------------------------------------------------------


def _status_body(signer, ts=None, **changes):
    ts = ts or int(time.time())
    body = {
        "hotkey": signer.hotkey,
        "timestamp": ts,
        "epochId": "2020-01-01T00-00-00",
        "nonce": "n",
        "status": "IN_PROGRESS",
        "signature": signing.sign_commitment(signer, signing.miner_status(signer.hotkey, "2020-01-01T00-00-00", ts)),
    }
    body.update(changes)
    return body


def test_deeply_nested_json_is_400_with_a_message(net):
    url = net.server.url + "/api/v1/zipcode-assignments/status"
    for payload in (
        b"[" * 60_000,
        b'{"hotkey": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        b'{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}}}',
    ):
        status, body, _ = raw("POST", url, data=payload, headers={"Content-Type": "application/json"})
        assert status == 400 and "nested deeper" in body["detail"], (status, body)


def test_integers_beyond_what_the_store_holds_are_400(net):
    url = net.server.url + "/api/v1/zipcode-assignments/status"
    miner = net.miners[5]
    for changes in (
        {"listingsScraped": 2**70},
        {"zipcodesCompleted": [{"zipcode": "08540", "listingsScraped": 10**30}]},
        {"timestamp": 10**40},
        {"listingsScraped": 2**63},
    ):
        status, body, _ = raw("POST", url, json=_status_body(miner, **changes))
        assert status == 400 and body["message"], (changes, status, body)
    status, _, _ = raw(
        "GET",
        net.server.url + "/api/v1/zipcode-assignments/current",
        params={"hotkey": miner.hotkey, "signature": "ab" * 64, "timestamp": "9" * 400},
    )
    assert status == 400


def test_a_declared_length_over_the_cap_is_413_before_any_body_is_read(net):
    import socket

    with socket.create_connection(("127.0.0.1", net.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/zipcode-assignments/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: 1000000000\r\n\r\n"
        )  # and never a byte of the body
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 3


@pytest.fixture(scope="module")
def strict(tmp_path_factory, local_s3):
    n = ApiNet(tmp_path_factory.mktemp("strictnet"), local_s3, "--rate-limits", "assignment=5/3", "--header-timeout", "1")
    yield n
    n.server.stop()


def test_a_client_that_sends_its_head_slowly_is_cut_off(strict):
    import socket

    with socket.create_connection(("127.0.0.1", strict.server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        started = time.monotonic()
        closed = sock.recv(4096)
        waited = time.monotonic() - started
    assert closed == b"" and 0.5 < waited < 8  # closed by the server after its header timeout


@pytest.mark.slow
def test_no_window_admits_more_than_the_limit(strict):
    """5 calls per 3 s, asked 10 times a second for 8 s: fixed windows let 10 through around each window edge;
    here no 3-second span holds more than 5 accepted calls."""
    miner = strict.miners[0]
    url = strict.server.url + "/api/v1/zipcode-assignments/current"

    async def go():
        accepted = []
        oldest = int(time.time()) - 250  # every request signs its own timestamp: none is a replay
        async with aiohttp.ClientSession() as s:
            end = time.monotonic() + 8
            for i in range(1000):
                if time.monotonic() > end:
                    break
                sent = time.monotonic()
                async with s.get(url, params=signed_query(miner, signing.assignment_current, ts=oldest + i)) as r:
                    if r.status == 200:
                        accepted.append(sent)
                    else:
                        assert r.status == 429, r.status
                await asyncio.sleep(0.1)
        return accepted

    accepted = run(go())
    assert len(accepted) >= 10  # the limit refills as the window slides
    for i, t in enumerate(accepted):
        in_window = [u for u in accepted[: i + 1] if u > t - 3 + 0.2]
        assert len(in_window) <= 5, (i, in_window)


def test_rate_events_older_than_every_window_are_pruned(tmp_path):
    from resi.api.server.state import StateStore

    store = StateStore(tmp_path / "state.db")
    for i in range(50):
        store.charge("k", 100, 60, 1000.0 + i)
    assert store.prune(now=1100.0, longest_window=60) == 41  # at 1040 and before: beyond any window
    assert store.charge("k", 9, 60, 1100.0)[0] is False  # the 9 still in the window count
    store.close()


@pytest.mark.slow
def test_a_full_disk_under_the_state_is_unhealthy_and_never_500(tmp_path, local_s3):
    """The server runs with a file-size limit (``prlimit --fsize``): once its state files reach it, every write
    fails as on a full disk. The health check says so and clients get 503, never 500."""
    n = ApiNet(tmp_path, local_s3)  # the chain and keys; the server below replaces the default one
    n.server.stop()
    n.server = ApiServer(
        tmp_path / "full",
        tmp_path / "chain.db",
        local_s3,
        "--listings-scale",
        "0.05",
        "--target-listings",
        "500",
        "--rate-limits",
        "assignment=100000/60",
        prefix=("prlimit", f"--fsize={256 * 1024}"),
    ).start()
    try:
        url = n.server.url
        assert raw("GET", url + "/healthcheck")[0] == 200
        statuses, health = [], None
        oldest = int(time.time()) - 250
        for i in range(3000):  # each accepted request is logged (seen, counted) until a write fails
            miner = n.miners[i % len(n.miners)]
            statuses.append(
                raw(
                    "GET",
                    url + "/api/v1/zipcode-assignments/current",
                    params=signed_query(miner, signing.assignment_current, ts=oldest + i // len(n.miners)),
                )[0]
            )
            if statuses[-1] == 503:
                health = raw("GET", url + "/healthcheck")
                break
        assert 500 not in statuses and statuses[-1] == 503, statuses
        status, body, _ = health
        assert status == 503 and body["database"] == "unavailable" and body["status"] == "error"
        assert raw("POST", url + "/api/v1/zipcode-assignments/status", json=_status_body(n.miners[0]))[0] == 503
    finally:
        n.server.stop()


def test_a_client_seven_minutes_off_signs_with_the_apis_time_and_says_so_once(net):
    from loguru import logger

    lines = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:

        async def go():
            async with ResiApiClient(net.server.url, net.miners[2], clock=lambda: time.time() - 420) as c:
                first = await c.current_assignment()  # refused as "Invalid timestamp", then signed right
                second = await c.current_assignment()
                return first, second, c.clock_offset

        first, second, offset = run(go())
    finally:
        logger.remove(sink)
    assert first.epoch_id == second.epoch_id and 415 <= offset <= 425
    skew = [line for line in lines if "clock is" in line]
    assert len(skew) == 1 and any(f"+{s} s" in skew[0] for s in (419, 420, 421)) and "timedatectl" in skew[0]


def test_two_clients_of_one_hotkey_in_the_same_second_are_both_served(net):
    frozen = time.time()  # both clocks read the same second: the second signature is a replay at first

    async def go():
        async with net.client(net.miners[3], clock=lambda: frozen) as a, net.client(net.miners[3], clock=lambda: frozen) as b:
            first = await a.current_assignment()
            second = await b.current_assignment()
            return first, second, a._last_ts, b._last_ts

    first, second, stamps_a, stamps_b = run(go())
    assert first.epoch_id == second.epoch_id
    assert set(stamps_a.values()) != set(stamps_b.values())  # one of them signed the next second
