"""Load balancing when stations do not do as told, lose their connection, or tell what their
cars need: end to end, with stations of the `ocpp` package over WebSockets.

What a car may draw is what its station last accepted, until it accepts another: the balancer
lowers cars first and raises the others only once the lower currents are accepted; a refused
profile keeps its car counted at its old current (and is tried again); an offline station
counts at the schedule its car holds. A car's needs from ISO 15118 (NotifyEVChargingNeeds) are
accepted on a steered EVSE and shape its profile at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_client import ADMIN_TOKEN, Api, serving, wait_for
from ocpp.routing import on
from ocpp.v201 import call as call201
from stations import Driver, Station16, Station201, connect, result16, result201

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.settings import Settings

TWO = {
    "circuits": [{"id": "grid", "limit_a": 32}],
    "evses": [
        {"station_id": "SF-A", "evse_id": 1, "circuit": "grid"},
        {"station_id": "SF-B", "evse_id": 1, "circuit": "grid"},
    ],
}
THREE = {
    "circuits": [{"id": "grid", "limit_a": 32}],
    "evses": [
        {"station_id": "SF-A", "evse_id": 1, "circuit": "grid"},
        {"station_id": "SF-B", "evse_id": 1, "circuit": "grid"},
        {"station_id": "SF-C", "evse_id": 1, "circuit": "grid"},
    ],
}


class Stubborn201(Station201):  # type: ignore[misc]
    """Refuses TxProfiles while ``refuse`` is set; takes everything else."""

    refuse = False

    @on("SetChargingProfile")
    def on_SetChargingProfile(self, **kwargs: Any) -> Any:
        self.received.append(("SetChargingProfile", kwargs))
        purpose = kwargs["charging_profile"]["charging_profile_purpose"]
        refused = self.refuse and purpose == "TxProfile"
        return result201.SetChargingProfile(status="Rejected" if refused else "Accepted")


class Stubborn16(Station16):  # type: ignore[misc]
    refuse = False

    @on("SetChargingProfile")
    def on_SetChargingProfile(self, **kwargs: Any) -> Any:
        self.received.append(("SetChargingProfile", kwargs))
        purpose = kwargs["cs_charging_profiles"]["charging_profile_purpose"]
        refused = self.refuse and purpose == "TxProfile"
        return result16.SetChargingProfile(status="Rejected" if refused else "Accepted")


class Headstrong201(Station201):  # type: ignore[misc]
    """Takes every profile, and lets its car draw 32 A whatever they say: its composite
    schedule tells."""

    @on("GetCompositeSchedule")
    def on_GetCompositeSchedule(self, **kwargs: Any) -> Any:
        self.received.append(("GetCompositeSchedule", kwargs))
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": kwargs["evse_id"],
                "duration": kwargs["duration"],
                "schedule_start": datetime.now(UTC).isoformat(),
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 32.0}],
            },
        )


@pytest.fixture
async def world(fresh_db_url: Callable[[str], str]) -> AsyncIterator[tuple[App, Api]]:
    async with serving(fresh_db_url("sqlite")) as (app, api):
        assert app.balancer is not None
        app.balancer.retry_s = 0.5  # a refused profile is tried again after 30 s in production
        yield app, api


def _tx_profiles(cp: Any) -> list[dict[str, Any]]:
    out = []
    for action, request in cp.received:
        if action != "SetChargingProfile":
            continue
        profile = request.get("cs_charging_profiles") or request.get("charging_profile")
        if profile["charging_profile_purpose"] == "TxProfile":
            out.append(profile)
    return out


def _limits(profile: dict[str, Any]) -> list[float]:
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return [float(p["limit"]) for p in schedule["charging_schedule_period"]]


def _last(cp: Any) -> float | None:
    sent = _tx_profiles(cp)
    return _limits(sent[-1])[0] if sent else None


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
async def test_a_refused_decrease_holds_the_others_back(
    world: tuple[App, Api], version: str
) -> None:
    app, api = world
    await api.put("/sites/depot", TWO)
    port = app.server.port
    stubborn = Stubborn201 if version == "2.0.1" else Stubborn16
    async with (
        connect(port, "SF-A", version, station_class=stubborn) as a,
        connect(port, "SF-B", "2.0.1") as b,
    ):
        car_a, car_b = Driver(a, version), Driver(b, "2.0.1")
        assert await car_a.boot() == "Accepted" and await car_b.boot() == "Accepted"
        await car_a.start("CARD-1", 1000, tx_id="tx-a")
        await wait_for(lambda: _is(a, 32.0), timeout=5)

        a.refuse = True  # A will not come down
        await car_b.start("CARD-1", 1000, tx_id="tx-b")
        # A was asked for 16 A first and refused: it still draws 32 A, so B is paused, not
        # raised to 16 A
        await wait_for(lambda: _is(b, 0.0), timeout=5)
        assert _limits(_tx_profiles(a)[-1])[0] == 16.0
        plan = await api.get("/sites/depot/plan")
        held = {x["evse"]: (x["state"], x["current_a"]) for x in plan["allocations"]}
        assert held["SF-A/1"] == ("fixed", 32.0)

        a.refuse = False  # tried again: A comes down, and only then B goes up
        await wait_for(lambda: _is(b, 16.0), timeout=10)
        assert _last(a) == 16.0
        sent = [(cp, _limits(p)[0]) for cp in (a, b) for p in _tx_profiles(cp)]
        assert (b, 16.0) in sent and (a, 16.0) in sent


async def test_a_station_whose_composite_schedule_is_higher_counts_at_it(
    world: tuple[App, Api],
) -> None:
    app, api = world
    await api.put("/sites/depot", TWO)
    port = app.server.port
    async with (
        connect(port, "SF-A", "2.0.1", station_class=Headstrong201) as a,
        connect(port, "SF-B", "1.6") as b,
    ):
        car_a, car_b = Driver(a, "2.0.1"), Driver(b, "1.6")
        assert await car_a.boot() == "Accepted" and await car_b.boot() == "Accepted"
        await car_b.start("CARD-1", 1000)
        await wait_for(lambda: _is(b, 32.0), timeout=5)
        await car_a.start("CARD-1", 1000, tx_id="tx-a")
        # A took 16 A but its composite schedule says 32 A: it is counted so, B is paused
        await wait_for(lambda: _is(b, 0.0), timeout=5)
        asked = [r for action, r in a.received if action == "GetCompositeSchedule"]
        assert asked[0]["charging_rate_unit"] == "A" and asked[0]["evse_id"] == 1
        plan = await api.get("/sites/depot/plan")
        held = {x["evse"]: (x["state"], x["current_a"]) for x in plan["allocations"]}
        assert held["SF-A/1"] == ("fixed", 32.0)


async def test_an_offline_station_counts_at_the_schedule_its_car_holds(
    world: tuple[App, Api],
) -> None:
    app, api = world
    await api.put("/sites/depot", THREE)
    port = app.server.port
    async with connect(port, "SF-A", "2.0.1") as a:
        car_a = Driver(a, "2.0.1")
        assert await car_a.boot() == "Accepted"
        await car_a.start("CARD-1", 1000, tx_id="tx-a")
        await wait_for(lambda: _is(a, 20.0), timeout=5)  # B and C offline at their 6 A
    # A's connection is gone; its car keeps its 20 A TxProfile
    async with connect(port, "SF-B", "1.6") as b:
        car_b = Driver(b, "1.6")
        assert await car_b.boot() == "Accepted"
        await car_b.start("CARD-1", 1000)
        await wait_for(lambda: _is(b, 6.0), timeout=5)  # 32 - 20 (A) - 6 (C)
        plan = await api.get("/sites/depot/plan")
        held = {x["evse"]: (x["state"], x["current_a"]) for x in plan["allocations"]}
        assert held["SF-A/1"] == ("fixed", 20.0)
        assert sum(current for _, current in held.values()) + 6.0 <= 32.0


async def test_a_cars_needs_from_iso15118_shape_its_profile(world: tuple[App, Api]) -> None:
    app, api = world
    await api.put("/sites/depot", {**TWO, "policy": "departure"})
    port = app.server.port
    async with connect(port, "SF-A", "2.0.1") as a, connect(port, "SF-X", "2.0.1") as x:
        car_a, car_x = Driver(a, "2.0.1"), Driver(x, "2.0.1")
        assert await car_a.boot() == "Accepted" and await car_x.boot() == "Accepted"
        await car_a.start("CARD-1", 1000, tx_id="tx-a")
        await wait_for(lambda: _is(a, 26.0), timeout=5)  # B offline at 6 A
        departure = datetime.now(UTC) + timedelta(hours=3)
        needs = call201.NotifyEVChargingNeeds(
            evse_id=1,
            charging_needs={
                "requested_energy_transfer": "AC_three_phase",
                "departure_time": departure.isoformat(),
                "ac_charging_parameters": {
                    "energy_amount": 20_000,
                    "ev_min_current": 8,
                    "ev_max_current": 16,
                    "ev_max_voltage": 400,
                },
            },
        )
        answer = await a.call(needs)
        assert answer.status == "Accepted"
        await wait_for(lambda: _is(a, 16.0), timeout=5)  # the car's own maximum
        known = await api.get("/sites/depot/evses/SF-A/1/needs")
        assert known["energy_wh"] == 20_000 and known["max_current_a"] == 16.0
        # a station on no site: no schedule will follow, so Rejected (K15)
        assert (await x.call(needs)).status == "Rejected"

        # the driver (or an app) says what they need through the API, in the same terms
        await api.put(
            "/sites/depot/evses/SF-A/1/needs",
            {"energy_wh": 5000, "departure": departure.isoformat(), "max_current_a": 10},
        )
        await wait_for(lambda: _is(a, 10.0), timeout=5)
        await api.put("/sites/depot/evses/SF-B/1/needs", {"energy_wh": 1}, 404)  # no car
        await api.put("/sites/depot/evses/SF-A/1/needs", {"energy_wh": -1}, 422)


async def _is(cp: Any, limit: float) -> bool:
    return _last(cp) == limit


async def test_limits_and_prices_outlive_a_restart(fresh_db_url: Callable[[str], str]) -> None:
    settings = Settings(
        host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        db=fresh_db_url("sqlite"),
        ping_interval=0,
        admin_token=ADMIN_TOKEN,
    )
    ahead = datetime.now(UTC) + timedelta(hours=1)
    block = {
        "circuit": "grid",
        "start": ahead.isoformat(),
        "end": (ahead + timedelta(hours=1)).isoformat(),
        "limit_w": 11_000,
    }
    for run in range(2):
        app = await build(settings)
        await app.start()
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
            ) as client:
                api = Api(client, ADMIN_TOKEN)
                if run == 0:
                    await api.put("/sites/depot", TWO)
                    limits = {"circuits": {"grid": {"limit_a": 20}}, "blocks": [block]}
                    await api.put("/sites/depot/limits", limits)
                    tariff = {"blocks": [{"price_per_kwh": 0.25, "currency": "EUR"}]}
                    await api.put("/sites/depot/prices", tariff)
                plan = await api.get("/sites/depot/plan")
                assert plan["limits"] == {"grid": {"limit_a": 20.0, "limit_w": None}}, run
                assert plan["price_per_kwh"] == 0.25, run
                assert app.balancer is not None
                later = app.balancer.limits("depot", ahead + timedelta(minutes=30))
                assert (later["grid"].limit_a, later["grid"].limit_w) == (20.0, 11_000.0)
        finally:
            await app.stop()


async def test_the_cost_policy_charges_in_the_cheap_hours(world: tuple[App, Api]) -> None:
    app, api = world
    await api.put("/sites/depot", {**TWO, "policy": "cost"})
    now = datetime.now(UTC)
    cheap_from = now + timedelta(hours=2)
    prices = {
        "blocks": [
            {"price_per_kwh": 0.40, "currency": "EUR", "end": cheap_from.isoformat()},
            {"price_per_kwh": 0.10, "currency": "EUR", "start": cheap_from.isoformat()},
        ]
    }
    assert (await api.put("/sites/depot/prices", prices))["price_per_kwh"] == 0.40
    async with connect(app.server.port, "SF-A", "2.0.1") as a:
        car = Driver(a, "2.0.1")
        assert await car.boot() == "Accepted"
        await car.start("CARD-1", 1000, tx_id="tx-a")
        # 10 kWh by six hours from now: all of it in the cheap hours
        needs = {"energy_wh": 10_000, "departure": (now + timedelta(hours=6)).isoformat()}
        await api.put("/sites/depot/evses/SF-A/1/needs", needs)

        async def planned_for_later() -> bool:
            sent = _tx_profiles(a)
            if not sent:
                return False
            periods = sent[-1]["charging_schedule"][0]["charging_schedule_period"]
            return periods[0]["limit"] == 0.0 and len(periods) > 1

        await wait_for(planned_for_later, timeout=10)
        periods = _tx_profiles(a)[-1]["charging_schedule"][0]["charging_schedule_period"]
        charging = [p for p in periods if p["limit"] > 0]
        first = charging[0]["start_period"]
        assert abs(first - 2 * 3600) <= 15 * 60, periods  # from when it gets cheap
        # at most 26 A (B is offline at its 6 A fallback): 10 kWh over 6.9 kW takes 1.5 h
        assert all(p["limit"] <= 26.0 for p in periods)
        plan = await api.get("/sites/depot/plan")
        [mine] = [x for x in plan["allocations"] if x["evse"] == "SF-A/1"]
        assert mine["state"] == "paused" and "cheaper" in mine["reason"]
        await api.put("/sites/depot/prices", {"blocks": [{"price_per_kwh": 1e9}]}, 422)
