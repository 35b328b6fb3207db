"""OpenADR 3 end to end: chargegrid as the VEN of a VTN started by the test (our own, over real
HTTP on loopback; it checks every request body it receives and every response body it sends
against the OpenADR 3.0.1 OpenAPI schemas in ../shared/specs, and the bearer token of each
request).

The VTN grants a token for the VEN's client credentials, lists two programs (one the VEN
follows) and an event of each lowering the site's import capacity (the followed one in two
intervals, with a price, asking for USAGE and DEMAND reports). Within seconds the stations of
both OCPP versions have charging profiles whose sum keeps within the capacity of each interval,
the site's price is the event's, the VEN's report reaches the VTN, and when the VTN deletes the
event the cars get their share of the whole grid connection back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import openadr3_oracle as oracle
import pytest
from api_client import Api, serving, wait_for
from litestar import Litestar, Request, Response, get, post
from stations import Driver, connect

from chargegrid.bootstrap import App
from chargegrid.entrypoints.api.server import ApiServer

BASE = "/openadr3/3.0.1"
CLIENT_ID = "ven-e2e"
CLIENT_SECRET = "ven-e2e-secret-given-out-of-band"
ACCESS_TOKEN = "vtn-issued-access-token-1"
VOLTS = 230.0


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Vtn:
    """The VTN's objects and what it received; every body in and out checked on the way."""

    programs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    tokens_granted: int = 0
    problems: list[str] = field(default_factory=list)

    def _check(self, schema: str, body: Any, where: str) -> list[str]:
        found = oracle.errors(schema, body)
        self.problems += [f"{where}: {e}" for e in found]
        return found

    def _answer(self, schema: str, body: Any, status: int = 200) -> Response[bytes]:
        items = body if isinstance(body, list) else [body]
        for item in items:
            self._check(schema, item, f"our own {schema} answer")
        return Response(
            json.dumps(body).encode(), status_code=status, media_type="application/json"
        )

    def _refuse(self, status: int, title: str, where: str) -> Response[bytes]:
        self.problems.append(f"{where}: {title}")
        problem = {"title": title, "status": status}
        return self._answer("problem", problem, status)

    def _authorized(self, request: Request[Any, Any, Any]) -> bool:
        return request.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}"

    def _paged(
        self, request: Request[Any, Any, Any], items: list[Any], name: str
    ) -> Response[bytes]:
        if not self._authorized(request):
            return self._refuse(403, "no valid bearer token", f"GET {name}")
        try:
            skip = int(request.query_params.get("skip", 0))
            limit = int(request.query_params.get("limit", 50))
        except ValueError:
            return self._refuse(400, "skip and limit are integers", f"GET {name}")
        if skip < 0 or not 0 <= limit <= 50:
            return self._refuse(400, "skip >= 0, limit 0 to 50", f"GET {name}")
        return self._answer(name, items[skip : skip + limit])

    def app(self) -> Litestar:
        @post(f"{BASE}/auth/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
            if request.headers.get("content-type") != "application/x-www-form-urlencoded":
                return self._refuse(400, "not a form", "POST auth/token")
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if self._check("clientCredentialRequest", form, "POST auth/token"):
                return self._answer("authError", {"error": "invalid_request"}, 400)
            if (form["client_id"], form["client_secret"]) != (CLIENT_ID, CLIENT_SECRET):
                return self._answer("authError", {"error": "invalid_client"}, 400)
            self.tokens_granted += 1
            grant = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}
            return self._answer("clientCredentialResponse", grant)

        @get(f"{BASE}/programs")
        async def programs(request: Request[Any, Any, Any]) -> Response[bytes]:
            return self._paged(request, self.programs, "program")

        @get(f"{BASE}/events")
        async def events(request: Request[Any, Any, Any]) -> Response[bytes]:
            return self._paged(request, self.events, "event")

        @post(f"{BASE}/reports", status_code=201)
        async def reports(request: Request[Any, Any, Any]) -> Response[bytes]:
            if not self._authorized(request):
                return self._refuse(403, "no valid bearer token", "POST report")
            body = json.loads(await request.body())
            if self._check("report", body, "POST report"):
                return self._answer("problem", {"title": "not a report", "status": 400}, 400)
            now = _iso(datetime.now(UTC))
            stored = {
                **body,
                "id": f"report-{len(self.reports) + 1}",
                "createdDateTime": now,
                "modificationDateTime": now,
                "objectType": "REPORT",
            }
            self.reports.append(stored)
            return self._answer("report", stored, 201)

        return Litestar(
            [token, programs, events, reports], openapi_config=None, logging_config=None
        )


