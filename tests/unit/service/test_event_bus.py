"""The event bus and the events the use cases publish, on fakes."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from chargegrid.domain import events
from chargegrid.domain.model import (
    IdToken,
    MeterReading,
    Registration,
    SampledValue,
    StatusChange,
)
from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.service.central import BootInfo, CentralSystem
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.feed import Closed, Lagged
from chargegrid.service.ocpp.context import StationContext
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.ports import NewTransaction
from chargegrid.testing.fakes import FakeStore, FixedClock

AT = datetime(2026, 1, 1, tzinfo=UTC)


def online(station_id: str = "CS-1") -> events.StationOnline:
    return events.StationOnline(station_id=station_id, at=AT)


def test_events_are_numbered_and_kept() -> None:
    bus = EventBus(history=3)
    got: list[Envelope] = []
    stop = bus.listen(got.append)
    for n in range(5):
        bus.publish(online(f"CS-{n}"))
    assert [e.seq for e in got] == [1, 2, 3, 4, 5] and bus.last_seq == 5
    assert [e.seq for e in bus.since(2) or []] == [3, 4, 5]
    assert bus.since(5) == [] and bus.since(1) is None  # 2 is no longer kept
    stop()
    bus.publish(online())
    assert len(got) == 5


def test_a_failing_listener_is_logged_and_kept() -> None:
    bus = EventBus()
    calls: list[int] = []

    def broken(envelope: Envelope) -> None:
        calls.append(envelope.seq)
        raise RuntimeError("listener bug")

    bus.listen(broken)
    good: list[Envelope] = []
    bus.listen(good.append)
    bus.publish(online())
    bus.publish(online())
    assert calls == [1, 2] and len(good) == 2


def test_held_events_wait_for_release() -> None:
    bus = EventBus()
    got: list[Envelope] = []
    bus.listen(got.append)
    context = contextvars.copy_context()
    held = context.run(bus.hold)
    context.run(bus.publish, online("held"))
    bus.publish(online("free"))  # another context: delivered at once
    assert [e.event.station_id for e in got] == ["free"]
    bus.release(held)
    assert [e.event.station_id for e in got] == ["free", "held"]


async def test_subscription_resumes_times_out_and_is_cut_off_when_behind() -> None:
    bus = EventBus(history=10)
    bus.publish(online("before"))
    sub = bus.subscribe(after=0, limit=2)
    first = await sub.next(0.1)
    assert first is not None and first.event.station_id == "before"
    assert await sub.next(0.01) is None  # nothing yet: a keep-alive is due
    waiting = asyncio.ensure_future(sub.next(1))
    await asyncio.sleep(0)
    bus.publish(online("later"))
    later = await waiting
    assert later is not None and later.seq == 2
    for _ in range(3):
        bus.publish(online())  # the third does not fit in 2
    assert (await sub.next(0.1)) is not None and (await sub.next(0.1)) is not None
    with pytest.raises(Lagged):
        await sub.next(0.1)
    with pytest.raises(Lagged):
        bus.subscribe(after=-5)
    closed = bus.subscribe()
    closed.close()
    with pytest.raises(Closed):
        await closed.next(0.1)


def test_events_encode_with_their_type() -> None:
    encoded = msgspec.json.decode(msgspec.json.encode(online()))
    assert encoded == {"type": "station.online", "station_id": "CS-1", "at": "2026-01-01T00:00:00Z"}
    # The names clients subscribe to (README, webhooks, the dashboard): changed only on purpose.
    assert events.EVENT_TYPES == (
        "station.online",
        "station.offline",
        "station.booted",
        "station.registration",
        "connector.status",
        "transaction.started",
        "transaction.updated",
        "transaction.ended",
        "transaction.needs",
        "security.event",
    )


# --- what the use cases publish ----------------------------------------------------------------


def recorded(central: CentralSystem) -> list[Any]:
    got: list[Any] = []
    central.events.listen(lambda envelope: got.append(envelope.event))
    return got


async def test_a_session_publishes_its_events() -> None:
    central = CentralSystem(FakeStore(), FixedClock())
    got = recorded(central)
    await central.boot(BootInfo("CS-1", "1.6", "ACME", "W1"))
    await central.status(StatusChange("CS-1", 1, 1, "Charging", AT, error_code="NoError"))
    await central.store.save_token(IdToken("T1"))
    new = NewTransaction("CS-1", None, 1, 1, "T1", AT, Decimal(100))
    tx, _ = await central.start_transaction(new)
    await central.start_transaction(new)  # resent: the same transaction, no second event
    power = [
        SampledValue(Decimal(2), measurand="Power.Active.Import", phase="L1", unit="kW"),
        SampledValue(Decimal(2), measurand="Power.Active.Import", phase="L2", unit="kW"),
        SampledValue(Decimal(350)),
    ]
    await central.meter_values("CS-1", tx, 1, 1, [MeterReading(AT, tuple(power))])
    await central.stop_transaction(tx, stopped_at=AT, meter_stop_wh=Decimal(500), reason="Local")
    await central.security_event("CS-1", "FirmwareUpdated", AT, None)

    assert [type(e).__name__ for e in got] == [
        "StationBooted",
        "StatusChanged",
        "TransactionStarted",
        "TransactionUpdated",
        "TransactionEnded",
        "SecurityEventReported",
    ]
    updated, ended = got[3], got[4]
    assert updated.power_w == 4000 and updated.energy_wh == 250 and updated.meter_wh == 350
    assert ended.energy_wh == 400 and ended.reason == "Local"


class ManualUnit:
    """A unit of work that commits (or fails) when the test says."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[BaseException | None], None]] = []

    def activate(self) -> None:
        pass  # the fake's writes are done at once; only the commit's report waits

    def when_committed(self, callback: Callable[[BaseException | None], None]) -> None:
        self.callbacks.append(callback)

    def settle(self, failure: BaseException | None) -> None:
        for callback in self.callbacks:
            callback(failure)


class ManualStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.units: list[ManualUnit] = []

    def write_unit(self) -> ManualUnit:  # type: ignore[override]
        self.units.append(ManualUnit())
        return self.units[-1]


@pytest.mark.parametrize("failure", [None, OSError("disk full")])
async def test_a_station_message_publishes_once_committed(failure: OSError | None) -> None:
    store = ManualStore()
    central = CentralSystem(store, FixedClock())
    service = OcppService(central)
    await central.set_registration("CS-1", Registration.ACCEPTED)
    got = recorded(central)
    ctx = StationContext("CS-1", "1.6", Registration.ACCEPTED)
    answered: list[tuple[Any, BaseException | None]] = []
    request = m16.StatusNotificationRequest(connector_id=1, error_code="NoError", status="Faulted")
    service.serve(ctx, "StatusNotification", request, lambda r, e: answered.append((r, e)))
    assert got == [] and answered == []  # written, not yet committed
    store.units[-1].settle(failure)
    assert len(answered) == 1 and answered[0][1] is failure
    assert [type(e).__name__ for e in got] == ([] if failure else ["StatusChanged"])
