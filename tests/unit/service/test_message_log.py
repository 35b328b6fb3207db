"""The OCPP message log service on the in-memory store: header reading, batching, correlation of
answers to their CALLs, the drop-oldest bound, truncation, live tails and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chargegrid.domain.message_log import LoggedMessage
from chargegrid.service.feed import Lagged
from chargegrid.service.message_log import (
    LogOptions,
    MessageLog,
    MessageQuery,
    read_header,
)
from chargegrid.testing.fakes import FakeMessageLogStore, FixedClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock for the log that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_log(**options: float) -> tuple[MessageLog, FakeMessageLogStore, FixedClock, Ticks]:
    store, clock, ticks = FakeMessageLogStore(), FixedClock(START), Ticks()
    settings = LogOptions(**options)  # type: ignore[arg-type]
    return MessageLog(store, clock, settings, monotonic=ticks), store, clock, ticks


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'[2,"u1","Heartbeat",{}]', ("CALL", "u1", "Heartbeat")),
        (b'[3,"u1",{"currentTime":"2026-03-01T00:00:00Z"}]', ("CALLRESULT", "u1", None)),
        (b'[4,"u1","NotImplemented","",{}]', ("CALLERROR", "u1", None)),
        ('[2, "u\\u00002", "Reset", {}]', ("CALL", "u\\u00002", "Reset")),
        (b"not json", ("invalid", None, None)),
        (b'{"a": 1}', ("invalid", None, None)),
        (b'[2,"u1"]', ("invalid", None, None)),
        (b'[5,"u1","x",{}]', ("invalid", None, None)),
        (b'[2,17,"Heartbeat",{}]', ("invalid", None, None)),
        (b'[2,"u1",17,{}]', ("invalid", None, None)),
        (b"\xff\xfe", ("invalid", None, None)),
        (b"", ("invalid", None, None)),
    ],
)
def test_read_header(frame: bytes | str, expected: tuple[str, str | None, str | None]) -> None:
    assert read_header(frame) == expected


async def test_frames_are_saved_in_batches_when_enough_wait_or_the_interval_passes() -> None:
    message_log, store, _, _ = make_log(flush_interval_s=30, batch_rows=3)
    await message_log.start()
    try:
        message_log.tap("CS-1", "in", b'[2,"1","Heartbeat",{}]', 1000.0)
        message_log.tap("CS-1", "out", b'[3,"1",{}]', 1000.0)
        await asyncio.sleep(0.05)
        assert store.entries == []  # neither the interval passed nor 3 rows wait
        message_log.tap("CS-1", "in", b'[2,"2","Heartbeat",{}]', 1000.0)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(store.entries) == 3:
                break
        assert [e.unique_id for e in store.entries] == ["1", "1", "2"]
    finally:
        await message_log.stop()

    message_log, store, _, _ = make_log(flush_interval_s=0.05, batch_rows=500)
    await message_log.start()
    try:
        message_log.tap("CS-1", "in", b'[2,"1","Heartbeat",{}]', 1000.0)
        await asyncio.sleep(0.3)
        assert len(store.entries) == 1 and message_log.saved == 1
    finally:
        await message_log.stop()
    assert store.closed


async def test_stop_saves_what_is_queued() -> None:
    message_log, store, _, _ = make_log(flush_interval_s=30)
    await message_log.start()
    message_log.tap("CS-1", "in", b'[2,"1","Heartbeat",{}]', 1000.0)
    await message_log.stop()
    assert len(store.entries) == 1


async def test_answers_get_the_action_of_the_call_they_answer_per_station_and_direction() -> None:
    message_log, store, clock, ticks = make_log()
    tap = message_log.tap
    tap("CS-1", "in", b'[2,"a","Heartbeat",{}]', 1000.0)
    tap("CS-1", "out", b'[2,"a","Reset",{"type":"Soft"}]', 1000.5)  # same id, other direction
    tap("CS-2", "out", b'[3,"a",{}]', 1001.0)  # another station's answer: no match
    tap("CS-1", "out", b'[3,"a",{"currentTime":"x"}]', 1001.0)
    tap("CS-1", "in", b'[4,"a","NotSupported","no",{}]', 1002.0)
    tap("CS-1", "in", b'[3,"a",{}]', 1003.0)  # answered already: no CALL waits for it
    tap("CS-1", "in", b"garbage", 1004.0)
    ticks.now = 1004.0
    clock.advance(4)
    assert await message_log.flush() == 7
    got = [
        (e.station_id, e.direction, e.message_type, e.unique_id, e.action) for e in store.entries
    ]
    assert got == [
        ("CS-1", "in", "CALL", "a", "Heartbeat"),
        ("CS-1", "out", "CALL", "a", "Reset"),
        ("CS-2", "out", "CALLRESULT", "a", None),
        ("CS-1", "out", "CALLRESULT", "a", "Heartbeat"),
        ("CS-1", "in", "CALLERROR", "a", "Reset"),
        ("CS-1", "in", "CALLRESULT", "a", None),
        ("CS-1", "in", "invalid", None, None),
    ]
    # Loop time becomes wall time: the first frame came 4 s before "now".
    assert store.entries[0].at == START
    assert store.entries[-1].at == START + timedelta(seconds=4)
    assert [e.id for e in store.entries] == [1, 2, 3, 4, 5, 6, 7]


async def test_a_full_queue_drops_the_oldest_unsaved_and_counts_them() -> None:
    message_log, store, _, _ = make_log(queue_limit=5)
    for n in range(8):
        message_log.tap("CS-1", "in", f'[2,"{n}","Heartbeat",{{}}]'.encode(), 1000.0)
    assert message_log.dropped == 3
    await message_log.flush()
    assert [e.unique_id for e in store.entries] == ["3", "4", "5", "6", "7"]


async def test_a_refused_batch_is_counted_and_the_log_goes_on() -> None:
    message_log, store, _, _ = make_log()
    store.fail_next = 1
    message_log.tap("CS-1", "in", b'[2,"1","Heartbeat",{}]', 1000.0)
    assert await message_log.flush() == 0
    assert message_log.failed == 1
    message_log.tap("CS-1", "in", b'[2,"2","Heartbeat",{}]', 1000.0)
    assert await message_log.flush() == 1
    assert [e.unique_id for e in store.entries] == ["2"]


async def test_big_frames_are_cut_and_marked_and_nul_is_escaped() -> None:
    message_log, store, _, _ = make_log(max_payload_bytes=32)
    big = b'[2,"1","DataTransfer",{"data":"' + b"x" * 100 + b'"}]'
    message_log.tap("CS-1", "in", big, 1000.0)
    message_log.tap("CS-1", "in", b"\x00bad\xff", 1000.0)
    await message_log.flush()
    cut, bad = store.entries
    assert (cut.truncated, cut.payload, cut.action) == (True, big[:32].decode(), "DataTransfer")
    assert (bad.truncated, bad.payload, bad.message_type) == (False, "\\u0000bad\ufffd", "invalid")


async def test_search_filters_on_the_fake_store() -> None:
    message_log, _, _, _ = make_log()
    message_log.tap("CS-1", "in", b'[2,"1","Authorize",{"idTag":"ABC_1"}]', 1000.0)
    message_log.tap("CS-1", "out", b'[3,"1",{"idTagInfo":{"status":"Accepted"}}]', 1000.0)
    message_log.tap("CS-2", "in", b'[2,"9","Authorize",{"idTag":"ABC_1"}]', 1000.0)
    await message_log.flush()
    found, more = await message_log.page(MessageQuery(station_id="CS-1", text="abc_1"))
    assert [e.direction for e in found] == ["in"] and not more
    found, more = await message_log.page(MessageQuery(station_id="CS-1", action="Authorize"))
    assert [e.direction for e in found] == ["out", "in"]  # newest first
    found, more = await message_log.page(MessageQuery(station_id="CS-1", limit=1))
    assert len(found) == 1 and more


async def test_a_live_tail_gets_each_entry_of_its_station_at_once_before_it_is_saved() -> None:
    message_log, store, _, _ = make_log(flush_interval_s=30)
    tail = message_log.tail("CS-1")
    message_log.tap("CS-2", "in", b'[2,"x","Heartbeat",{}]', 1000.0)
    message_log.tap("CS-1", "in", b'[2,"1","Heartbeat",{}]', 1000.0)
    message_log.tap("CS-1", "out", b'[3,"1",{}]', 1000.0)
    first = await tail.next(1)
    second = await tail.next(1)
    assert first is not None and second is not None
    assert (first.unique_id, first.action, first.id) == ("1", "Heartbeat", None)
    assert (second.message_type, second.action) == ("CALLRESULT", "Heartbeat")
    assert await tail.next(0.01) is None
    assert store.entries == []  # saved by the writer later, independently
    tail.close()
    message_log.tap("CS-1", "in", b'[2,"2","Heartbeat",{}]', 1000.0)
    assert message_log._tails == {}


async def test_a_tail_that_falls_behind_is_cut_off() -> None:
    message_log, _, _, _ = make_log()
    tail = message_log.tail("CS-1", limit=2)
    for n in range(3):
        message_log.tap("CS-1", "in", f'[2,"{n}","Heartbeat",{{}}]'.encode(), 1000.0)
    await asyncio.sleep(0)
    assert (await tail.next(1)) is not None
    assert (await tail.next(1)) is not None
    with pytest.raises(Lagged):
        await tail.next(1)


async def test_retention_deletes_what_is_older_than_the_retention_time_then_beyond_max_rows() -> (
    None
):
    message_log, store, clock, _ = make_log(retention_days=7, max_rows=3, delete_chunk=2)
    day = timedelta(days=1)
    await store.append(
        [
            LoggedMessage(
                station_id="CS-1",
                at=START - age * day,
                direction="in",
                message_type="CALL",
                unique_id=str(age),
                action="Heartbeat",
                payload="[]",
            )
            for age in (10, 9, 8, 6, 5, 4, 3, 2)
        ]
    )
    assert await message_log.enforce_retention() == 5  # 3 older than 7 days, 2 beyond 3 rows
    assert [e.unique_id for e in store.entries] == ["4", "3", "2"]
    clock.advance(5 * 86400)  # the cutoff is now "2": the two before it go
    assert await message_log.enforce_retention() == 2
    assert [e.unique_id for e in store.entries] == ["2"]


async def test_the_retention_task_runs_at_start() -> None:
    message_log, store, _, _ = make_log(retention_days=1, retention_interval_s=60)
    old = LoggedMessage(
        station_id="CS-1",
        at=START - timedelta(days=2),
        direction="in",
        message_type="invalid",
        unique_id=None,
        action=None,
        payload="x",
    )
    await store.append([old])
    await message_log.start()
    try:
        for _ in range(100):
            if not store.entries:
                break
            await asyncio.sleep(0.01)
        assert store.entries == []
    finally:
        await message_log.stop()
