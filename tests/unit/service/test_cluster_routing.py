"""Routing commands between the nodes of a cluster, on the in-memory broker: a station on
another node is called through it, a station nobody holds is offline at once, a node that dies
mid-call fails the call with a clear error, not a hang."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec
import pytest

from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.service.cluster import wire
from chargegrid.service.cluster.directory import Directory, roster
from chargegrid.service.cluster.routing import CallServer, ClusterLinks, call_subject
from chargegrid.service.commands import DIALECTS
from chargegrid.service.ocpp.context import CallFailedError, StationNotConnectedError
from chargegrid.testing.cluster import BrokerConnection, InMemoryBroker

PREFIX = "chargegrid.test"


class Link:
    """A station connected to a node: answers as told, or never."""

    def __init__(self, station_id: str, answer: Any = None, error: Exception | None = None):
        self.station_id = station_id
        self.ocpp_version = "1.6"
        self.answer = answer
        self.error = error
        self.calls: list[tuple[msgspec.Struct, float | None]] = []

    async def call(self, request: msgspec.Struct, timeout: float | None = None) -> msgspec.Struct:
        self.calls.append((request, timeout))
        if self.error is not None:
            raise self.error
        if self.answer is None:
            await asyncio.sleep(3600)
        return self.answer  # type: ignore[no-any-return]


class Server:
    """A node's WebSocket server, as routing sees it."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.closed: list[tuple[str, str]] = []

    def get(self, station_id: str) -> Link | None:
        return self.links.get(station_id)

    def connected(self, station_id: str) -> str | None:
        link = self.links.get(station_id)
        return None if link is None else link.ocpp_version

    def disconnect(self, station_id: str, reason: str) -> bool:
        self.closed.append((station_id, reason))
        return self.links.pop(station_id, None) is not None


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Node:
    def __init__(
        self, name: str, broker: InMemoryBroker, clock: Clock, *, secure: bool = False
    ) -> None:
        self.name = name
        self.server = Server()
        self.conn: BrokerConnection = broker.connect(secure=secure)
        self.directory = Directory(name, self.server.connected, self._evict, clock)
        dialects = dict(DIALECTS)
        self.links = ClusterLinks(
            name, PREFIX, self.server, self.directory, self.conn, dialects, call_timeout_s=1.0
        )
        self.calls = CallServer(self.server, dialects)

    def _evict(self, station_id: str) -> None:
        self.server.disconnect(station_id, "connected to another node")

    async def start(self) -> None:
        await self.conn.subscribe(call_subject(PREFIX, self.name), self.calls.handle)

    def hear(self, message: wire.DirectoryMessage) -> list[wire.DirectoryMessage]:
        return self.directory.receive(message)


@pytest.fixture
async def cluster() -> Any:
    broker, clock = InMemoryBroker(), Clock()
    a, b = Node("a", broker, clock), Node("b", broker, clock)
    await a.start()
    await b.start()
    yield a, b, clock
    for node in (a, b):
        await node.calls.stop()
        await node.conn.close()


def _reset() -> m16.ResetRequest:
    return m16.ResetRequest(type="Soft")


async def test_a_command_reaches_the_station_on_another_node(cluster: Any) -> None:
    a, b, _ = cluster
    b.server.links["CP-1"] = Link("CP-1", m16.ResetResponse(status="Accepted"))
    a.hear(wire.Claim("b", "CP-1", "1.6"))
    link = a.links.get("CP-1")
    assert link is not None and link.ocpp_version == "1.6"
    answer = await link.call(_reset(), 5.0)
    assert answer == m16.ResetResponse(status="Accepted")
    request, timeout = b.server.links["CP-1"].calls[0]
    assert request == _reset() and timeout == 5.0
    assert a.links.connected("CP-1") == "1.6"


async def test_a_station_no_node_holds_is_offline_at_once(cluster: Any) -> None:
    a, _, _ = cluster
    assert a.links.get("CP-9") is None
    assert a.links.connected("CP-9") is None


async def test_a_station_gone_from_its_node_is_offline(cluster: Any) -> None:
    a, _, _ = cluster
    a.hear(wire.Claim("b", "CP-1", "1.6"))  # b no longer holds it when the call arrives
    link = a.links.get("CP-1")
    assert link is not None
    with pytest.raises(StationNotConnectedError):
        await link.call(_reset())


