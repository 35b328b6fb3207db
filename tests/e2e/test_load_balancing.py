"""Load balancing end to end: a site made over the REST API, stations of the `ocpp` package (both
versions) connected over WebSockets, and the charging profiles they receive.

A 32 A grid connection feeds three EVSEs. Each station gets a TxDefaultProfile at its fallback
current when it boots; each car a TxProfile when its transaction starts, and a new one whenever
the sharing changes (another car arrives or leaves, the operator lowers a limit, a station goes
offline and is counted at its fallback). At every moment the currents the stations were last
told sum to at most the limit in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_client import Api, serving, wait_for
from stations import Driver, connect

from chargegrid.adapters.storage.sites import open_site_store
from chargegrid.bootstrap import App, SystemClock
from chargegrid.domain.site import Circuit
from chargegrid.service.sites import Sites

SITE = {
    "name": "Depot",
    "circuits": [{"id": "grid", "limit_a": 32}],
    "evses": [
        {"station_id": "LB-A", "evse_id": 1, "circuit": "grid", "fallback_a": 6},
        {"station_id": "LB-B", "evse_id": 1, "circuit": "grid", "wiring": "L2L3L1"},
        {"station_id": "LB-C", "evse_id": 1, "circuit": "grid", "wiring": "L3L1L2"},
    ],
}


@pytest.fixture
async def world(fresh_db_url: Callable[[str], str]) -> AsyncIterator[tuple[App, Api]]:
    async with serving(fresh_db_url("sqlite")) as (app, api):
        yield app, api


def _profiles(cp: Any, purpose: str) -> list[dict[str, Any]]:
    """The SetChargingProfile requests of ``purpose`` the station received, oldest first."""
    out = []
    for action, request in cp.received:
        if action != "SetChargingProfile":
            continue
        profile = request.get("cs_charging_profiles") or request.get("charging_profile")
        if profile["charging_profile_purpose"] == purpose:
            out.append(profile)
    return out


def _limit(profile: dict[str, Any]) -> float:
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return float(schedule["charging_schedule_period"][0]["limit"])


def _last(cp: Any) -> float | None:
    sent = _profiles(cp, "TxProfile")
    return _limit(sent[-1]) if sent else None


async def test_cars_share_the_grid_connection(world: tuple[App, Api]) -> None:
    app, api = world
    site = await api.put("/sites/depot", SITE)
    assert [e["wiring"] for e in site["evses"]] == ["L1L2L3", "L2L3L1", "L3L1L2"]
    port = app.server.port
    async with (
        connect(port, "LB-A", "2.0.1") as a,
        connect(port, "LB-B", "1.6") as b,
        connect(port, "LB-C", "2.0.1") as c,
    ):
        cars = {"a": Driver(a, "2.0.1"), "b": Driver(b, "1.6"), "c": Driver(c, "2.0.1")}
        for driver in cars.values():
            assert await driver.boot() == "Accepted"

        async def defaults() -> bool:
            return all(_profiles(cp, "TxDefaultProfile") for cp in (a, b, c))

        await wait_for(defaults, timeout=5)
        assert _limit(_profiles(a, "TxDefaultProfile")[0]) == 6.0

        tx_a, _ = await cars["a"].start("CARD-1", 1000, tx_id="tx-a")
        tx_b, _ = await cars["b"].start("CARD-1", 1000)

        async def told(expected: dict[Any, float | None]) -> bool:
            return all(_last(cp) == limit for cp, limit in expected.items())

        # C is idle: its EVSE takes nothing; A and B share 32 A
        await wait_for(lambda: told({a: 16.0, b: 16.0}), timeout=5)
        tx_c, _ = await cars["c"].start("CARD-1", 1000, tx_id="tx-c")
        await wait_for(lambda: told({a: 10.6, b: 10.6, c: 10.6}), timeout=5)
        plan = await api.get("/sites/depot/plan")
        assert sum(x["current_a"] for x in plan["allocations"]) <= 32
        assert [x["phases"] for x in plan["allocations"]] == [
            ["L1", "L2", "L3"],
            ["L2", "L3", "L1"],
            ["L3", "L1", "L2"],
        ]

        # the operator (or the grid operator) lowers the limit: 20 A is three minimums, 18 A
        await api.put("/sites/depot/limits", {"circuits": {"grid": {"limit_a": 20}}})
        await wait_for(lambda: told({a: 6.6, b: 6.6, c: 6.6}), timeout=5)
        await api.put("/sites/depot/limits", {"circuits": {"grid": {"limit_a": 15}}})
        await wait_for(lambda: told({a: 7.5, b: 7.5, c: 0.0}), timeout=5)  # the last arrival
        plan = await api.get("/sites/depot/plan")
        assert [x["state"] for x in plan["allocations"]] == ["charging", "charging", "paused"]
        assert plan["limits"] == {"grid": {"limit_a": 15.0, "limit_w": None}}

        await cars["b"].stop(tx_b, 5000)
        await wait_for(lambda: told({a: 7.5, c: 7.5}), timeout=5)
        await api.put("/sites/depot/limits", {"circuits": {}})
        await wait_for(lambda: told({a: 16.0, c: 16.0}), timeout=5)
        transaction_ids = {p["transaction_id"] for p in _profiles(a, "TxProfile")}
        assert transaction_ids == {tx_a}
        assert {p["transaction_id"] for p in _profiles(c, "TxProfile")} == {tx_c}
        sent_to_a = len(_profiles(a, "TxProfile"))

    # the stations went offline: nothing more is sent, and they count at their fallback
    plan = await api.get("/sites/depot/plan")
    assert {x["state"] for x in plan["allocations"]} == {"fixed"}
    assert len(_profiles(a, "TxProfile")) == sent_to_a


async def test_only_changes_are_sent(world: tuple[App, Api]) -> None:
    app, api = world
    await api.put("/sites/depot", SITE)
    async with connect(app.server.port, "LB-A", "2.0.1") as a:
        driver = Driver(a, "2.0.1")
        assert await driver.boot() == "Accepted"
        tx, _ = await driver.start("CARD-1", 1000, tx_id="tx-1")
        # LB-B and LB-C are offline: counted at their 6 A fallback, 20 A are left
        await wait_for(lambda: _last_is(a, 20.0), timeout=5)
        for wh in (2000, 3000, 4000):  # the same draw each time: nothing to change
            await driver.meter(tx, wh)
        await api.put("/sites/depot/circuits/grid", {"limit_a": 32})  # an edit, the same limit
        await asyncio.sleep(0.6)  # past the 0.2 s the balancer gathers triggers for, and its run
        plan = await api.get("/sites/depot/plan")
        assert plan["allocations"][0]["current_a"] == 20.0
        assert len(_profiles(a, "TxProfile")) == 1


async def test_a_limit_ahead_is_in_the_schedule(world: tuple[App, Api]) -> None:
    """A lower limit from an hour ahead: the car's profile holds both periods at once, so the
    limit holds from its first second whatever happens to the connection."""
    app, api = world
    await api.put("/sites/depot", SITE)
    start = datetime.now(UTC) + timedelta(hours=1)
    async with connect(app.server.port, "LB-A", "2.0.1") as a:
        driver = Driver(a, "2.0.1")
        assert await driver.boot() == "Accepted"
        await driver.start("CARD-1", 1000, tx_id="tx-1")
        await wait_for(lambda: _last_is(a, 20.0), timeout=5)
        block = {
            "circuit": "grid",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
            "limit_a": 18,
        }
        await api.put("/sites/depot/limits", {"blocks": [block]})

        async def two_periods() -> bool:
            return len(_profiles(a, "TxProfile")) == 2

        await wait_for(two_periods, timeout=5)
        schedule = _profiles(a, "TxProfile")[-1]["charging_schedule"][0]
        periods = [(p["start_period"], p["limit"]) for p in schedule["charging_schedule_period"]]
        # now 20 A (two stations offline at 6 A); 6 A from the hour; 20 A again two hours on
        assert [limit for _, limit in periods] == [20.0, 6.0, 20.0]
        assert abs(periods[1][0] - 3600) <= 5 and abs(periods[2][0] - 3 * 3600) <= 5
        await api.put("/sites/depot/limits", {"blocks": [{**block, "end": block["start"]}]}, 422)


async def _last_is(cp: Any, limit: float) -> bool:
    return _last(cp) == limit


async def test_sites_refused(world: tuple[App, Api]) -> None:
    _, api = world
    await api.put("/sites/depot", SITE)
    loop = {"circuits": [{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}]}
    answer = await api.put("/sites/loop", loop, 422)
    assert "exactly one grid connection" in answer["detail"]
    cycle = {"circuits": [{"id": "g"}, {"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}]}
    assert "loop" in (await api.put("/sites/cycle", cycle, 422))["detail"]
    twice = {
        "circuits": [{"id": "g"}],
        "evses": [{"station_id": "LB-A", "evse_id": 1, "circuit": "g"}],
    }
    assert "is on site depot" in (await api.put("/sites/other", twice, 409))["detail"]
    bad = {"circuit": "grid", "wiring": "L1L1"}
    assert "phase wiring" in (await api.put("/sites/depot/evses/LB-X/1", bad, 422))["detail"]
    assert (
        "no circuit nowhere"
        in (await api.put("/sites/depot/evses/LB-X/1", {"circuit": "nowhere"}, 422))["detail"]
    )
    await api.put("/sites/depot/limits", {"circuits": {"attic": {"limit_a": 1}}}, 422)
    await api.put("/sites/depot/circuits/grid", {"limit_a": -1}, 422)
    await api.delete("/sites/depot/circuits/grid", 422)  # EVSEs on it
    await api.get("/sites/nowhere", 404)
    await api.get("/sites/nowhere/plan", 404)
    await api.delete("/sites/depot/evses/LB-A/1", 204)
    await api.delete("/sites/depot/evses/LB-A/1", 404)
    await api.delete("/sites/depot", 204)
    assert await api.get("/sites") == []


async def test_edits_from_another_process_are_seen(world: tuple[App, Api]) -> None:
    app, api = world
    await api.put("/sites/depot", SITE)
    store = open_site_store(app.settings.db)
    try:
        other = Sites(store, SystemClock())  # what `chargegrid site` does
        await other.load()
        await other.set_circuit("depot", Circuit("grid", None, 10.0))
    finally:
        await store.close()
    assert app.sites is not None
    await app.sites.refresh()  # what the node does every 5 s
    assert (await api.get("/sites/depot"))["circuits"][0]["limit_a"] == 10.0
    plan = await api.get("/sites/depot/plan")
    assert plan["overloaded"] == ["grid/L1", "grid/L2", "grid/L3"]  # 3 stations offline at 6 A
