"""The local listing site: the part of Realtor.com's ``frontdoor/graphql`` that homeharvest uses, over a
drifting world of listings, with faults on demand.

    python -m resi.localnet.site --port P --seed S [--scale 0.05] [--churn 80] [--fault-rate-limit 0.1 ...]

Operations: ``Search_suggestions`` (a zipcode -> its geo), ``GetHomeSearch`` (for-sale listings of a
zipcode, 200 per page by offset; with ``status: sold`` the listings sold in the last days, like homeharvest's
``listing_type="sold"``), ``GetHomeDetails`` (one listing by property id, sold and withdrawn ones included,
with its ``property_history`` when the query asks for it); each listing's ``href`` is a page served here.
A property id that is not of the site's own form is refused with 400, as Realtor's gateway refuses
malformed ids. ``/_admin/faults`` changes the fault rates at run time, ``/_admin/requests`` returns the
request log, ``/_admin/listings?zipcode=Z`` the current truth.
"""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from aiohttp import web

from resi import market
from resi.localnet.world import DAY, ListingWorld, WorldConfig, decode_property_id, to_realtor

_STATUS = re.compile(r"status:\s*(\[[^\]]*\]|\w+)")
_LIMIT = re.compile(r"limit:\s*(\d+)")
_SOLD_SINCE = re.compile(r'sold_date:\s*\{\s*min:\s*"\$today-(\d+)D"')
DEFAULT_SOLD_DAYS = 30


