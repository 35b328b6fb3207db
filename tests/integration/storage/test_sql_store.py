"""The Store contract, run against FakeStore, SqlStore on SQLite and SqlStore on PostgreSQL;
then what only the SQL store has: group commit, failure isolation, draining, durability.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sqlite3
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace
from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql, sqlite

from chargegrid.adapters.storage.errors import IntegrityError, StorageError
from chargegrid.adapters.storage.store import SqlStore, open_store
from chargegrid.adapters.storage.tables import DecimalText, UtcDateTime
from chargegrid.domain.access import ApiToken, Role
from chargegrid.domain.model import (
    AuthorizationStatus,
    ConfigValue,
    IdToken,
    LocalListEntry,
    MeterReading,
    Registration,
    Reservation,
    SampledValue,
    SecurityEvent,
    Station,
    StationReport,
    StatusChange,
    TokenKind,
    Transaction,
    TransactionState,
)
from chargegrid.service.ports import (
    CommandRecord,
    DataTransferRecord,
    Filter,
    ListQuery,
    NewTransaction,
    WriteUnit,
)
from chargegrid.testing.fakes import FakeStore

T = TypeVar("T")
AnyStore = FakeStore | SqlStore  # the fixture gives each in turn (see conftest.py)

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def status(status_: str, seconds: float, connector: int = 1, station: str = "CS1") -> StatusChange:
    return StatusChange(station, 1, connector, status_, at(seconds))


def new_tx(
    station_tx_id: str | None = None,
    *,
    tag: str | None = "TAG1",
    meter: Decimal | None = Decimal("1000"),
    seconds: float = 0,
    station: str = "CS1",
    connector: int = 1,
) -> NewTransaction:
    return NewTransaction(station, station_tx_id, 1, connector, tag, at(seconds), meter)


# -- stations


async def test_station_round_trip_and_update(store: AnyStore) -> None:
    assert await store.get_station("CS1") is None
    station = Station(
        "CS1",
        registration=Registration.ACCEPTED,
        ocpp_version="ocpp2.0.1",
        vendor="V",
        model="M",
        serial_number="S",
        firmware_version="1.2",
        boot_reason="PowerUp",
        online=True,
        last_seen=at(0),
        password_hash="$argon2id$x",
        lenient=frozenset({"timestamp-without-zone", "meter-as-number"}),
    )
    await store.save_station(station)
    assert await store.get_station("CS1") == station

    station.model = "M2"
    await store.save_station(station)
    await store.save_station(Station("CS0"))
    assert [s.id for s in await store.list_stations()] == ["CS0", "CS1"]
    assert (await store.get_station("CS1")) == station


async def test_touch_station(store: AnyStore) -> None:
    await store.save_station(Station("CS1"))
    await store.touch_station("CS1", at(5), online=True)
    await store.touch_station("nobody", at(5), online=True)  # no row: nothing to touch
    got = await store.get_station("CS1")
    assert got is not None
    assert (got.online, got.last_seen) == (True, at(5))
    assert await store.get_station("nobody") is None


async def test_returned_objects_are_copies(store: AnyStore) -> None:
    await store.save_station(Station("CS1"))
    got = await store.get_station("CS1")
    assert got is not None
    got.vendor = "changed without saving"
    assert (await store.get_station("CS1")) == Station("CS1")


# -- status


async def test_status_current_and_history(store: AnyStore) -> None:
    await store.record_status(status("Available", 0))
    await store.record_status(status("Occupied", 10))
    await store.record_status(status("Available", 5, connector=2))
    await store.record_status(status("Faulted", 7))  # replayed late: history only
    await store.record_status(StatusChange("CS1", 0, 0, "Available", at(1), "NoError", "i", "v"))
    await store.record_status(status("Available", 0, station="CS2"))

    current = await store.connector_statuses("CS1")
    assert [(s.evse_id, s.connector_id, s.status) for s in current] == [
        (0, 0, "Available"),
        (1, 1, "Occupied"),
        (1, 2, "Available"),
    ]
    assert current[0] == StatusChange("CS1", 0, 0, "Available", at(1), "NoError", "i", "v")

    history = await store.status_history("CS1")
    assert [(s.status, s.timestamp) for s in history] == [
        ("Occupied", at(10)),
        ("Faulted", at(7)),
        ("Available", at(5)),
        ("Available", at(1)),
        ("Available", at(0)),
    ]
    assert len(await store.status_history("CS1", limit=2)) == 2


# -- tokens and local lists


async def test_token_round_trip(store: AnyStore) -> None:
    assert await store.get_token("T") is None
    token = IdToken("T", TokenKind.EMAID, "G", at(3600), True, True, "owner")
    await store.save_token(token)
    assert await store.get_token("T") == token
    await store.save_token(IdToken("T"))
    assert await store.get_token("T") == IdToken("T")


async def test_local_list_full_and_differential(store: AnyStore) -> None:
    assert await store.local_list_version("CS1") == 0
    accepted = AuthorizationStatus.ACCEPTED
    await store.save_local_list(
        "CS1",
        1,
        [
            LocalListEntry("B", accepted, at(60), "G"),
            LocalListEntry("A", AuthorizationStatus.BLOCKED),
            LocalListEntry("X", None),  # nothing to remove in a full update
        ],
        full=True,
    )
    assert await store.local_list_version("CS1") == 1
    assert await store.local_list("CS1") == [
        LocalListEntry("A", AuthorizationStatus.BLOCKED),
        LocalListEntry("B", accepted, at(60), "G"),
    ]

    await store.save_local_list(
        "CS1",
        2,
        [
            LocalListEntry("A", None),
            LocalListEntry("C", accepted),
            LocalListEntry("B", AuthorizationStatus.EXPIRED),
            LocalListEntry("D", accepted),
            LocalListEntry("D", None),  # the last mention wins
        ],
        full=False,
    )
    assert await store.local_list_version("CS1") == 2
    assert await store.local_list("CS1") == [
        LocalListEntry("B", AuthorizationStatus.EXPIRED),
        LocalListEntry("C", accepted),
    ]

    await store.save_local_list("CS1", 3, [LocalListEntry("Z", accepted)], full=True)
    assert await store.local_list("CS1") == [LocalListEntry("Z", accepted)]
    await store.save_local_list("CS1", 4, [], full=True)
    assert (await store.local_list("CS1"), await store.local_list_version("CS1")) == ([], 4)
    assert await store.local_list("CS2") == []


# -- transactions


async def test_start_transaction_assigns_ids(store: AnyStore) -> None:
    first = await store.start_transaction(new_tx())
    second = await store.start_transaction(new_tx("uuid-2", seconds=1, connector=2))
    assert (first.id, first.station_tx_id) == (1, "1")
    assert (second.id, second.station_tx_id) == (2, "uuid-2")
    assert first.state is TransactionState.ACTIVE
    assert await store.get_transaction(1) == first
    assert await store.find_transaction("CS1", "uuid-2") == second
    assert await store.find_transaction("CS1", "1") == first
    assert await store.find_transaction("CS2", "1") is None
    assert await store.get_transaction(99) is None


async def test_find_same_start(store: AnyStore) -> None:
    tx = await store.start_transaction(new_tx())
    anonymous = await store.start_transaction(new_tx(tag=None, meter=None, seconds=9))
    assert await store.find_same_start(new_tx()) == tx
    assert await store.find_same_start(new_tx(meter=Decimal("1000.0"))) == tx
    assert await store.find_same_start(new_tx(tag=None, meter=None, seconds=9)) == anonymous
    assert await store.find_same_start(new_tx(tag="TAG2")) is None
    assert await store.find_same_start(new_tx(meter=Decimal(1001))) is None
    assert await store.find_same_start(new_tx(seconds=1)) is None
    assert await store.find_same_start(new_tx(connector=2)) is None
    assert await store.find_same_start(new_tx(station="CS2")) is None


async def test_update_and_list_transactions(store: AnyStore) -> None:
    a = await store.start_transaction(new_tx("a", tag="T1", seconds=0))
    b = await store.start_transaction(new_tx("b", tag="T2", seconds=20, connector=2))
    c = await store.start_transaction(new_tx("c", tag="T1", seconds=10, station="CS2"))
    assert await store.has_active_transaction("T1")
    assert [t.id for t in await store.active_transactions("CS1")] == [a.id, b.id]
    assert [t.id for t in await store.list_transactions()] == [b.id, c.id, a.id]
    assert [t.id for t in await store.list_transactions("CS1")] == [b.id, a.id]

    a.state = TransactionState.ENDED
    a.stopped_at = at(30)
    a.meter_stop_wh = Decimal("1500.5")
    a.stop_reason = "Local"
    a.charging_state = "Idle"
    a.last_meter_wh = Decimal("1500.25")
    await store.update_transaction(a)
    assert await store.get_transaction(a.id) == a
    assert [t.id for t in await store.active_transactions("CS1")] == [b.id]
    assert await store.has_active_transaction("T1")  # c still runs
    c.state = TransactionState.ENDED
    await store.update_transaction(c)
    assert not await store.has_active_transaction("T1")
    assert not await store.has_active_transaction("nobody")


async def test_update_unknown_transaction_fails(store: AnyStore) -> None:
    tx = await store.start_transaction(new_tx())
    with pytest.raises(StorageError, match="no transaction 42"):
        await store.update_transaction(replace(tx, id=42))


async def test_duplicate_station_transaction_id_is_refused(store: AnyStore) -> None:
    await store.start_transaction(new_tx("dup"))
    with pytest.raises(IntegrityError):
        await store.start_transaction(new_tx("dup", seconds=5))
    other = await store.start_transaction(new_tx("dup", station="CS2"))  # other station: fine
    assert other.id in (2, 3)  # a failed insert uses up an id of a PostgreSQL sequence


# -- meter values


async def test_meter_values_regrouped_by_timestamp(store: AnyStore) -> None:
    tx = await store.start_transaction(new_tx())
    energy = SampledValue(Decimal("1234.567"), unit="Wh", context="Sample.Periodic")
    power = SampledValue(
        Decimal("7.4"),
        "Power.Active.Import",
        "Sample.Periodic",
        "L1",
        "Outlet",
        "kW",
        3,
        "signed",
    )
    await store.record_meter_values(
        "CS1", tx.id, 1, 1, [MeterReading(at(60), (energy, power)), MeterReading(at(0), (energy,))]
    )
    later = SampledValue(Decimal("2000"))
    await store.record_meter_values("CS1", tx.id, 1, 1, [MeterReading(at(60), (later,))])
    await store.record_meter_values("CS1", None, 0, 0, [MeterReading(at(1), (later,))])
    await store.record_meter_values("CS1", tx.id, 1, 1, [])

    assert await store.meter_values(tx.id) == [
        MeterReading(at(0), (energy,)),
        MeterReading(at(60), (energy, power, later)),
    ]
    assert await store.meter_values(99) == []


async def test_meter_values_for_unknown_transaction_are_refused(store: AnyStore) -> None:
    with pytest.raises(IntegrityError):
        await store.record_meter_values(
            "CS1", 99, 1, 1, [MeterReading(at(0), (SampledValue(Decimal(1)),))]
        )


# -- reservations and what stations report


async def test_reservation_round_trip(store: AnyStore) -> None:
    assert await store.get_reservation(7) is None
    reservation = Reservation(7, "CS1", 1, "T", at(900), "cType2", "Accepted")
    await store.save_reservation(reservation)
    assert await store.get_reservation(7) == reservation
    await store.save_reservation(replace(reservation, evse_id=None, status="Expired"))
    assert await store.get_reservation(7) == replace(reservation, evse_id=None, status="Expired")


async def test_station_reports(store: AnyStore) -> None:
    await store.record_boot("CS1", "PowerUp", at(0))
    await store.record_boot("CS1", None, at(9))
    await store.record_security_event(SecurityEvent("CS1", "FirmwareUpdated", at(1), "v2"))
    await store.record_report(StationReport("CS1", "firmware", "Installed", 5, at(2)))
    await store.record_report(StationReport("CS1", "log", "Uploaded"))
    transfer = DataTransferRecord("CS1", "from-station", "acme", "m", '{"x":1}', at(3))
    await store.record_data_transfer(transfer)
    await store.record_boot("CS2", "Watchdog", at(0))

    assert await store.boots("CS1") == [(None, at(9)), ("PowerUp", at(0))]
    assert await store.security_events("CS1") == [
        SecurityEvent("CS1", "FirmwareUpdated", at(1), "v2")
    ]
    assert await store.reports("CS1") == [
        StationReport("CS1", "log", "Uploaded"),
        StationReport("CS1", "firmware", "Installed", 5, at(2)),
    ]
    assert await store.data_transfers("CS1") == [transfer]
    assert await store.boots("CS1", limit=1) == [(None, at(9))]


async def test_config_upserts_per_key(store: AnyStore) -> None:
    await store.save_config(
        "CS1",
        [
            ConfigValue("CS1", "", "HeartbeatInterval", "300"),
            ConfigValue("CS1", "EVSE", "Power", "11000", evse_id=1, readonly=True),
            ConfigValue("CS1", "EVSE", "Power", "22000", evse_id=2, extra={"unit": "W"}),
            ConfigValue("CS1", "Connector", "Type", "cType2", evse_id=1, connector_id=1),
            ConfigValue("CS1", "EVSE", "Power", "11000", "MaxSet", evse_id=1),
            ConfigValue("CS1", "Ctrlr", "Enabled", "true", instance="x"),
        ],
    )
    await store.save_config(
        "CS1",
        [
            ConfigValue("CS1", "", "HeartbeatInterval", "60"),
            ConfigValue("CS1", "Ctrlr", "Enabled", "false", instance="x"),
            ConfigValue("CS1", "Ctrlr", "Enabled", "true"),
        ],
    )
    await store.save_config("CS2", [ConfigValue("CS1", "", "K", None)])  # station_id wins
    await store.save_config("CS1", [])

    assert await store.config("CS1") == [
        ConfigValue("CS1", "", "HeartbeatInterval", "60"),
        ConfigValue("CS1", "Connector", "Type", "cType2", evse_id=1, connector_id=1),
        ConfigValue("CS1", "Ctrlr", "Enabled", "true"),
        ConfigValue("CS1", "Ctrlr", "Enabled", "false", instance="x"),
        ConfigValue("CS1", "EVSE", "Power", "11000", evse_id=1, readonly=True),
        ConfigValue("CS1", "EVSE", "Power", "11000", "MaxSet", evse_id=1),
        ConfigValue("CS1", "EVSE", "Power", "22000", evse_id=2, extra={"unit": "W"}),
    ]
    assert await store.config("CS2") == [ConfigValue("CS2", "", "K", None)]


async def test_commands_newest_first(store: AnyStore) -> None:
    answered = CommandRecord(
        "CS1",
        "Reset",
        {"type": "Immediate", "nested": {"list": [1, "two", None]}},
        at(0),
        "answered",
        {"status": "Accepted"},
        answered_at=at(1),
    )
    failed = CommandRecord("CS1", "GetLog", {}, at(5), "error", None, "NotSupported", "no")
    await store.record_command(answered)
    await store.record_command(failed)
    await store.record_command(replace(failed, station_id="CS2"))
    assert await store.commands("CS1") == [failed, answered]
    assert await store.commands("CS1", limit=1) == [failed]


# -- values kept exactly


async def test_decimals_and_times_round_trip_exactly(store: AnyStore) -> None:
    local = datetime(2025, 3, 1, 14, 0, 0, 999999, tzinfo=CEST)
    meter = Decimal("12345678901234567890.123456789012345678")
    tx = await store.start_transaction(replace(new_tx(meter=meter), started_at=local))
    assert tx.started_at == local and tx.started_at.tzinfo is UTC
    got = await store.get_transaction(tx.id)
    assert got is not None
    assert got.meter_start_wh == meter and str(got.meter_start_wh) == str(meter)
    assert got.started_at == local and got.started_at.utcoffset() == timedelta(0)
    assert got.started_at.microsecond == 999999

    values = (SampledValue(Decimal("1.50")), SampledValue(Decimal("-0.000")))
    values += (SampledValue(Decimal("1E+3")),)
    await store.record_meter_values("CS1", tx.id, 1, 1, [MeterReading(local, values)])
    (reading,) = await store.meter_values(tx.id)
    assert [str(v.value) for v in reading.values] == ["1.50", "-0.000", "1E+3"]
    assert reading.timestamp == local and reading.timestamp.tzinfo is not None


async def test_naive_times_are_refused(store: AnyStore) -> None:
    with pytest.raises(StorageError):
        await store.record_boot("CS1", None, datetime(2025, 1, 1))
    assert await store.boots("CS1") == []


async def test_closed_store_refuses_writes_and_reads(store: AnyStore) -> None:
    await store.close()
    with pytest.raises(StorageError, match="closed"):
        await store.record_boot("CS1", None, at(0))
    with pytest.raises(StorageError, match="closed"):
        await store.get_station("CS1")


async def test_a_bad_write_fails_alone(store: AnyStore) -> None:
    await store.start_transaction(new_tx("dup"))
    before = [status("Available", i, connector=i) for i in range(1, 20)]
    after = [status("Occupied", 100 + i, connector=i) for i in range(1, 20)]
    results = await asyncio.gather(
        *(store.record_status(s) for s in before),
        store.start_transaction(new_tx("dup", seconds=1)),
        *(store.record_status(s) for s in after),
        return_exceptions=True,
    )
    assert [r for r in results if r is not None and not isinstance(r, IntegrityError)] == []
    assert sum(isinstance(r, IntegrityError) for r in results) == 1
    assert len(await store.status_history("CS1", limit=100)) == 38
    assert {s.status for s in await store.connector_statuses("CS1")} == {"Occupied"}
    if isinstance(store, SqlStore):
        assert store.stats.retried_batches >= 1


# -- SQL only: group commit, draining, durability


async def test_group_commit(sql_url: str) -> None:
    store = await open_store(sql_url)
    try:
        writes, commits = store.stats.writes, store.stats.commits
        changes = [status("Available", i / 1000, connector=i % 7) for i in range(500)]
        await asyncio.gather(*(store.record_status(c) for c in changes))
        assert store.stats.writes - writes == 500
        assert store.stats.commits - commits <= 5, store.stats
        assert len(await store.status_history("CS1", limit=1000)) == 500
        assert len(await store.connector_statuses("CS1")) == 7
    finally:
        await store.close()


async def test_batches_are_bounded(sql_url: str) -> None:
    store = await open_store(sql_url, batch_max=10)
    try:
        await asyncio.gather(*(store.record_boot("CS1", str(i), at(i)) for i in range(100)))
        assert store.stats.commits >= 10
        assert len(await store.boots("CS1", limit=200)) == 100
    finally:
        await store.close()


async def test_concurrent_starts_get_distinct_ids(sql_url: str) -> None:
    store = await open_store(sql_url)
    try:
        started = await asyncio.gather(*(store.start_transaction(new_tx()) for _ in range(50)))
        assert sorted(t.id for t in started) == list(range(1, 51))
        assert all(t.station_tx_id == str(t.id) for t in started)
    finally:
        await store.close()


async def test_close_drains_pending_writes(sql_url: str) -> None:
    store = await open_store(sql_url)
    pending = [
        asyncio.ensure_future(store.record_status(status("Available", i, connector=i)))
        for i in range(200)
    ]
    await asyncio.sleep(0)  # let them queue
    await store.close()
    await asyncio.gather(*pending)  # none failed

    reopened = await open_store(sql_url)
    try:
        assert len(await reopened.status_history("CS1", limit=1000)) == 200
    finally:
        await reopened.close()


async def test_close_waits_for_reads_under_way(sql_url: str) -> None:
    store = await open_store(sql_url)
    reads = [asyncio.ensure_future(store.list_stations()) for _ in range(10)]
    await asyncio.sleep(0)  # let them check out connections
    await store.close()
    assert await asyncio.gather(*reads) == [[]] * 10
    gc.collect()  # a connection left behind by close() would warn here


async def test_a_returned_write_is_visible_to_another_store(sql_url: str) -> None:
    writer = await open_store(sql_url)
    reader = await open_store(sql_url)
    try:
        tx = await writer.start_transaction(new_tx())
        await writer.record_meter_values(
            "CS1", tx.id, 1, 1, [MeterReading(at(0), (SampledValue(Decimal("3.25")),))]
        )
        assert await reader.get_transaction(tx.id) == tx
        assert len(await reader.meter_values(tx.id)) == 1
    finally:
        await writer.close()
        await reader.close()

    again = await open_store(sql_url)
    try:
        assert await again.get_transaction(tx.id) == tx
    finally:
        await again.close()


async def test_open_store_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        await open_store(f"sqlite:///{tmp_path}/missing/dir/x.db")
    with pytest.raises(StorageError, match="cannot open"):
        await open_store("postgresql://postgres@127.0.0.1:1/nothing")


# -- the column types, on both dialects, without a database

_dialects = st.sampled_from([sqlite.dialect(), postgresql.dialect()])


@given(st.decimals(allow_nan=False), _dialects)
def test_decimal_text_is_exact(value: Decimal, dialect: Dialect) -> None:
    kind = DecimalText()
    back = kind.process_result_value(kind.process_bind_param(value, dialect), dialect)
    assert back is not None and str(back) == str(value)


_times = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.timezones())


@given(_times, _dialects)
def test_utc_datetime_keeps_the_instant(value: datetime, dialect: Dialect) -> None:
    kind = UtcDateTime()
    back = kind.process_result_value(kind.process_bind_param(value, dialect), dialect)
    # Compared in UTC: an aware time in a DST fold never equals one in another zone (PEP 495).
    assert back == value.astimezone(UTC) and back is not None and back.tzinfo is UTC


# -- units of work: writes queued, one callback once committed


def run_in_unit(store: AnyStore, work: Coroutine[Any, Any, T]) -> tuple[WriteUnit, T]:
    """Run ``work`` in an active unit of ``store``; it must end without suspending."""
    unit = store.write_unit()
    context = contextvars.copy_context()
    context.run(unit.activate)
    try:
        step = context.run(work.send, None)
    except StopIteration as stop:
        return unit, stop.value
    work.close()
    pytest.fail(f"the work suspended on {step!r}")


async def committed(unit: WriteUnit) -> BaseException | None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    unit.when_committed(outcome.set_result)
    return await asyncio.wait_for(outcome, 10)


async def test_writes_in_a_unit_are_queued_then_reported_committed(store: AnyStore) -> None:
    writes = store.stats.writes if isinstance(store, SqlStore) else 0

    async def work() -> str:
        await store.record_status(status("Charging", 1))
        await store.record_boot("CS1", "PowerUp", at(1))
        return "answered"

    unit, result = run_in_unit(store, work())
    assert result == "answered"
    if isinstance(store, SqlStore):
        assert store.stats.writes == writes  # queued, not yet committed
    assert await committed(unit) is None
    assert [s.status for s in await store.status_history("CS1")] == ["Charging"]
    assert len(await store.boots("CS1")) == 1


async def test_a_unit_without_writes_is_committed_at_once(store: AnyStore) -> None:
    async def work() -> None:
        await store.has_active_transaction("TAG1")  # kept in memory: no suspension

    unit, _ = run_in_unit(store, work())
    calls: list[BaseException | None] = []
    unit.when_committed(calls.append)
    assert calls == [None]


async def test_a_unit_reports_its_failed_write_and_keeps_the_others(store: AnyStore) -> None:
    await store.start_transaction(new_tx("dup"))

    async def work() -> None:
        await store.record_status(status("Charging", 1))
        await store.start_transaction(new_tx("dup", seconds=5))

    try:
        unit, _ = run_in_unit(store, work())
    except IntegrityError:  # a store that writes at once raises it in the work itself
        pass
    else:
        assert isinstance(await committed(unit), IntegrityError)
    assert [s.status for s in await store.status_history("CS1")] == ["Charging"]


async def test_a_failed_start_leaves_nothing_in_memory(sql_url: str) -> None:
    """The station is answered InternalError; if a copy of the transaction stayed in memory, its
    resent start would be answered with an id the database does not have."""
    store = await open_store(sql_url)
    try:
        first = await store.start_transaction(new_tx("dup"))
        resent = new_tx("dup", seconds=5, tag="TAG2")

        async def work() -> Transaction:
            return await store.start_transaction(resent)

        unit, phantom = run_in_unit(store, work())
        assert isinstance(await committed(unit), IntegrityError)
        assert await store.get_transaction(phantom.id) is None
        found = await store.find_transaction("CS1", "dup")
        assert found is not None and found.id == first.id
        assert await store.find_same_start(resent) is None
        assert not await store.has_active_transaction("TAG2")
        assert [t.id for t in await store.active_transactions("CS1")] == [first.id]
    finally:
        await store.close()


async def test_a_failed_update_is_read_again_from_the_database(fresh_db_url: Any) -> None:
    url = fresh_db_url("sqlite")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:  # a stop the database refuses
        db.execute(
            "CREATE TRIGGER no_boom BEFORE UPDATE ON transactions WHEN NEW.stop_reason = 'boom' "
            "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
        )
    store = await open_store(url)
    try:
        tx = await store.start_transaction(new_tx())
        ended = replace(tx, state=TransactionState.ENDED, stopped_at=at(60), stop_reason="boom")

        async def work() -> None:
            await store.update_transaction(ended)

        unit, _ = run_in_unit(store, work())
        assert isinstance(await committed(unit), StorageError)
        # the copy kept in memory is the database's again: active, so a resent stop is stored
        for _ in range(200):
            if await store.active_transactions("CS1"):
                break
            await asyncio.sleep(0.01)
        assert [t.id for t in await store.active_transactions("CS1")] == [tx.id]
        assert await store.has_active_transaction("TAG1")
        await store.update_transaction(replace(ended, stop_reason="Local"))
        stored = await store.get_transaction(tx.id)
        assert stored is not None and stored.state is TransactionState.ENDED
        assert stored.stop_reason == "Local"
    finally:
        await store.close()


async def test_settled_waits_for_the_writes_queued_before_it(sql_url: str) -> None:
    store = await open_store(sql_url)
    try:
        await store.settled()  # nothing queued: at once

        async def work() -> None:
            for n in range(50):
                await store.record_boot(f"CS{n}", "PowerUp", at(n))

        unit, _ = run_in_unit(store, work())
        await store.settled()
        calls: list[BaseException | None] = []
        unit.when_committed(calls.append)
        assert calls == [None]  # settled already, so the callback runs at once
    finally:
        await store.close()


async def test_transaction_ids_go_on_after_a_restart(sql_url: str) -> None:
    store = await open_store(sql_url)
    try:
        first = [await store.start_transaction(new_tx(seconds=i)) for i in range(3)]
    finally:
        await store.close()
    again = await open_store(sql_url)
    try:
        later = await again.start_transaction(new_tx(seconds=10))
    finally:
        await again.close()
    assert later.id > max(t.id for t in first)


# -- operator lists: keyset pages, filters, deletions, API tokens


async def all_pages(fetch: Any, query: ListQuery, key: Callable[[Any], Any]) -> list[Any]:
    """Every record, page by page, following ``after`` as the API's cursor does."""
    seen: list[Any] = []
    while True:
        page, more = await fetch(query)
        seen.extend(page)
        if not more:
            return seen
        last = page[-1]
        query = replace(query, after=(key(last), last.id if hasattr(last, "id") else last.value))


