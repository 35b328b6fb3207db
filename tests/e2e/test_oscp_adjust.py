"""OSCP 2.0 end to end, what the Flexibility Provider sends of its own accord and what it checks,
against the Capacity Provider of test_oscp_flexibility (it validates every message against the
OCA's OSCP 2.0 JSON schemas and its headers):

* AdjustGroupCapacityForecast, asked for by the operator over the REST API, and by chargegrid
  when cars wait for room under the CP's forecast (once, not on every run of the balancer);
* GroupCapacityComplianceError when a station without smart charging alone is over the
  forecast, once for each block (forgotten once the block ended), or an offline station whose
  car holds more than its fallback;
* UpdateAssetMeasurements beside UpdateGroupMeasurements, each EVSE of the group;
* a Handshake's heartbeat_interval below 1, a HandshakeAcknowledge naming no Handshake, a retry
  (served once) and a reused X-Request-ID, a forecast in segments, a forecast for a group whose
  site was deleted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_client import Api, serving, wait_for
from stations import Driver, connect
from test_oscp_flexibility import CP_NEW, OUT_OF_BAND, SPEC, CapacityProvider, _iso, _registry

from chargegrid.bootstrap import App
from chargegrid.entrypoints.api.server import ApiServer


@dataclass
class Linked:
    """chargegrid with a CP that registered back and shook hands."""

    app: App
    api: Api
    cp: CapacityProvider
    client: httpx.AsyncClient
    fp: str  # chargegrid's OSCP base URL
    token: str  # what the CP presents to chargegrid

    async def post(
        self, name: str, body: Any, request_id: str | None = None, **headers: str
    ) -> httpx.Response:
        sent = {
            "Authorization": f"Token {self.token}",
            "X-Request-ID": request_id or str(uuid.uuid4()),
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        return await self.client.post(f"{self.fp}/{name}", json=body, headers=sent)

    async def forecast(self, amps: float, *blocks: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        body = {
            "group_id": "grp-1",
            "type": "CONSUMPTION",
            "forecasted_blocks": list(blocks) or [_block(amps, now - timedelta(minutes=1))],
        }
        answer = await self.post("update_group_capacity_forecast", body)
        assert answer.status_code == 204, answer.text


def _block(amps: float, start: datetime, minutes: int = 60) -> dict[str, Any]:
    return {
        "capacity": amps,
        "phase": "ALL",
        "unit": "A",
        "start_time": _iso(start),
        "end_time": _iso(start + timedelta(minutes=minutes)),
    }


@pytest.fixture
async def linked(fresh_db_url: Callable[[str], str]) -> AsyncIterator[Linked]:
    if not SPEC.is_dir():
        pytest.skip(f"needs ../shared/specs (the OSCP 2.0 schemas at {SPEC})")
    cp = CapacityProvider(_registry())
    server = ApiServer(cp.app(), "127.0.0.1", 0)
    await server.start()
    cp_url = f"http://127.0.0.1:{server.port}/cp/2.0"
    settings = {"oscp_measurement_interval": 1.0, "oscp_asset_measurements": True}
    try:
        async with (
            serving(fresh_db_url("sqlite"), **settings) as (app, api),
            httpx.AsyncClient(timeout=10) as client,
        ):
            site = {
                "circuits": [{"id": "grid", "limit_a": 63}],
                "evses": [
                    {"station_id": "OSCP-A", "evse_id": 1, "circuit": "grid"},
                    {"station_id": "OSCP-B", "evse_id": 1, "circuit": "grid"},
                ],
            }
            await api.put("/sites/depot", site)
            peer = {"id": "dso", "base_url": cp_url, "token": OUT_OF_BAND}
            await api.post("/oscp/peers", {**peer, "groups": {"grp-1": "depot"}}, 201)
            await wait_for(lambda: _has(cp, "register"), timeout=5)
            _, register = cp.of("register")[0]
            linked = Linked(
                app, api, cp, client, register["version_url"][0]["base_url"], register["token"]
            )
            cp.expected_token = CP_NEW
            back = {"token": CP_NEW, "version_url": [{"version": "2.0", "base_url": cp_url}]}
            assert (await linked.post("register", back)).status_code == 204
            behaviour = {"heartbeat_interval": 60, "measurement_configuration": ["INTERMITTENT"]}
            handshake = {"required_behaviour": behaviour}
            assert (await linked.post("handshake", handshake)).status_code == 204
            await wait_for(lambda: _has(cp, "handshake_acknowledge"), timeout=5)
            yield linked
    finally:
        await server.stop()


async def _has(cp: CapacityProvider, message: str, count: int = 1) -> bool:
    return len(cp.of(message)) >= count


async def test_the_operator_asks_for_capacity(linked: Linked) -> None:
    api, cp = linked.api, linked.cp
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    block = {
        "capacity": 40,
        "unit": "KW",
        "start": _iso(start),
        "end": _iso(start + timedelta(minutes=15)),
    }
    path = "/oscp/peers/dso/groups/grp-1/adjust"
    answer = await api.post(path, {"blocks": [block]}, 200)
    [(headers, body)] = cp.of("adjust_group_capacity_forecast")
    assert headers["x-request-id"] == answer["request_id"]
    assert body == {
        "group_id": "grp-1",
        "type": "CONSUMPTION",
        "forecasted_blocks": [
            {
                "capacity": 40.0,
                "phase": "ALL",
                "unit": "KW",
                "start_time": _iso(start),
                "end_time": _iso(start + timedelta(minutes=15)),
            }
        ],
    }
    await api.post("/oscp/peers/dso/groups/grp-9/adjust", {"blocks": [block]}, 404)
    await api.post("/oscp/peers/nobody/groups/grp-1/adjust", {"blocks": [block]}, 404)
    await api.post(path, {"blocks": []}, 422)
    await api.post(path, {"blocks": [{**block, "capacity": -1}]}, 422)
    await api.post(path, {"blocks": [{**block, "end": block["start"]}]}, 422)
    cp.expected_token = "another"  # the CP refuses: the operator hears of it
    assert "answered 401" in (await api.post(path, {"blocks": [block]}, 409))["detail"]
    cp.problems.clear()


async def test_waiting_cars_ask_for_room_and_assets_are_measured(linked: Linked) -> None:
    cp = linked.cp
    async with (
        connect(linked.app.server.port, "OSCP-A", "2.0.1") as a,
        connect(linked.app.server.port, "OSCP-B", "2.0.1") as b,
    ):
        first, second = Driver(a, "2.0.1"), Driver(b, "2.0.1")
        assert await first.boot() == "Accepted" and await second.boot() == "Accepted"
        await linked.forecast(10)  # room for one car's 6 A, not two
        tx_a, _ = await first.start("CARD-1", 1000, tx_id="tx-a")
        tx_b, _ = await second.start("CARD-1", 500, tx_id="tx-b")

        await wait_for(lambda: _has(cp, "adjust_group_capacity_forecast"), timeout=5)
        _, asked = cp.of("adjust_group_capacity_forecast")[0]
        assert asked["group_id"] == "grp-1" and asked["type"] == "CONSUMPTION"
        [block] = asked["forecasted_blocks"]
        assert (block["capacity"], block["unit"], block["phase"]) == (16.0, "A", "ALL")

        for wh in (1500, 2500):  # more runs of the balancer: no second request
            await first.meter(tx_a, wh)
            await second.meter(tx_b, wh - 500)

        async def measured() -> bool:  # 1500 Wh each, over however many reports
            totals: dict[str, float] = {}
            for _, body in cp.of("update_asset_measurements"):
                for m in body["measurements"]:
                    value = m["energy_measurement"]["value"]
                    totals[m["asset_id"]] = totals.get(m["asset_id"], 0) + value
            return totals == {"OSCP-A/1": 1500, "OSCP-B/1": 1500}

        await wait_for(measured, timeout=6)
        _, body = cp.of("update_asset_measurements")[-1]
        for asset in body["measurements"]:
            assert asset["asset_category"] == "CHARGING"
            assert asset["instantaneous_measurement"]["unit"] == "W"
        assert len(cp.of("adjust_group_capacity_forecast")) == 1
    assert cp.problems == []


async def test_a_station_without_smart_charging_over_the_forecast(linked: Linked) -> None:
    api, cp = linked.api, linked.cp
    dumb = {"circuit": "grid", "smart": False, "fallback_a": 16}
    await api.put("/sites/depot/evses/DUMB/1", dumb)
    now = datetime.now(UTC)
    await linked.forecast(0, _block(10, now - timedelta(minutes=1)), _block(32, now, 120))
    await wait_for(lambda: _has(cp, "group_capacity_compliance_error"), timeout=5)
    _, error = cp.of("group_capacity_compliance_error")[0]
    assert "grp-1" in error["message"] and "DUMB/1" in error["message"]
    assert [b["capacity"] for b in error["forecasted_blocks"]] == [10]
    await api.put("/sites/depot/evses/DUMB/1", {**dumb, "fallback_a": 15})  # another run
    await asyncio.sleep(0.6)
    assert len(cp.of("group_capacity_compliance_error")) == 1
    assert cp.problems == []


async def test_a_compliance_error_is_forgotten_when_its_block_ends(linked: Linked) -> None:
    api, cp = linked.api, linked.cp
    assert linked.app.oscp is not None
    live = linked.app.oscp.live("dso")
    await api.put(
        "/sites/depot/evses/DUMB/1", {"circuit": "grid", "smart": False, "fallback_a": 16}
    )
    now = datetime.now(UTC)
    short = {**_block(10, now - timedelta(minutes=1)), "end_time": _iso(now + timedelta(seconds=2))}
    await linked.forecast(0, short)
    await wait_for(lambda: _has(cp, "group_capacity_compliance_error"), timeout=5)
    assert len(live.reported["grp-1"]) == 1

    async def forgotten() -> bool:
        return "grp-1" not in live.reported

    await wait_for(forgotten, timeout=6)
    assert cp.problems == []


async def test_an_offline_station_counts_at_what_its_car_holds(linked: Linked) -> None:
    """The balancer counts the car of an offline station at the profile it took, above the 6 A
    fallback: so does the compliance check."""
    api, cp = linked.api, linked.cp
    await linked.forecast(40)
    async with connect(linked.app.server.port, "OSCP-A", "2.0.1") as a:
        first = Driver(a, "2.0.1")
        assert await first.boot() == "Accepted"
        await first.start("CARD-1", 1000, tx_id="tx-a")

        async def took_a_profile() -> bool:
            return any(action == "SetChargingProfile" for action, _ in a.received)

        await wait_for(took_a_profile, timeout=5)

    async def counted_offline() -> bool:
        plan = await api.get("/sites/depot/plan")
        held = {x["evse"]: (x["state"], x["current_a"]) for x in plan["allocations"]}
        return held.get("OSCP-A/1", ("", 0.0))[0] == "fixed" and held["OSCP-A/1"][1] > 16

    await wait_for(counted_offline, timeout=5)
    await linked.forecast(16)  # over it: A's car alone, B (offline, 6 A) besides
    await wait_for(lambda: _has(cp, "group_capacity_compliance_error"), timeout=5)
    _, error = cp.of("group_capacity_compliance_error")[0]
    assert "OSCP-A/1" in error["message"] and "OSCP-B/1" in error["message"]
    assert [b["capacity"] for b in error["forecasted_blocks"]] == [16]
    assert cp.problems == []


async def test_what_the_fp_checks(linked: Linked) -> None:
    cp = linked.cp
    too_often = {"required_behaviour": {"heartbeat_interval": 0.5, "measurement_configuration": []}}
    assert (await linked.post("handshake", too_often)).status_code == 400
    answer = await linked.post("handshake_acknowledge", {})
    assert answer.status_code == 400 and "X-Correlation-ID" in answer.json()["message"]
    # a retry is served once; the same id for another body is refused
    handshake = {"required_behaviour": {"heartbeat_interval": 30, "measurement_configuration": []}}
    for _ in range(2):
        assert (await linked.post("handshake", handshake, "hs-again")).status_code == 204
    await wait_for(lambda: _has(cp, "handshake_acknowledge", 2), timeout=5)
    await asyncio.sleep(0.3)
    assert len(cp.of("handshake_acknowledge")) == 2  # the fixture's, and one for hs-again
    assert (await linked.post("handshake", {}, "hs-again")).status_code == 400

    # a forecast in two segments is applied whole when the second is in
    now = datetime.now(UTC)
    first, second = _block(20, now - timedelta(minutes=1)), _block(12, now + timedelta(hours=1))
    part = {"group_id": "grp-1", "type": "CONSUMPTION"}
    segment = {"X_Segment_Count": "2"}
    answer = await linked.post(
        "update_group_capacity_forecast",
        {**part, "forecasted_blocks": [second]},
        "seg-2",
        X_Segment_Index="2",
        X_Correlation_ID="seg-1",
        **segment,
    )
    assert answer.status_code == 400  # no first segment yet
    for index, block, request_id, before in (
        (1, first, "seg-1", None),
        (2, second, "seg-2", "seg-1"),
    ):
        correlated = {"X_Correlation_ID": before} if before else {}
        answer = await linked.post(
            "update_group_capacity_forecast",
            {**part, "forecasted_blocks": [block]},
            request_id,
            X_Segment_Index=str(index),
            **segment,
            **correlated,
        )
        assert answer.status_code == 204, answer.text

    async def both_blocks() -> bool:
        plan = await linked.api.get("/sites/depot/plan")
        return bool(plan["limits"].get("grid", {}).get("limit_a") == 20.0)

    await wait_for(both_blocks, timeout=5)
    assert linked.app.balancer is not None
    later = linked.app.balancer.limits("depot", now + timedelta(hours=1, minutes=5))
    assert later["grid"].limit_a == 12.0

    # the group's site is deleted: a forecast for it is refused like that of a group not known
    await linked.api.delete("/sites/depot")
    answer = await linked.post(
        "update_group_capacity_forecast", {**part, "forecasted_blocks": [first]}
    )
    assert answer.status_code == 400, answer.text
    assert "depot" in answer.json()["message"]
    assert cp.problems == []
