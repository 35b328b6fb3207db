"""A node's connection hooks: under a storm the stations' state is read a few at a time; a
station whose state cannot be read is asked to reconnect; and a station that moves (to another
node, or to a new connection here) is served there only once its old connection's work is
settled."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import msgspec

from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.service.cluster.node import _BATCH_MOST, _BATCHES, ClusterHooks
from chargegrid.service.ocpp.context import StationContext


class _Node:
    """What ClusterHooks uses of a ClusterNode, recording what it was asked."""

    def __init__(self, *, fail: bool = False) -> None:
        self.log: list[tuple[str, ...]] = []
        self.reading = 0
        self.most = 0
        self.connections: set[str] = set()  # stations with a live connection here
        self.holders: dict[str, str] = {}  # station -> the other node holding it
        self.unsettled = 0  # writes queued, not settled
        self.writes_done = asyncio.Event()
        self.writes_done.set()
        self.handed: asyncio.Event = asyncio.Event()
        self.handed.set()
        self.fail = fail
        self.fail_reads = False
        self.batches: list[int] = []
        self.directory = SimpleNamespace(holder=self._holder)
        self.state = SimpleNamespace(
            adopt_many=self._adopt_many, settled=self._settled, release=self._release_state
        )
        self.local = SimpleNamespace(connected=self._connected, disconnect=self._disconnect)

    def _holder(self, station_id: str) -> tuple[str, str] | None:
        node = self.holders.get(station_id)
        return None if node is None else (node, "1.6")

    def _connected(self, station_id: str) -> str | None:
        return "1.6" if station_id in self.connections else None

    def _disconnect(self, station_id: str, reason: str) -> bool:
        self.log.append(("disconnect", station_id, reason))
        self.connections.discard(station_id)
        return True

    async def _adopt_many(self, station_ids: list[str]) -> None:
        self.log.extend(("adopt", station_id) for station_id in station_ids)
        self.batches.append(len(station_ids))
        self.reading += 1
        self.most = max(self.most, self.reading)
        await asyncio.sleep(0.01)
        self.reading -= 1
        if self.fail_reads:
            raise TimeoutError("the pool's connections are all taken")

    async def _settled(self) -> None:
        await self.writes_done.wait()

    def _release_state(self, station_id: str) -> None:
        self.log.append(("forget", station_id))

    def claim(self, station_id: str, version: str) -> None:
        self.log.append(("claim", station_id))

    def release(self, station_id: str) -> None:
        self.log.append(("release", station_id))

    async def handed_over(self, node: str, station_id: str) -> None:
        self.log.append(("handoff", node, station_id))
        await self.handed.wait()


class _Inner:
    """The OCPP service: answers each message when the test says so."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.pending: list[Any] = []
        self.served: list[str] = []
        self.offline: list[str] = []

    async def connected(self, ctx: StationContext) -> None:
        if self.fail:
            raise TimeoutError("the pool's connections are all taken")

    async def disconnected(self, ctx: StationContext) -> None:
        self.offline.append(ctx.station_id)

    def serve(self, ctx: StationContext, action: str, request: Any, respond: Any) -> None:
        self.served.append(action)
        self.pending.append(respond)

    def answer_all(self, error: BaseException | None = None) -> None:
        pending, self.pending = self.pending, []
        for respond in pending:
            respond(None if error else msgspec.Struct(), error)


def _hooks(*, fail: bool = False) -> tuple[ClusterHooks, _Node, _Inner]:
    node, inner = _Node(), _Inner(fail=fail)
    return ClusterHooks(node, inner), node, inner  # type: ignore[arg-type]


def _connect(node: _Node, station_id: str) -> StationContext:
    node.connections.add(station_id)
    return StationContext(station_id, "1.6")