def _program(program_id: str, name: str) -> dict[str, Any]:
    now = _iso(datetime.now(UTC))
    return {
        "id": program_id,
        "createdDateTime": now,
        "modificationDateTime": now,
        "objectType": "PROGRAM",
        "programName": name,
        "programLongName": f"{name} demand response",
        "retailerName": "DSO",
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "IMPORT_CAPACITY_LIMIT",
                "units": "KW",
            }
        ],
    }


def _capacity_event(
    event_id: str, program_id: str, start: datetime, kws: list[float]
) -> dict[str, Any]:
    now = _iso(datetime.now(UTC))
    return {
        "id": event_id,
        "createdDateTime": now,
        "modificationDateTime": now,
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": f"capacity {event_id}",
        "priority": 0,
        "targets": [{"type": "VEN_NAME", "values": ["chargegrid-e2e"]}],
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "IMPORT_CAPACITY_LIMIT",
                "units": "KW",
            },
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "PRICE",
                "units": "KWH",
                "currency": "EUR",
            },
        ],
        "reportDescriptors": [{"payloadType": "USAGE", "units": "KWH"}, {"payloadType": "DEMAND"}],
        "intervalPeriod": {"start": _iso(start), "duration": "PT30M"},
        "intervals": [
            {
                "id": i,
                "payloads": [
                    {"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]},
                    {"type": "PRICE", "values": [0.25]},
                ],
            }
            for i, kw in enumerate(kws)
        ],
    }


@dataclass
class World:
    app: App
    api: Api
    vtn: Vtn


@pytest.fixture
async def world(fresh_db_url: Callable[[str], str]) -> AsyncIterator[World]:
    oracle.skip_without_specs()
    vtn = Vtn()
    server = ApiServer(vtn.app(), "127.0.0.1", 0)
    await server.start()
    settings = {
        "openadr3_vtn_url": f"http://127.0.0.1:{server.port}{BASE}",
        "openadr3_client_id": CLIENT_ID,
        "openadr3_client_secret": CLIENT_SECRET,
        "openadr3_site": "depot",
        "openadr3_programs": ("EV-CAP",),
        "openadr3_ven_name": "chargegrid-e2e",
        "openadr3_poll_interval": 0.2,
        "openadr3_report_interval": 1.0,
    }
    try:
        async with serving(fresh_db_url("sqlite"), **settings) as (app, api):
            yield World(app, api, vtn)
    finally:
        await server.stop()


def _tx_profile(cp: Any) -> dict[str, Any] | None:
    """The last TxProfile the station received (1.6 or 2.0.1, as the ocpp package gives it)."""
    for action, request in reversed(cp.received):
        if action != "SetChargingProfile":
            continue
        profile = request.get("cs_charging_profiles") or request.get("charging_profile")
        if profile["charging_profile_purpose"] == "TxProfile":
            return dict(profile)
    return None


def _limit_at(profile: dict[str, Any], moment: datetime) -> float:
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    start = datetime.fromisoformat(schedule["start_schedule"].replace("Z", "+00:00"))
    limit = 0.0
    for period in schedule["charging_schedule_period"]:
        if start + timedelta(seconds=period["start_period"]) <= moment:
            limit = float(period["limit"])
    return limit


