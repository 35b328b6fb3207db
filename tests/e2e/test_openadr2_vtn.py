"""OpenADR 2.0b end to end: chargegrid's VEN against a VTN started by the test (``openleadr``'s
OpenADRServer, a peer we did not write), with charging stations of the `ocpp` package (both
versions) on the site the VEN limits.

The VEN registers and offers its TELEMETRY_USAGE report, which the VTN requests; a
LOAD_DISPATCH event lowers the site's power in two steps, and at every moment of the event the
currents the stations were last told, over their phases at the site's voltage, sum to at most
the limit in force; the VTN hears optIn and readings of what the cars draw; cancelling the event
gives the cars their share of the grid connection back. A SIMPLE event and its modification
replace each other; an event the VTN stops listing is gone (implied cancellation). With the
``out`` policy the VTN hears optOut and nothing is applied.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.web_exceptions import NotAppKeyWarning
from api_client import Api, serving, wait_for
from openleadr import OpenADRServer, objects, utils
from stations import Driver, connect

from chargegrid.bootstrap import App

VEN_ID = "ven-chargegrid"
VOLTAGE_V = 230.0
SITE = {
    "name": "Depot",
    "circuits": [{"id": "grid", "limit_a": 32}],
    "evses": [
        {"station_id": "DR-A", "evse_id": 1, "circuit": "grid"},
        {"station_id": "DR-B", "evse_id": 1, "circuit": "grid", "wiring": "L2L3L1"},
        {"station_id": "DR-C", "evse_id": 1, "circuit": "grid", "wiring": "L3L1L2"},
    ],
}


@dataclass
class Vtn:
    """The test's VTN and what it heard from the VEN."""

    server: OpenADRServer
    url: str
    registrations: list[dict[str, Any]] = field(default_factory=list)
    report_offers: list[dict[str, Any]] = field(default_factory=list)
    readings: list[float] = field(default_factory=list)
    opts: list[tuple[str, str]] = field(default_factory=list)  # (event id, opt type)

    def on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        assert ven_id == VEN_ID
        self.opts.append((event_id, opt_type))

    def send(self, event: objects.Event) -> None:
        self.server.add_raw_event(ven_id=VEN_ID, event=event, callback=self.on_opt)