@dataclass
class Faults:
    """Probabilities (0..1) of each fault per GraphQL request, and their parameters."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    malformed: float = 0.0
    truncated: float = 0.0
    detail_error: float = 0.0
    """A 503 on listing look-ups by id only (the search keeps working)."""
    slow_seconds: float = 2.0
    retry_after: float = 1.0

    def update(self, values: dict) -> None:
        for f in fields(self):
            if f.name in values:
                value = float(values[f.name])
                if value < 0 or (f.name not in ("slow_seconds", "retry_after") and value > 1):
                    raise ValueError(f"{f.name} out of range")
                setattr(self, f.name, value)


class SiteState:
    def __init__(self, world: ListingWorld, faults: Faults, log_path: Path | None, seed: str):
        self.world = world
        self.faults = faults
        self.log: list[dict] = []
        self.log_path = log_path
        self.rng = random.Random(f"faults:{seed}")

    def record(self, entry: dict) -> None:
        entry["t"] = time.time()
        self.log.append(entry)
        if len(self.log) > 200_000:
            del self.log[:100_000]
        if self.log_path is not None:
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def pick_fault(self, op: str | None) -> str | None:
        f = self.faults
        roll = self.rng.random()
        names = ("rate_limit", "server_error", "slow", "malformed", "truncated") + (
            ("detail_error",) if op == "GetHomeDetails" else ()
        )
        for name in names:
            p = getattr(f, name)
            if roll < p:
                return name
            roll -= p
        return None


STATE: web.AppKey[SiteState] = web.AppKey("state", SiteState)


class Refused(Exception):
    """A request the site refuses for what it asks (HTTP 400 with a GraphQL error), whatever the faults."""

    def __init__(self, message: str, log: dict):
        super().__init__(message)
        self.log = log


def _graphql_answer(state: SiteState, body: dict, origin: str) -> tuple[dict, dict]:
    """(answer, log fields) of one GraphQL request."""
    op = body.get("operationName")
    variables = body["variables"] if isinstance(body.get("variables"), dict) else {}
    query = body["query"] if isinstance(body.get("query"), str) else ""
    now = time.time()
    if op == "Search_suggestions":
        term = str((variables.get("searchInput") or {}).get("search_term", "")).strip()
        log = {"op": op, "zipcode": term}
        info = market.zipcode_info(term) if re.fullmatch(r"\d{5}", term) else None
        if info is None or state.world.slot_count(term) == 0:
            return {"data": {"search_suggestions": {"geo_results": []}}}, log
        geo = {
            "_id": f"postal_code:{term}",
            "area_type": "postal_code",
            "postal_code": term,
            "city": info.city,
            "state_code": info.state,
            "county": info.county,
            "centroid": {"lat": info.latitude, "lon": info.longitude},
        }
        return {"data": {"search_suggestions": {"geo_results": [{"text": term, "geo": geo}]}}}, log
    if op == "GetHomeSearch":
        location = str((variables.get("search_location") or {}).get("location", "")).strip()
        offset = variables["offset"] if isinstance(variables.get("offset"), int) else 0
        match = _LIMIT.search(query)
        limit = min(int(match.group(1)), 200) if match else 200
        status = _STATUS.search(query)
        statuses = status.group(1) if status else ""
        log = {"op": op, "zipcode": location, "offset": offset}
        if "for_sale" in statuses:
            total, homes = state.world.page(location, offset, limit, now)
        elif "sold" in statuses and re.fullmatch(r"\d{5}", location):
            days = _SOLD_SINCE.search(query)
            sold = state.world.sold(location, now - int(days.group(1) if days else DEFAULT_SOLD_DAYS) * DAY, now)
            total, homes = len(sold), sold[max(0, offset) : max(0, offset) + limit]
            log["status"] = "sold"
        else:
            total, homes = 0, []
        results = [to_realtor(h, origin) for h in homes]
        return {
            "data": {"homeSearch": {"__typename": "HomeSearchResult", "count": len(results), "total": total, "results": results}}
        }, log
    if op == "GetHomeDetails":
        pid = str(variables.get("property_id", ""))[:64]
        log = {"op": op, "property_id": pid}
        if decode_property_id(pid) is None:
            raise Refused(f"Invalid property_id: {pid!r}", log)
        home = state.world.home(pid, now)
        return {"data": {"home": to_realtor(home, origin, history="property_history" in query) if home else None}}, log
    return {"errors": [{"message": f"unknown operation {op!r}"}], "data": None}, {"op": str(op)[:64]}


async def graphql(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        state.record({"op": "invalid", "status": 400})
        return web.json_response({"errors": [{"message": "body must be a JSON object"}]}, status=400)
    try:
        answer, log = _graphql_answer(state, body, str(request.url.origin()))
    except Refused as exc:
        state.record({**exc.log, "status": 400})
        return web.json_response({"errors": [{"message": str(exc)}], "data": None}, status=400)
    fault = state.pick_fault(log.get("op"))
    log["fault"] = fault
    if fault == "rate_limit":
        state.record({**log, "status": 429})
        return web.json_response(
            {"error": "Too Many Requests"}, status=429, headers={"Retry-After": f"{state.faults.retry_after:g}"}
        )
    if fault in ("server_error", "detail_error"):
        status = state.rng.choice((500, 502, 503))
        state.record({**log, "status": status})
        return web.Response(status=status, text="upstream error")
    if fault == "slow":
        await asyncio.sleep(state.faults.slow_seconds)
    if fault == "malformed":
        state.record({**log, "status": 200})
        return web.json_response({"data": None, "errors": [{"message": "Internal error while resolving"}]})
    text = json.dumps(answer)
    if fault == "truncated":
        text = text[: max(1, len(text) // 2)]
    state.record({**log, "status": 200})
    return web.Response(text=text, content_type="application/json")


async def detail_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    slug = request.match_info["slug"]
    pid = slug.rsplit("_M", 1)[-1] if "_M" in slug else ""
    home = state.world.home(pid, time.time())
    state.record({"op": "page", "property_id": pid, "status": 200 if home else 404})
    if home is None:
        return web.Response(status=404, text="listing not found")
    data = to_realtor(home, str(request.url.origin()), history=True)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in data.items())
    return web.Response(
        text=f"<html><body><h1>{html.escape(home.line)}</h1><table>{rows}</table>"
        f"<script type='application/json' id='listing'>{html.escape(json.dumps(data))}</script>"
        "</body></html>",
        content_type="text/html",
    )


async def admin_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if request.method == "POST":
        try:
            state.faults.update(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(asdict(state.faults))


async def admin_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].log)


async def admin_listings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    zipcode = request.query.get("zipcode", "")
    homes = state.world.current(zipcode, time.time()) if re.fullmatch(r"\d{5}", zipcode) else []
    return web.json_response([to_realtor(h, str(request.url.origin())) for h in homes])


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


INDEX = """The local listing site of a RESI local network (it speaks Realtor.com's GraphQL).
POST /frontdoor/graphql                   searches by zipcode and listings by id
GET  /realestateandhomes-detail/<slug>    a listing's page
GET  /_admin/listings?zipcode=NNNNN       the listings a zipcode has now (JSON)
GET  /_admin/requests                     every request answered (JSON)
GET|POST /_admin/faults                   the fault rates (JSON)
GET  /healthz
"""


async def index(request: web.Request) -> web.Response:
    return web.Response(text=INDEX)


def build_site(world: ListingWorld, faults: Faults | None = None, log_path: Path | None = None) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[STATE] = SiteState(world, faults or Faults(), log_path, world.config.seed)
    app.router.add_post("/frontdoor/graphql", graphql)
    app.router.add_get("/realestateandhomes-detail/{slug}", detail_page)
    app.router.add_route("*", "/_admin/faults", admin_faults)
    app.router.add_get("/_admin/requests", admin_requests)
    app.router.add_get("/_admin/listings", admin_listings)
    app.router.add_get("/healthz", health)
    app.router.add_get("/", index)
    return app


def main(argv: list[str] | None = None) -> int:
    from resi.config import Parser
    from resi.logs import setup_logging

    p = Parser(prog="python -m resi.localnet.site", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--seed", default="resi", help="the world's seed: same seed, same listings")
    p.add_argument("--scale", type=float, default=1.0, help="listing counts scale; equal to the API's --listings-scale")
    p.add_argument("--churn", type=float, default=1.0, help="lifecycles run this many times faster than real ones")
    p.add_argument("--request-log", type=Path, default=None, help="append every request as a JSON line here")
    for f in fields(Faults):
        p.add_argument(
            f"--fault-{f.name.replace('_', '-')}", dest=f.name, type=float, default=f.default, help=f"fault parameter {f.name}"
        )
    args = p.parse_args(argv)
    setup_logging(name="site")
    faults = Faults(**{f.name: getattr(args, f.name) for f in fields(Faults)})
    world = ListingWorld(WorldConfig(seed=args.seed, scale=args.scale, churn=args.churn))
    web.run_app(build_site(world, faults, args.request_log), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