async def test_a_node_that_is_gone_is_offline_without_waiting(cluster: Any) -> None:
    a, b, _ = cluster
    b.server.links["CP-1"] = Link("CP-1", m16.ResetResponse(status="Accepted"))
    a.hear(wire.Claim("b", "CP-1", "1.6"))
    await b.conn.close()  # nobody listens on b's subject any more
    link = a.links.get("CP-1")
    assert link is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StationNotConnectedError):
        await link.call(_reset(), 30.0)
    assert loop.time() - started < 0.5


async def test_a_call_in_flight_to_a_node_that_dies_fails_when_it_is_declared_gone(
    cluster: Any,
) -> None:
    a, b, clock = cluster
    b.server.links["CP-1"] = Link("CP-1")  # never answers
    a.hear(wire.Claim("b", "CP-1", "1.6"))
    link = a.links.get("CP-1")
    assert link is not None
    call = asyncio.create_task(link.call(_reset(), 30.0))
    await asyncio.sleep(0.05)
    assert not call.done()
    clock.t += 9  # within the default 10 s: a busy node is not declared gone
    assert a.directory.sweep() == [] and not call.done()
    clock.t += 2  # b is not heard from any more
    assert a.directory.sweep() == ["b"]
    with pytest.raises(CallFailedError) as failed:
        await asyncio.wait_for(call, 1.0)
    assert failed.value.timed_out
    message = str(failed.value)
    assert "node b" in message and "stopped answering" in message
    assert "may or may not have reached the station" in message
    assert a.links.get("CP-1") is None  # its stations are forgotten with it


async def test_a_call_with_no_reply_times_out_after_its_timeout(cluster: Any) -> None:
    a, b, _ = cluster
    b.server.links["CP-1"] = Link("CP-1")
    a.hear(wire.Claim("b", "CP-1", "1.6"))
    await b.calls.stop()
    await b.conn.close()
    await b.conn.subscribe(call_subject(PREFIX, "b"), _swallow)  # listens, never replies
    with pytest.raises(CallFailedError, match="no reply within"):
        await a.links.request("b", b"{}", 0.05, "CP-1")


async def _swallow(data: bytes, reply: Any) -> None:
    return None


async def test_what_the_station_answers_is_reported_as_if_it_were_here(cluster: Any) -> None:
    a, b, _ = cluster
    rejected = CallFailedError(
        OcppError(ErrorKind.NOT_SUPPORTED, "nope"), error_code="NotSupported"
    )
    timed_out = CallFailedError(OcppError(ErrorKind.GENERIC, "no answer"), timed_out=True)
    for n, error in enumerate([rejected, timed_out, StationNotConnectedError("x")]):
        station_id = f"CP-{n}"
        b.server.links[station_id] = Link(station_id, error=error)
        a.hear(wire.Claim("b", station_id, "1.6"))
        link = a.links.get(station_id)
        assert link is not None
        with pytest.raises(type(error)) as raised:
            await link.call(_reset())
        if isinstance(error, CallFailedError):
            got = raised.value
            assert isinstance(got, CallFailedError)
            assert (got.error_code, got.timed_out) == (error.error_code, error.timed_out)
            assert got.error.kind is error.error.kind
            assert got.error.description == error.error.description


@pytest.mark.parametrize("secure", [False, True])
async def test_a_call_that_can_carry_a_secret_crosses_the_broker_only_over_tls(
    secure: bool,
) -> None:
    broker, clock = InMemoryBroker(), Clock()
    a, b = Node("a", broker, clock, secure=secure), Node("b", broker, clock, secure=secure)
    await b.start()
    b.server.links["CP-1"] = Link("CP-1", m16.ChangeConfigurationResponse(status="Accepted"))
    a.hear(wire.Claim("b", "CP-1", "1.6"))
    link = a.links.get("CP-1")
    assert link is not None
    request = m16.ChangeConfigurationRequest(key="AuthorizationKey", value="0123456789abcdef")
    try:
        if secure:
            assert await link.call(request) == m16.ChangeConfigurationResponse(status="Accepted")
        else:
            with pytest.raises(OcppError) as refused:
                await link.call(request)
            assert refused.value.kind is ErrorKind.SECURITY
            assert (
                "TLS" in refused.value.description and "node holding" in refused.value.description
            )
            assert b.server.links["CP-1"].calls == []  # nothing crossed the broker
    finally:
        await b.calls.stop()
        await b.conn.close()
        await a.conn.close()


