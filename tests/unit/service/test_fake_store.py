"""The in-memory fakes. The full Store contract runs against FakeStore in
``tests/integration/storage/test_sql_store.py`` (beside SqlStore on SQLite and PostgreSQL); these
are the fakes' own rules, fast and without a database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chargegrid.adapters.storage.errors import IntegrityError, StorageError
from chargegrid.domain.model import AuthorizationStatus, LocalListEntry, Station, StatusChange
from chargegrid.service.ports import Clock, NewTransaction, Store
from chargegrid.testing.fakes import FakeStore, FixedClock

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def start(station_tx_id: str | None = None, meter: int = 0) -> NewTransaction:
    return NewTransaction("CS1", station_tx_id, 1, 1, "TAG", T0, Decimal(meter))


def test_fakes_satisfy_the_ports() -> None:
    store: Store = FakeStore()  # mypy checks the assignment; isinstance cannot
    clock: Clock = FixedClock()
    assert store is not None and clock is not None


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    clock.advance(90.5)
    assert clock.now() == datetime(2025, 6, 1, 12, 1, 30, 500000, tzinfo=UTC)


def test_fixed_clock_refuses_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2025, 1, 1))


async def test_ids_from_one_and_resent_start_found() -> None:
    store = FakeStore()
    first = await store.start_transaction(start())
    assert (first.id, first.station_tx_id) == (1, "1")
    assert await store.find_same_start(start()) == first
    assert await store.find_same_start(start(meter=5)) is None
    second = await store.start_transaction(start("abc"))
    assert (second.id, second.station_tx_id) == (2, "abc")
    with pytest.raises(IntegrityError):
        await store.start_transaction(start("abc"))
    assert (await store.start_transaction(start())).id == 3  # a refused start uses no id


async def test_stored_objects_are_not_shared_with_callers() -> None:
    store = FakeStore()
    station = Station("CS1")
    await store.save_station(station)
    station.vendor = "changed after saving"
    assert await store.get_station("CS1") == Station("CS1")


async def test_times_come_back_in_utc() -> None:
    store = FakeStore()
    local = datetime(2025, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    await store.record_status(StatusChange("CS1", 1, 1, "Available", local))
    (current,) = await store.connector_statuses("CS1")
    assert current.timestamp == T0 and current.timestamp.tzinfo is UTC


async def test_differential_list_removes_tokens_without_status() -> None:
    store = FakeStore()
    accepted = AuthorizationStatus.ACCEPTED
    entries = [LocalListEntry("A", accepted), LocalListEntry("B", accepted)]
    await store.save_local_list("CS1", 1, entries, full=True)
    await store.save_local_list("CS1", 2, [LocalListEntry("A", None)], full=False)
    assert await store.local_list("CS1") == [LocalListEntry("B", accepted)]
    assert await store.local_list_version("CS1") == 2


async def test_closed_fake_refuses_writes() -> None:
    store = FakeStore()
    await store.close()
    with pytest.raises(StorageError, match="closed"):
        await store.save_station(Station("CS1"))