async def test_transactions_page_by_start_time_both_ways(store: AnyStore) -> None:
    started = [
        await store.start_transaction(new_tx(seconds=s, station=f"CS{s % 3}", tag=f"T{s}"))
        for s in (5, 1, 4, 1, 3, 2, 0)
    ]
    by_start = sorted(started, key=lambda t: (t.started_at, t.id))
    query = ListQuery(sort="started_at", limit=2)
    ascending = await all_pages(store.page_transactions, query, lambda t: t.started_at)
    assert [t.id for t in ascending] == [t.id for t in by_start]
    query = ListQuery(sort="started_at", descending=True, limit=3)
    descending = await all_pages(store.page_transactions, query, lambda t: t.started_at)
    assert [t.id for t in descending] == [t.id for t in reversed(by_start)]


async def test_transactions_filtered_by_station_state_and_time(store: AnyStore) -> None:
    txs = [await store.start_transaction(new_tx(seconds=s, station=f"CS{s % 2}")) for s in range(6)]
    ended = replace(txs[2], state=TransactionState.ENDED, stopped_at=at(100))
    await store.update_transaction(ended)
    query = ListQuery(
        sort="id",
        filters=(
            Filter("station_id", "eq", "CS0"),
            Filter("state", "eq", "Active"),
            Filter("started_at", "ge", at(1)),
            Filter("started_at", "lt", at(5)),
        ),
    )
    page, more = await store.page_transactions(query)
    assert [t.id for t in page] == [txs[4].id] and not more
    page, _ = await store.page_transactions(
        ListQuery(sort="id", filters=(Filter("state", "eq", "Ended"),))
    )
    assert page == [ended]