# --- the directory ---------------------------------------------------------------------------


def test_a_claim_elsewhere_closes_the_stale_connection_here() -> None:
    server, clock = Server(), Clock()
    server.links["CP-1"] = Link("CP-1")
    directory = Directory("a", server.connected, lambda s: server.disconnect(s, "moved"), clock)
    directory.receive(wire.Claim("b", "CP-1", "1.6"))
    assert server.closed == [("CP-1", "moved")]
    assert directory.holder("CP-1") == ("b", "1.6")


def test_releases_rosters_and_beats() -> None:
    server, clock = Server(), Clock()
    directory = Directory("a", server.connected, lambda s: None, clock)
    # an unknown node's beat: ask it (only it) for its roster
    assert directory.receive(wire.Beat("b", 2, seq=7)) == [wire.Sync("a", of="b")]
    parts = roster("b", {"CP-1": "1.6", "CP-2": "2.0.1"}, seq=7, part_size=1)
    assert [p.parts for p in parts] == [2, 2]
    for part in parts:
        directory.receive(part)
    assert directory.holder("CP-2") == ("b", "2.0.1")
    assert directory.receive(wire.Beat("b", 2, seq=7)) == []  # it has heard b's latest change
    assert directory.receive(wire.Release("b", "CP-2", seq=8)) == []
    assert directory.holder("CP-2") is None
    assert directory.receive(wire.Beat("b", 1, seq=8)) == []
    assert directory.receive(wire.Beat("b", 1, seq=9)) == [wire.Sync("a", of="b")]  # one missed
    directory.receive(wire.Release("a", "CP-1"))  # its own messages are ignored
    assert directory.receive(wire.Claim("a", "CP-3", "1.6")) == []
    assert directory.holder("CP-3") is None


def test_a_missed_claim_is_a_gap_and_the_roster_mends_it() -> None:
    directory = Directory("a", lambda s: None, lambda s: None, Clock())
    directory.receive(wire.Beat("b", 0, seq=0))
    directory.receive(roster("b", {}, seq=0)[0])
    assert directory.receive(wire.Claim("b", "CP-1", "1.6", seq=1)) == []
    # seq 2 (CP-2's claim) was dropped by the broker
    assert directory.receive(wire.Claim("b", "CP-3", "1.6", seq=3)) == [wire.Sync("a", of="b")]
    assert directory.gaps == 1
    assert directory.holder("CP-2") is None and directory.holder("CP-3") == ("b", "1.6")
    # until its roster comes, every beat asks again (the node rate-limits the asking), even
    # one whose number matches: a Sync or a Roster may have been lost too
    assert directory.receive(wire.Beat("b", 2, seq=3)) == [wire.Sync("a", of="b")]
    assert directory.gaps == 1
    for part in roster("b", {"CP-1": "1.6", "CP-2": "2.0.1", "CP-3": "1.6"}, seq=3):
        directory.receive(part)
    assert directory.holder("CP-2") == ("b", "2.0.1")
    assert directory.receive(wire.Beat("b", 3, seq=3)) == []
    assert directory.receive(wire.Release("b", "CP-1", seq=4)) == []
    assert directory.gaps == 1


def test_the_latest_claim_wins_and_a_late_release_keeps_it() -> None:
    clock = Clock()
    directory = Directory("a", lambda s: None, lambda s: None, clock)
    directory.receive(wire.Claim("b", "CP-1", "1.6"))
    directory.receive(wire.Claim("c", "CP-1", "2.0.1"))
    assert directory.holder("CP-1") == ("c", "2.0.1")
    directory.receive(wire.Release("b", "CP-1"))  # b's stale connection closed after
    assert directory.holder("CP-1") == ("c", "2.0.1")


def test_a_silent_node_is_gone_with_its_stations() -> None:
    clock = Clock()
    directory = Directory("a", lambda s: None, lambda s: None, clock, dead_after_s=3.0)
    directory.receive(wire.Claim("b", "CP-1", "1.6"))
    directory.receive(wire.Beat("c", 0))
    for t in itertools.count(1):
        clock.t = float(t)
        directory.receive(wire.Beat("c", 0))
        if t == 5:
            break
    assert directory.sweep() == ["b"]
    assert directory.nodes() == ["c"]
    assert directory.holder("CP-1") is None
