"""OSCP 2.0 end to end: chargegrid as Flexibility Provider of a Capacity Provider started by the
test (our own peer, checking every message it receives against the OCA's OSCP 2.0 JSON schemas
in ../shared/specs, and its headers: the token it expects, a request id, the correlation id of
a reply).

The CP is added over the REST API; chargegrid registers at it; the CP registers back with a new
token and shakes hands (chargegrid acknowledges, correlated); a capacity forecast for the CP's
group becomes the site's limit and the charging station's profile follows; heartbeats and
measurements of the energy charged reach the CP. Requests that do not hold get the status and an
OSCP Error body.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from api_client import Api, serving, wait_for
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from referencing import Registry, Resource
from stations import Driver, connect

from chargegrid.bootstrap import App
from chargegrid.entrypoints.api.server import ApiServer

SPEC = Path(__file__).parents[3] / "shared/specs/oscp/2.0/schemas"
OUT_OF_BAND = "cp-token-given-out-of-band"
CP_NEW = "cp-token-from-its-register"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry()
    for path in sorted(SPEC.glob("*.json")):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents)
        base = contents["$id"].rsplit("/", 1)[0]
        registry = registry.with_resource(contents["$id"], resource)
        registry = registry.with_resource(f"{base}/{path.name}", resource)  # see test_oscp.py
    return registry.crawl()


@dataclass
class CapacityProvider:
    """What the peer received: (message, headers, body), every one checked on arrival."""

    registry: Registry[Any]
    expected_token: str = OUT_OF_BAND
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def app(self) -> Litestar:
        formats = jsonschema.FormatChecker(formats=())

        @formats.checks("date-time")
        def date_time(value: object) -> bool:
            return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None

        @post("/cp/2.0/{message:str}", status_code=200)
        async def receive(request: Request[Any, Any, Any], message: FromPath[str]) -> Response[Any]:
            headers = {k.lower(): v for k, v in request.headers.items()}
            body = json.loads(await request.body())
            if headers.get("authorization") != f"Token {self.expected_token}":
                self.problems.append(f"{message}: token {headers.get('authorization')!r}")
                return Response({"message": "unknown token"}, status_code=401)
            if not headers.get("x-request-id"):
                self.problems.append(f"{message}: no X-Request-ID")
            schema = json.loads((SPEC / f"{message.replace('_', '-')}.json").read_text())
            validator = jsonschema.Draft7Validator(
                schema, registry=self.registry, format_checker=formats
            )
            errors = [e.message for e in validator.iter_errors(body)]
            if errors:
                self.problems.append(f"{message}: {errors}")
                return Response({"message": "; ".join(errors)}, status_code=400)
            self.received.append((message, headers, body))
            return Response(None, status_code=204)

        return Litestar([receive], openapi_config=None, logging_config=None)

    def of(self, message: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(h, b) for m, h, b in self.received if m == message]


@dataclass
class World:
    app: App
    api: Api
    cp: CapacityProvider
    cp_url: str


@pytest.fixture
async def world(fresh_db_url: Callable[[str], str]) -> AsyncIterator[World]:
    if not SPEC.is_dir():
        pytest.skip(f"needs ../shared/specs (the OSCP 2.0 schemas at {SPEC})")
    cp = CapacityProvider(_registry())
    server = ApiServer(cp.app(), "127.0.0.1", 0)
    await server.start()
    try:
        async with serving(fresh_db_url("sqlite"), oscp_measurement_interval=1.0) as (app, api):
            site = {
                "circuits": [{"id": "grid", "limit_a": 63}],
                "evses": [{"station_id": "OSCP-A", "evse_id": 1, "circuit": "grid"}],
            }
            await api.put("/sites/depot", site)
            yield World(app, api, cp, f"http://127.0.0.1:{server.port}/cp/2.0")
    finally:
        await server.stop()


def _headers(token: str, request_id: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Token {token}",
        "X-Request-ID": request_id or str(uuid.uuid4()),  # a new request: a new id
        "Content-Type": "application/json",
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_capacity_provider_sets_the_limit(world: World) -> None:
    api, cp = world.api, world.cp
    peer = {
        "id": "dso",
        "base_url": world.cp_url,
        "token": OUT_OF_BAND,
        "groups": {"grp-1": "depot"},
    }
    added = await api.post("/oscp/peers", peer, 201)
    assert "token" not in added and added["state"] == "registering"

    async def registered() -> bool:
        return bool(cp.of("register"))

    await wait_for(registered, timeout=5)
    _, register = cp.of("register")[0]
    fp_token = register["token"]
    [version] = register["version_url"]
    assert version["version"] == "2.0"
    fp = version["base_url"]

    async with httpx.AsyncClient(timeout=10) as client:
        # the CP registers back, with the token chargegrid is to use from now on
        cp.expected_token = CP_NEW
        back = {"token": CP_NEW, "version_url": [{"version": "2.0", "base_url": world.cp_url}]}
        answer = await client.post(f"{fp}/register", json=back, headers=_headers(fp_token))
        assert answer.status_code == 204, answer.text
        handshake = {
            "required_behaviour": {
                "heartbeat_interval": 1,
                "measurement_configuration": ["INTERMITTENT"],
            }
        }
        answer = await client.post(
            f"{fp}/handshake", json=handshake, headers=_headers(fp_token, "hs-1")
        )
        assert answer.status_code == 204, answer.text

        async def acknowledged() -> bool:
            return bool(cp.of("handshake_acknowledge"))

        await wait_for(acknowledged, timeout=5)
        headers, _ = cp.of("handshake_acknowledge")[0]
        assert headers["x-correlation-id"] == "hs-1"

        async with connect(world.app.server.port, "OSCP-A", "2.0.1") as station:
            driver = Driver(station, "2.0.1")
            assert await driver.boot() == "Accepted"
            tx, _ = await driver.start("CARD-1", 1000, tx_id="tx-oscp")

            async def limit_is(value: float) -> bool:
                sent = [
                    r["charging_profile"]
                    for a, r in station.received
                    if a == "SetChargingProfile"
                    and r["charging_profile"]["charging_profile_purpose"] == "TxProfile"
                ]
                if not sent:
                    return False
                period = sent[-1]["charging_schedule"][0]["charging_schedule_period"][0]
                return float(period["limit"]) == value

            await wait_for(lambda: limit_is(32.0), timeout=5)

            now = datetime.now(UTC)
            forecast = {
                "group_id": "grp-1",
                "type": "CONSUMPTION",
                "forecasted_blocks": [
                    {
                        "capacity": 20,
                        "phase": "ALL",
                        "unit": "A",
                        "start_time": _iso(now - timedelta(minutes=1)),
                        "end_time": _iso(now + timedelta(hours=1)),
                    }
                ],
            }
            answer = await client.post(
                f"{fp}/update_group_capacity_forecast", json=forecast, headers=_headers(fp_token)
            )
            assert answer.status_code == 204, answer.text
            await wait_for(lambda: limit_is(20.0), timeout=5)
            plan = await api.get("/sites/depot/plan")
            assert plan["limits"]["grid"]["limit_a"] == 20.0

            for wh in (2000, 3500):  # energy the CP is told of
                await driver.meter(tx, wh)

            async def measured() -> bool:
                return any(
                    m["measurements"][0]["value"] >= 2500
                    for _, m in cp.of("update_group_measurements")
                )

            await wait_for(measured, timeout=6)
            await wait_for(lambda: _beats(cp), timeout=5)

        # what does not hold: status and an OSCP Error body
        cases = [
            ("handshake", {}, "not-a-token", 401),
            ("nowhere", {}, fp_token, 404),
            ("update_group_capacity_forecast", {"group_id": "grp-1"}, fp_token, 400),
            ("update_group_capacity_forecast", {**forecast, "group_id": "grp-9"}, fp_token, 400),
            ("update_group_measurements", {"group_id": "grp-1", "measurements": []}, fp_token, 400),
        ]
        for name, body, token, status in cases:
            answer = await client.post(f"{fp}/{name}", json=body, headers=_headers(token))
            assert answer.status_code == status, (name, answer.text)
            assert "message" in answer.json(), name
            assert "names another request" not in answer.json()["message"], name
        no_id = {"Authorization": f"Token {fp_token}"}
        answer = await client.post(f"{fp}/heartbeat", json={}, headers=no_id)
        assert answer.status_code == 400

    assert cp.problems == []
    assert (await api.get("/oscp/peers"))[0]["state"] == "handshaken"
    await api.delete("/oscp/peers/dso", 204)
    plan = await api.get("/sites/depot/plan")
    assert plan["limits"] == {}  # the CP's limits went with it


async def _beats(cp: CapacityProvider) -> bool:
    return len(cp.of("heartbeat")) >= 1


async def test_peers_refused(world: World) -> None:
    api = world.api
    peer = {"id": "dso", "base_url": world.cp_url, "token": "t", "groups": {"g": "nowhere"}}
    assert "site nowhere" in (await api.post("/oscp/peers", peer, 422))["detail"]
    peer["groups"] = {"g": "depot/attic"}
    assert "no circuit attic" in (await api.post("/oscp/peers", peer, 422))["detail"]
    peer["groups"] = {"g": "depot/grid"}
    await api.post("/oscp/peers", peer, 201)
    await api.post("/oscp/peers", peer, 409)
    await api.delete("/oscp/peers/nobody", 404)
