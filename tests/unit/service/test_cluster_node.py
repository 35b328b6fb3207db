"""A cluster node on the in-memory broker: lost event batches are counted and make the node read
its state again; a roster is sent only to the node that asked for it; a station that moved is
let go once its work here is settled (the Handoff request)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec

from chargegrid.domain import events
from chargegrid.service.cluster import wire
from chargegrid.service.cluster.node import ClusterNode, handoff_subject
from chargegrid.service.commands import DIALECTS
from chargegrid.service.events import EventBus
from chargegrid.testing.cluster import InMemoryBroker

P = "chargegrid.test"
_encode = msgspec.json.Encoder(decimal_format="number").encode


class _Local:
    def __init__(self) -> None:
        self.stations: dict[str, str] = {}
        self.closed: list[str] = []

    def get(self, station_id: str) -> None:
        return None

    def connected(self, station_id: str) -> str | None:
        return self.stations.get(station_id)

    def disconnect(self, station_id: str, reason: str) -> bool:
        self.closed.append(station_id)
        return self.stations.pop(station_id, None) is not None


async def _node(broker: InMemoryBroker, name: str = "a") -> tuple[ClusterNode, _Local, EventBus]:
    local, bus = _Local(), EventBus()
    ocpp = SimpleNamespace(on_change=None, reload=None)
    state = SimpleNamespace(invalidate_station=lambda s: None)
    node = ClusterNode(
        name,
        P,
        broker.connect(),
        local,
        ocpp,  # type: ignore[arg-type]
        bus,
        state,  # type: ignore[arg-type]
        dict(DIALECTS),
    )
    await node.start()
    return node, local, bus


async def _heard(received: list[Any], count: int) -> None:
    for _ in range(200):
        if len(received) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{len(received)} of {count} messages")


def _batch(seq: int) -> bytes:
    event = events.StationOnline(station_id=f"CP-{seq}", at=datetime(2026, 12, 3, tzinfo=UTC))
    return _encode(wire.EventBatch("b", [event], seq))


async def test_a_lost_event_batch_is_counted_and_state_read_again() -> None:
    broker = InMemoryBroker()
    node, _, bus = await _node(broker)
    seen: list[Any] = []
    bus.listen(seen.append)
    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    node.on_events_lost = resync
    peer = broker.connect()
    try:
        for seq in (1, 2, 4, 5):  # batch 3 lost
            await peer.publish(f"{P}.events", _batch(seq))
        await _heard(seen, 4)
        await asyncio.sleep(0.02)
        assert node.losses() == (1, 0)
        assert resyncs == [1]
    finally:
        await node.stop()


async def test_a_roster_goes_only_to_who_asked_for_it() -> None:
    broker = InMemoryBroker()
    node, local, _ = await _node(broker)
    local.stations["CP-1"] = "1.6"
    node.claim("CP-1", "1.6")
    heard: list[wire.DirectoryMessage] = []
    decoder = msgspec.json.Decoder(wire.DirectoryMessage)
    listener = broker.connect()

    async def record(data: bytes, reply: Any) -> None:
        heard.append(decoder.decode(data))

    await listener.subscribe(f"{P}.directory", record)
    try:
        await listener.publish(f"{P}.directory", _encode(wire.Sync("c", of="b")))
        await asyncio.sleep(0.05)
        assert not [m for m in heard if isinstance(m, wire.Roster)]
        await listener.publish(f"{P}.directory", _encode(wire.Sync("c", of="a")))
        rosters: list[wire.DirectoryMessage] = []
        for _ in range(100):
            rosters = [m for m in heard if isinstance(m, wire.Roster)]
            if rosters:
                break
            await asyncio.sleep(0.005)
        assert rosters == [wire.Roster("a", {"CP-1": "1.6"}, 0, 1, 1)]
    finally:
        await node.stop()


async def test_a_handoff_closes_the_connection_and_is_answered() -> None:
    broker = InMemoryBroker()
    node, local, _ = await _node(broker)
    local.stations["CP-1"] = "1.6"
    asker = broker.connect()
    try:
        data = await asker.request(
            handoff_subject(P, "a"), _encode(wire.Handoff("b", "CP-1")), timeout=2
        )
        assert msgspec.json.decode(data, type=wire.Released) == wire.Released("a", "CP-1")
        assert local.closed == ["CP-1"]
    finally:
        await node.stop()
