"""The message log's SQL store on SQLite and PostgreSQL: saving, paging and every filter, the
search's LIKE wildcards taken literally, and the retention deletes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chargegrid.adapters.storage.message_log import (
    SqlMessageLogStore,
    escape_like,
    open_message_log_store,
)
from chargegrid.domain.message_log import LoggedMessage
from chargegrid.service.message_log import MessageLog, MessageQuery
from chargegrid.testing.fakes import FixedClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def log_store(sql_url: str) -> AsyncIterator[SqlMessageLogStore]:
    opened = open_message_log_store(sql_url)
    try:
        yield opened
    finally:
        await opened.close()


def entry(
    unique_id: str,
    payload: str,
    *,
    station: str = "CS-1",
    minutes: int = 0,
    direction: str = "in",
    kind: str = "CALL",
    action: str | None = "DataTransfer",
) -> LoggedMessage:
    return LoggedMessage(
        station_id=station,
        at=T0 + timedelta(minutes=minutes),
        direction=direction,  # type: ignore[arg-type]
        message_type=kind,  # type: ignore[arg-type]
        unique_id=unique_id,
        action=action,
        payload=payload,
        truncated=unique_id == "cut",
    )


async def ids(store: SqlMessageLogStore, **filters: object) -> list[str | None]:
    found, _ = await store.page(MessageQuery(station_id="CS-1", **filters))  # type: ignore[arg-type]
    return [e.unique_id for e in found]


async def test_saved_entries_come_back_newest_first_with_every_field(
    log_store: SqlMessageLogStore,
) -> None:
    await log_store.append(
        [
            entry("1", '[2,"1","Heartbeat",{}]', action="Heartbeat"),
            entry("1", '[3,"1",{}]', direction="out", kind="CALLRESULT", action="Heartbeat"),
            entry("cut", "x" * 10, minutes=1),
            entry("9", "other station", station="CS-2"),
        ]
    )
    found, more = await log_store.page(MessageQuery(station_id="CS-1"))
    assert not more
    assert [(e.unique_id, e.direction, e.message_type, e.truncated) for e in found] == [
        ("cut", "in", "CALL", True),
        ("1", "out", "CALLRESULT", False),
        ("1", "in", "CALL", False),
    ]
    assert found[2].at == T0 and found[2].at.tzinfo is not None
    assert found[2].payload == '[2,"1","Heartbeat",{}]'
    ids_ = [e.id for e in found]
    assert all(i is not None for i in ids_) and ids_ == sorted(ids_, reverse=True)  # type: ignore[type-var]
    assert await log_store.has_station("CS-2") and not await log_store.has_station("CS-3")


async def test_filters_and_the_cursor(log_store: SqlMessageLogStore) -> None:
    await log_store.append(
        [
            entry("a", "[2]", minutes=0, action="Heartbeat"),
            entry("b", "[3]", minutes=1, direction="out", kind="CALLRESULT", action="Heartbeat"),
            entry("c", "[2]", minutes=2, direction="out", action="Reset"),
            entry("d", "[4]", minutes=3, kind="CALLERROR", action="Reset"),
            entry("e", "junk", minutes=4, kind="invalid", action=None),
        ]
    )
    assert await ids(log_store, direction="out") == ["c", "b"]
    assert await ids(log_store, action="Reset") == ["d", "c"]
    assert await ids(log_store, message_type="invalid") == ["e"]
    assert await ids(log_store, unique_id="b") == ["b"]
    assert await ids(log_store, since=T0 + timedelta(minutes=2)) == ["e", "d", "c"]
    assert await ids(log_store, until=T0 + timedelta(minutes=2)) == ["b", "a"]
    assert await ids(log_store, direction="in", action="Reset", message_type="CALLERROR") == ["d"]
    first, more = await log_store.page(MessageQuery(station_id="CS-1", limit=2))
    assert [e.unique_id for e in first] == ["e", "d"] and more
    assert first[-1].id is not None
    rest = await ids(log_store, limit=10, before_id=first[-1].id)
    assert rest == ["c", "b", "a"]


async def test_search_takes_like_wildcards_literally_and_ignores_case(
    log_store: SqlMessageLogStore,
) -> None:
    await log_store.append(
        [
            entry("pct", '{"data":"100% sure"}'),
            entry("under", '{"idTag":"ABC_1"}'),
            entry("plain", '{"idTag":"ABCX1","data":"100 sure"}'),
            entry("slash", '{"path":"C:\\\\dir"}'),
        ]
    )
    assert await ids(log_store, text="100%") == ["pct"]
    assert await ids(log_store, text="abc_1") == ["under"]
    assert await ids(log_store, text="%") == ["pct"]
    assert await ids(log_store, text="_") == ["under"]
    assert await ids(log_store, text="\\\\dir") == ["slash"]
    assert await ids(log_store, text="SURE") == ["plain", "pct"]
    assert await ids(log_store, text="'; DROP TABLE ocpp_messages; --") == []
    assert escape_like("a%b_c\\") == "%a\\%b\\_c\\\\%"


async def test_retention_deletes_in_chunks(log_store: SqlMessageLogStore) -> None:
    await log_store.append([entry(str(n), "[]", minutes=n) for n in range(10)])
    cutoff = T0 + timedelta(minutes=5)
    assert await log_store.delete_older(cutoff, 3) == 3
    assert await log_store.delete_older(cutoff, 3) == 2
    assert await log_store.delete_older(cutoff, 3) == 0
    assert await ids(log_store) == ["9", "8", "7", "6", "5"]
    assert await log_store.keep_newest(2, 2) == 2
    assert await log_store.keep_newest(2, 2) == 1
    assert await log_store.keep_newest(2, 2) == 0
    assert await ids(log_store) == ["9", "8"]


async def test_the_service_saves_through_the_sql_store(log_store: SqlMessageLogStore) -> None:
    message_log = MessageLog(log_store, FixedClock(T0), monotonic=lambda: 100.0)
    message_log.tap("CS-1", "in", b'[2,"u1","Heartbeat",{}]', 100.0)
    message_log.tap("CS-1", "out", b'[3,"u1",{"currentTime":"2026-03-01T12:00:00Z"}]', 100.0)
    message_log.tap("CS-1", "in", b"\x00not json\xff", 100.0)
    assert await message_log.flush() == 3
    found, _ = await log_store.page(MessageQuery(station_id="CS-1"))
    assert [(e.message_type, e.action, e.payload[:9]) for e in found] == [
        ("invalid", None, "\\u0000not"),
        ("CALLRESULT", "Heartbeat", '[3,"u1",{'),
        ("CALL", "Heartbeat", '[2,"u1","'),
    ]
    assert found[0].at == T0