async def test_an_event_limits_the_site_and_is_reported(world: World) -> None:
    api, vtn = world.api, world.vtn
    site = {
        "circuits": [{"id": "grid", "limit_a": 32}],
        "evses": [
            {"station_id": "ADR3-A", "evse_id": 1, "circuit": "grid"},
            {"station_id": "ADR3-B", "evse_id": 1, "circuit": "grid", "wiring": "L2L3L1"},
        ],
    }
    await api.put("/sites/depot", site)
    port = world.app.server.port
    async with connect(port, "ADR3-A", "2.0.1") as a, connect(port, "ADR3-B", "1.6") as b:
        cars = {a: Driver(a, "2.0.1"), b: Driver(b, "1.6")}
        txs = {}
        for cp, driver in cars.items():
            assert await driver.boot() == "Accepted"
            txs[cp], _ = await driver.start("CARD-1", 1000, tx_id=f"tx-{id(cp)}")

        async def first_limits(expected: float) -> bool:
            profiles = [_tx_profile(cp) for cp in cars]
            now = datetime.now(UTC)
            return all(p is not None and _limit_at(p, now) == expected for p in profiles)

        await wait_for(lambda: first_limits(16.0), timeout=5)  # 32 A shared, no event yet

        start = datetime.now(UTC) - timedelta(minutes=1)
        vtn.programs = [_program("prog-other", "OTHER"), _program("prog-ev", "EV-CAP")]
        vtn.events = [
            _capacity_event("evt-other", "prog-other", start, [0.0]),  # not followed
            _capacity_event("evt-cap", "prog-ev", start, [13.8, 9.66]),  # 20 A, then 14 A
        ]
        await wait_for(lambda: first_limits(10.0), timeout=10)

        plan = await api.get("/sites/depot/plan")
        phases = {x["evse"]: len(x["phases"]) for x in plan["allocations"]}
        assert set(phases.values()) == {3}
        profiles = [p for p in (_tx_profile(cp) for cp in cars) if p is not None]
        half = start + timedelta(minutes=30)
        for moment, limit_w in [
            (datetime.now(UTC), 13800.0),
            (half - timedelta(seconds=5), 13800.0),
            (half + timedelta(seconds=5), 9660.0),
            (half + timedelta(minutes=29), 9660.0),
        ]:
            drawn = sum(_limit_at(p, moment) * VOLTS * 3 for p in profiles)
            assert 0 < drawn <= limit_w + 1e-6, (moment, drawn, limit_w)
        after = sum(_limit_at(p, half + timedelta(minutes=31)) for p in profiles)
        assert after == 32.0  # the event is over: the grid connection's 32 A again

        price = world.app.balancer.price("depot") if world.app.balancer else None
        assert price is not None and (price.price_per_kwh, price.currency) == (0.25, "EUR")

        for cp, driver in cars.items():
            await driver.meter(txs[cp], 2500)

        async def reported() -> bool:
            return any(
                r["eventID"] == "evt-cap"
                and r["resources"][0]["intervals"][0]["payloads"][0]["values"][0] > 0
                for r in vtn.reports
            )

        await wait_for(reported, timeout=10)
        report = next(r for r in vtn.reports if r["eventID"] == "evt-cap")
        assert (report["programID"], report["clientName"]) == ("prog-ev", "chargegrid-e2e")
        kinds = [p["type"] for p in report["resources"][0]["intervals"][0]["payloads"]]
        assert kinds == ["USAGE", "DEMAND"]
        assert all(r["eventID"] == "evt-cap" for r in vtn.reports)

        vtn.events = [e for e in vtn.events if e["id"] != "evt-cap"]  # the VTN deletes it
        await wait_for(lambda: first_limits(16.0), timeout=10)

    assert vtn.tokens_granted == 1
    assert vtn.problems == []