@pytest.fixture
async def vtn() -> AsyncIterator[Vtn]:
    holder: list[Vtn] = []

    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        holder[0].registrations.append(info)
        return VEN_ID, "reg-1"

    async def on_register_report(
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> tuple[Callable[[list[tuple[datetime, float]]], None], timedelta]:
        holder[0].report_offers.append(
            {"ven_id": ven_id, "resource_id": resource_id, "measurement": measurement, "unit": unit}
        )

        def on_update_report(data: list[tuple[datetime, float]]) -> None:
            holder[0].readings.extend(value for _, value in data)

        return on_update_report, min_sampling_interval

    def ven_lookup(ven_id: str) -> dict[str, Any]:
        return {"ven_id": VEN_ID, "ven_name": "chargegrid-test", "registration_id": "reg-1"}

    with warnings.catch_warnings():
        # openleadr's VTN keys its aiohttp app with a string: a warning of aiohttp's, about the
        # test's peer, not about chargegrid
        warnings.simplefilter("ignore", NotAppKeyWarning)
        server = OpenADRServer(
            vtn_id="VTN-TEST",
            http_host="127.0.0.1",
            http_port=0,
            requested_poll_freq=timedelta(seconds=1),
            ven_lookup=ven_lookup,
        )
    server.add_handler("on_create_party_registration", on_create_party_registration)
    server.add_handler("on_register_report", on_register_report)
    await server.run()
    port = server.app_runner.addresses[0][1]
    holder.append(Vtn(server, f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"))
    try:
        yield holder[0]
    finally:
        await server.stop()


@pytest.fixture
def opt() -> str:
    return "in"


@pytest.fixture
async def world(
    vtn: Vtn, opt: str, fresh_db_url: Callable[[str], str]
) -> AsyncIterator[tuple[App, Api]]:
    settings = {
        "openadr2_vtn_url": vtn.url,
        "openadr2_ven_name": "chargegrid-test",
        "openadr2_site": "depot",
        "openadr2_opt": opt,
        "openadr2_report_interval": 1.0,
    }
    async with serving(fresh_db_url("sqlite"), **settings) as (app, api):
        await api.put("/sites/depot", SITE)
        link = app.openadr2
        assert link is not None

        async def registered() -> bool:
            return link.registered and bool(vtn.report_offers)

        await wait_for(registered, timeout=10)
        yield app, api


def _event(
    event_id: str,
    name: str,
    kind: str,
    steps: list[tuple[datetime, timedelta, float]],
    measurement: objects.Measurement | None = None,
) -> objects.Event:
    signal = objects.EventSignal(
        intervals=[
            objects.Interval(dtstart=start, duration=length, signal_payload=value, uid=n)
            for n, (start, length, value) in enumerate(steps)
        ],
        signal_name=name,
        signal_type=kind,
        signal_id=f"{event_id}-signal",
        measurement=measurement,
    )
    return objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id=event_id,
            modification_number=0,
            market_context="oadr://chargegrid.test/dr",
            event_status="far",
        ),
        event_signals=[signal],
        targets=[{"ven_id": VEN_ID}],
    )


KW = objects.Measurement(
    name="powerReal",
    description="RealPower",
    unit="W",
    scale="k",
    power_attributes=objects.PowerAttributes(hertz=50, voltage=230, ac=True),
)


# --- what the stations were told --------------------------------------------------------------


def _tx_profiles(cp: Any) -> list[dict[str, Any]]:
    out = []
    for action, request in cp.received:
        if action != "SetChargingProfile":
            continue
        profile = request.get("cs_charging_profiles") or request.get("charging_profile")
        if profile["charging_profile_purpose"] == "TxProfile":
            out.append(profile)
    return out


def _schedule(profile: dict[str, Any]) -> tuple[datetime, list[tuple[int, float, int]]]:
    schedule = profile["charging_schedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    start = datetime.fromisoformat(schedule["start_schedule"])
    periods = [
        (int(p["start_period"]), float(p["limit"]), int(p.get("number_phases", 3)))
        for p in schedule["charging_schedule_period"]
    ]
    return start, periods


def _power_at(cps: list[Any], moment: datetime) -> tuple[float, list[float]]:
    """What the stations' last TxProfiles let their cars draw at ``moment``: the total in W (each
    car's current on each of its phases at the site's voltage), and each car's current."""
    total = 0.0
    currents = []
    for cp in cps:
        start, periods = _schedule(_tx_profiles(cp)[-1])
        current, phases = 0.0, 3
        for offset, limit, count in periods:
            if start + timedelta(seconds=offset) <= moment:
                current, phases = limit, count
        total += current * phases * VOLTAGE_V
        currents.append(current)
    return total, currents


def _moments(cps: list[Any], steps: list[tuple[datetime, float]], end: datetime) -> list[datetime]:
    """Every moment the allowed power or a station's schedule changes, from the latest profile's
    start (what was sent before cannot be changed) to the end of the event."""
    starts = [_schedule(_tx_profiles(cp)[-1]) for cp in cps]
    since = max(max(start for start, _ in starts), steps[0][0])
    edges = {since}
    edges.update(at for at, _ in steps)
    for start, periods in starts:
        edges.update(start + timedelta(seconds=offset) for offset, _, _ in periods)
    return sorted(m for m in edges if since <= m < end)


def _allowed(steps: list[tuple[datetime, float]], moment: datetime) -> float:
    return [watts for at, watts in steps if at <= moment][-1]


# --- the tests --------------------------------------------------------------------------------


async def test_a_vtn_event_lowers_the_site_limit(vtn: Vtn, world: tuple[App, Api]) -> None:
    app, api = world
    port = app.server.port
    async with (
        connect(port, "DR-A", "2.0.1") as a,
        connect(port, "DR-B", "1.6") as b,
        connect(port, "DR-C", "2.0.1") as c,
    ):
        cps = [a, b, c]
        cars = [Driver(a, "2.0.1"), Driver(b, "1.6"), Driver(c, "2.0.1")]
        for driver in cars:
            assert await driver.boot() == "Accepted"
        tx_a, _ = await cars[0].start("CARD-1", 1000, tx_id="tx-a")
        tx_b, _ = await cars[1].start("CARD-1", 1000)
        await cars[1].meter(tx_b, 1500)  # 1.6 tells the power in MeterValues: 7.2 kW
        await cars[2].start("CARD-1", 1000, tx_id="tx-c")

        async def shared(expected: float) -> bool:
            return all(
                _tx_profiles(cp) and _schedule(_tx_profiles(cp)[-1])[1][0][1] == expected
                for cp in cps
            )

        await wait_for(lambda: shared(10.6), timeout=5)  # 32 A among three

        # 15 kW for ten minutes, then 9 kW for ten more
        start = datetime.now(UTC)
        steps = [(start, 15_000.0), (start + timedelta(minutes=10), 9_000.0)]
        end = start + timedelta(minutes=20)
        ten = timedelta(minutes=10)
        dispatch = [(start, ten, 15.0), (start + ten, ten, 9.0)]  # kW
        vtn.send(_event("dr-1", "LOAD_DISPATCH", "setpoint", dispatch, KW))

        async def respected() -> bool:
            if not all(_tx_profiles(cp) for cp in cps):
                return False
            if _schedule(_tx_profiles(a)[-1])[1][0][1] >= 10.6:
                return False  # the event has not reached the stations yet
            return all(
                _power_at(cps, m)[0] <= _allowed(steps, m) + 1e-6 for m in _moments(cps, steps, end)
            )

        await wait_for(respected, timeout=10)
        # not respected by pausing everyone: the first step lets all three cars charge
        total, currents = _power_at(cps, start + timedelta(minutes=5))
        assert all(current >= 6.0 for current in currents) and total > 12_000
        # the second step fits two cars' minimums: the one that came last is paused
        total, currents = _power_at(cps, start + timedelta(minutes=15))
        assert currents[2] == 0.0 and min(currents[:2]) >= 6.0 and total <= 9_000
        plan = await api.get("/sites/depot/plan")
        assert plan["limits"]["grid"]["limit_w"] == 15_000.0
        assert ("dr-1", "optIn") in vtn.opts

        # the VTN hears what the cars draw (7.2 kW each as their meter values say)
        assert vtn.report_offers[0]["resource_id"] == "depot"
        assert vtn.report_offers[0]["unit"] == "W"

        async def read() -> bool:
            return any(value >= 21_000 for value in vtn.readings)

        await wait_for(read, timeout=10)

        # cancelled: the cars get their share of the 32 A back
        vtn.server.cancel_event(VEN_ID, "dr-1")
        await wait_for(lambda: shared(10.6), timeout=10)
        assert (await api.get("/sites/depot/plan"))["limits"] == {}
        await cars[0].stop(tx_a, 5000)


async def test_modifications_and_implied_cancellation(vtn: Vtn, world: tuple[App, Api]) -> None:
    _, api = world
    start = datetime.now(UTC) - timedelta(seconds=5)
    event = _event("dr-2", "SIMPLE", "level", [(start, timedelta(hours=1), 2)])
    vtn.send(event)

    async def limit_is(expected: float | None) -> bool:
        limits = (await api.get("/sites/depot/plan"))["limits"]
        if expected is None:
            return limits == {}
        return bool(limits) and limits["grid"]["limit_a"] == expected

    await wait_for(lambda: limit_is(16.0), timeout=10)  # level 2: half of 32 A

    # the VTN raises the event to level 3 (a new modification): the cars are paused
    signal = event.event_signals[0]
    signal.intervals[0].signal_payload = 3
    utils.increment_event_modification_number(event)
    vtn.server.events_updated[VEN_ID] = True
    await wait_for(lambda: limit_is(0.0), timeout=10)
    assert ("dr-2", "optIn") in vtn.opts  # openleadr's VTN calls back on the first answer only

    # the VTN drops the event without cancelling it and sends another: the first one, no longer
    # distributed, is no longer in force
    vtn.server.events[VEN_ID].clear()
    vtn.send(_event("dr-2b", "SIMPLE", "level", [(start, timedelta(hours=1), 1)]))
    await wait_for(lambda: limit_is(24.0), timeout=10)  # level 1: three quarters


@pytest.mark.parametrize("opt", ["out"])
async def test_opt_out_policy(vtn: Vtn, world: tuple[App, Api]) -> None:
    _, api = world
    start = datetime.now(UTC)
    vtn.send(_event("dr-3", "SIMPLE", "level", [(start, timedelta(hours=1), 3)]))

    async def answered() -> bool:
        return ("dr-3", "optOut") in vtn.opts

    await wait_for(answered, timeout=10)
    assert (await api.get("/sites/depot/plan"))["limits"] == {}
    assert vtn.registrations[0]["ven_name"] == "chargegrid-test"
