"""The dashboard's live view on fakes: use cases publish events, the view keeps power and
statuses from them and reads the rest from the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargegrid.domain.model import (
    IdToken,
    MeterReading,
    Registration,
    SampledValue,
    StatusChange,
    UnknownStationPolicy,
)
from chargegrid.service.central import CentralSystem, Settings
from chargegrid.service.live import LiveView, utc_midnight
from chargegrid.service.ports import NewTransaction
from chargegrid.testing.fakes import FakeStore, FixedClock

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def setup() -> tuple[CentralSystem, LiveView]:
    central = CentralSystem(
        FakeStore(), FixedClock(NOON), Settings(unknown_stations=UnknownStationPolicy.ACCEPT)
    )
    view = LiveView(central.store, central.clock)
    view.attach(central.events)
    return central, view


def reading(at: datetime, *values: SampledValue) -> MeterReading:
    return MeterReading(at, values)


def power(w: str, phase: str | None = None, unit: str = "W") -> SampledValue:
    return SampledValue(Decimal(w), measurand="Power.Active.Import", phase=phase, unit=unit)


def energy(wh: str) -> SampledValue:
    return SampledValue(Decimal(wh), unit="Wh")


async def start(central: CentralSystem, station: str, tag: str, at: datetime, meter: int) -> int:
    await central.store.save_token(IdToken(tag))
    tx, _ = await central.start_transaction(
        NewTransaction(station, None, 1, 1, tag, at, Decimal(meter))
    )
    return tx.id


def connected(*ids: str) -> Callable[[str], bool]:
    return lambda station_id: station_id in ids


async def test_power_is_the_sum_of_the_latest_power_of_active_transactions() -> None:
    central, view = setup()
    for station in ("CS-1", "CS-2", "CS-3"):
        await central.set_registration(station, Registration.ACCEPTED)
    await central.set_registration("CS-4", Registration.PENDING)
    now = central.clock.now()
    one = await start(central, "CS-1", "T1", now, 1000)
    two = await start(central, "CS-2", "T2", now, 5000)
    tx1 = await central.store.get_transaction(one)
    tx2 = await central.store.get_transaction(two)
    assert tx1 is not None and tx2 is not None
    await central.meter_values("CS-1", tx1, 1, 1, [reading(now, power("7.2", unit="kW"))])
    await central.meter_values("CS-1", tx1, 1, 1, [reading(now, energy("1500"), power("3000"))])
    # per-phase power only: the phases add up
    phases = [power("1000", "L1"), power("1100", "L2"), power("900", "L3"), energy("5200")]
    await central.meter_values("CS-2", tx2, 1, 1, [reading(now, *phases)])
    # a reading without power keeps the last known power
    await central.meter_values("CS-2", tx2, 1, 1, [reading(now, energy("5300"))])

    o = await view.overview(connected("CS-1", "CS-2"))
    assert view.power_w(one) == Decimal(3000) and view.power_w(two) == Decimal(3000)
    assert o.power_w == Decimal(6000)
    assert o.active_transactions == 2
    assert o.energy_today_wh == Decimal(500 + 300)
    assert (o.stations, o.stations_online, o.stations_offline) == (4, 2, 2)
    assert o.stations_by_registration == {"Accepted": 3, "Pending": 1}
    assert o.energy_since == utc_midnight(NOON)

    await central.stop_transaction(tx1, stopped_at=now, meter_stop_wh=Decimal(1600), reason="X")
    o = await view.overview(connected())
    assert o.power_w == Decimal(3000) and o.active_transactions == 1
    assert o.energy_today_wh == Decimal(600 + 300)  # an ended session of today still counts
    assert view.power_w(one) is None


async def test_energy_today_counts_sessions_started_since_the_given_time() -> None:
    central, view = setup()
    yesterday = NOON - timedelta(days=1)
    old = await start(central, "CS-1", "T1", yesterday, 0)
    tx = await central.store.get_transaction(old)
    assert tx is not None
    await central.meter_values("CS-1", tx, 1, 1, [reading(NOON, energy("10000"))])
    await start(central, "CS-1", "T2", NOON, 0)
    o = await view.overview(connected())
    assert o.energy_today_wh == Decimal(0)  # the only energy belongs to yesterday's session
    o = await view.overview(connected(), since=yesterday)
    assert o.energy_today_wh == Decimal(10000) and o.energy_since == yesterday


async def test_connector_statuses_from_the_store_then_from_events() -> None:
    central, view = setup()
    store = central.store
    await central.set_registration("CS-1", Registration.ACCEPTED)
    earlier = NOON - timedelta(hours=1)
    # told before the view listened: the store has it
    await store.record_status(StatusChange("CS-1", 1, 1, "Faulted", earlier))
    await store.record_status(StatusChange("CS-1", 2, 1, "Available", earlier))
    o = await view.overview(connected())
    assert o.connectors_by_status == {"Available": 1, "Faulted": 1}

    await central.status(StatusChange("CS-1", 1, 1, "Charging", NOON))
    await central.status(StatusChange("CS-1", 0, 0, "Unavailable", NOON))  # the station itself
    o = await view.overview(connected())
    assert o.connectors_by_status == {"Available": 1, "Charging": 1}

    await store.delete_station("CS-1")  # a forgotten station's connectors no longer count
    o = await view.overview(connected())
    assert o.connectors_by_status == {} and o.stations == 0


async def test_many_active_transactions_are_read_page_by_page() -> None:
    central, view = setup()
    for n in range(1203):
        await start(central, f"CS-{n}", f"T{n}", NOON, 0)
    o = await view.overview(connected())
    assert o.active_transactions == 1203