async def _soon(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not reached")


async def test_a_storm_reads_the_stations_state_in_a_few_batches() -> None:
    hooks, node, _ = _hooks()
    ctxs = [_connect(node, f"S{i}") for i in range(1200)]
    await asyncio.gather(*(hooks.connected(ctx) for ctx in ctxs))
    assert sorted(e[1] for e in node.log if e[0] == "adopt") == sorted(c.station_id for c in ctxs)
    assert len(node.batches) <= 5 and max(node.batches) <= _BATCH_MOST
    assert node.most <= _BATCHES
    assert not [e for e in node.log if e[0] == "disconnect"]


async def test_a_station_whose_transactions_cannot_be_read_is_still_served() -> None:
    hooks, node, inner = _hooks()
    node.fail_reads = True
    ctx = _connect(node, "S1")
    hooks.serve(ctx, "BootNotification", None, lambda r, e: None)
    await hooks.connected(ctx)  # logged; its messages read the database instead
    await asyncio.sleep(0)
    assert inner.served == ["BootNotification"]


async def test_a_station_whose_state_cannot_be_read_is_asked_to_reconnect() -> None:
    hooks, node, _ = _hooks(fail=True)
    await hooks.connected(_connect(node, "S1"))  # no exception escapes the hook
    assert [e for e in node.log if e[0] == "disconnect"] == [
        ("disconnect", "S1", "its state could not be read; reconnect")
    ]


async def test_messages_wait_for_the_state_to_be_read() -> None:
    hooks, node, inner = _hooks()
    ctx = _connect(node, "S1")
    hooks.serve(ctx, "BootNotification", None, lambda r, e: None)  # before connected ran
    assert inner.served == []
    await hooks.connected(ctx)
    await asyncio.sleep(0)  # a future's callbacks run at the loop's next turn
    assert inner.served == ["BootNotification"]


async def test_a_new_connection_here_waits_for_the_old_ones_answers() -> None:
    hooks, node, inner = _hooks()
    old = _connect(node, "S1")
    await hooks.connected(old)
    hooks.serve(old, "StartTransaction", None, lambda r, e: None)
    node.writes_done.clear()  # others' writes are queued: an answered start's are committed
    new = StationContext("S1", "1.6")  # the station reconnected: the old connection replaced
    connecting = asyncio.ensure_future(hooks.connected(new))
    await asyncio.sleep(0.05)
    assert node.log.count(("adopt", "S1")) == 1  # not read again while the start is under way
    inner.answer_all()
    await asyncio.wait_for(connecting, 1)
    assert node.log.count(("adopt", "S1")) == 2


async def test_after_an_error_answer_the_writes_queued_are_waited_for_too() -> None:
    hooks, node, inner = _hooks()
    old = _connect(node, "S1")
    await hooks.connected(old)
    answers: list[Any] = []
    hooks.serve(old, "StartTransaction", None, lambda r, e: answers.append(e))
    node.writes_done.clear()  # what the failed handler wrote first is queued, not committed
    connecting = asyncio.ensure_future(hooks.connected(StationContext("S1", "1.6")))
    inner.answer_all(error=OcppError(ErrorKind.INTERNAL, "the database failed"))
    assert len(answers) == 1
    await asyncio.sleep(0.05)
    assert node.log.count(("adopt", "S1")) == 1  # answered, but its writes not yet settled
    node.writes_done.set()
    await asyncio.wait_for(connecting, 1)
    assert node.log.count(("adopt", "S1")) == 2


async def test_the_node_that_held_the_station_is_asked_to_let_it_go_first() -> None:
    hooks, node, _ = _hooks()
    node.holders["S1"] = "node-a"
    node.handed.clear()
    connecting = asyncio.ensure_future(hooks.connected(_connect(node, "S1")))
    await _soon(lambda: ("handoff", "node-a", "S1") in node.log)
    await asyncio.sleep(0.05)
    assert ("adopt", "S1") not in node.log
    node.handed.set()
    await asyncio.wait_for(connecting, 1)
    assert node.log.index(("handoff", "node-a", "S1")) < node.log.index(("adopt", "S1"))


async def test_letting_go_closes_the_connection_and_waits_for_its_work() -> None:
    hooks, node, inner = _hooks()
    ctx = _connect(node, "S1")
    await hooks.connected(ctx)
    hooks.serve(ctx, "MeterValues", None, lambda r, e: None)
    letting_go = asyncio.ensure_future(hooks.let_go("S1"))
    await asyncio.sleep(0.05)
    assert ("disconnect", "S1", "connected to another node") in node.log
    assert not letting_go.done()
    inner.answer_all()
    await asyncio.wait_for(letting_go, 1)


async def test_a_connection_let_go_before_its_state_was_read_is_not_served() -> None:
    hooks, node, inner = _hooks()
    ctx = _connect(node, "S1")
    answers: list[BaseException | None] = []
    hooks.serve(ctx, "StartTransaction", None, lambda r, e: answers.append(e))
    node.holders["S1"] = "node-a"
    node.handed.clear()
    connecting = asyncio.ensure_future(hooks.connected(ctx))
    await _soon(lambda: ("handoff", "node-a", "S1") in node.log)
    await hooks.let_go("S1")  # meanwhile it connected to a third node, which asked this one
    node.handed.set()
    await asyncio.wait_for(connecting, 1)
    assert inner.served == []  # the third node serves what the station resends
    assert len(answers) == 1 and isinstance(answers[0], OcppError)


async def test_a_station_is_announced_gone_only_once_its_work_is_settled() -> None:
    hooks, node, inner = _hooks()
    ctx = _connect(node, "S1")
    await hooks.connected(ctx)
    hooks.serve(ctx, "StopTransaction", None, lambda r, e: None)
    node.connections.discard("S1")
    leaving = asyncio.ensure_future(hooks.disconnected(ctx))
    await asyncio.sleep(0.05)
    assert ("release", "S1") not in node.log
    inner.answer_all()
    await asyncio.wait_for(leaving, 1)
    assert ("release", "S1") in node.log and ("forget", "S1") in node.log
    assert inner.offline == ["S1"]


async def test_a_station_gone_while_its_old_node_lets_go_is_not_adopted() -> None:
    hooks, node, _ = _hooks()
    node.holders["S1"] = "node-a"
    node.handed.clear()
    ctx = _connect(node, "S1")
    connecting = asyncio.ensure_future(hooks.connected(ctx))
    await _soon(lambda: ("handoff", "node-a", "S1") in node.log)
    node.connections.discard("S1")  # it closed meanwhile
    await hooks.disconnected(ctx)
    node.handed.set()
    await asyncio.wait_for(connecting, 1)
    assert ("adopt", "S1") not in node.log  # nothing read, nothing kept, not marked online
    assert ctx.ready is not None and ctx.ready.done()