async def test_stations_and_tokens_page_by_key_and_delete(store: AnyStore) -> None:
    for i in range(7):
        registration = Registration.ACCEPTED if i % 2 else Registration.PENDING
        await store.save_station(Station(f"CS{i}", registration=registration))
        await store.save_token(IdToken(f"TAG{i}", blocked=i == 3))
    query = ListQuery(sort="id", limit=3)
    assert [s.id for s in await all_pages(store.page_stations, query, lambda s: s.id)] == [
        f"CS{i}" for i in range(7)
    ]
    pending, _ = await store.page_stations(
        ListQuery(sort="id", descending=True, filters=(Filter("registration", "eq", "Pending"),))
    )
    assert [s.id for s in pending] == ["CS6", "CS4", "CS2", "CS0"]
    blocked, _ = await store.page_tokens(
        ListQuery(sort="value", filters=(Filter("blocked", "eq", True),))
    )
    assert [t.value for t in blocked] == ["TAG3"]

    assert await store.delete_station("CS1") and not await store.delete_station("CS1")
    assert await store.get_station("CS1") is None
    assert await store.delete_token("TAG1") and not await store.delete_token("TAG1")
    assert await store.get_token("TAG1") is None
    page, _ = await store.page_tokens(ListQuery(sort="value"))
    assert "TAG1" not in [t.value for t in page]


async def test_api_tokens(store: AnyStore) -> None:
    token = ApiToken("ci", Role.OPERATOR, "ab" * 32, at(0))
    stored = await store.save_api_token(token)
    assert stored.id is not None and replace(stored, id=None) == token
    with pytest.raises(IntegrityError):
        await store.save_api_token(replace(token, name="again"))
    assert await store.find_api_token("ab" * 32) == stored
    assert await store.find_api_token("cd" * 32) is None
    assert await store.revoke_api_token(stored.id)
    assert not await store.revoke_api_token(999)
    assert await store.list_api_tokens() == [replace(stored, revoked=True)]
