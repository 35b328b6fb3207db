"""Messages between nodes are authenticated with the cluster's secret: what a publisher without
it sends (a forged call, claim or event batch), a message moved to another subject, an old one
replayed, or a reply to another request, is dropped and never handled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from chargegrid.service.cluster.auth import MAX_AGE_S, AuthenticatedBroker, Sealer
from chargegrid.service.cluster.ports import BrokerError
from chargegrid.testing.cluster import InMemoryBroker

SECRET = "s" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class Inbox:
    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.arrived = asyncio.Event()

    async def handler(self, data: bytes, reply: Any) -> None:
        self.got.append(data)
        self.arrived.set()
        if reply is not None:
            await reply(b"pong:" + data)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Sealer("too short")


async def test_only_messages_sealed_with_the_secret_for_their_subject_are_handled() -> None:
    server, clock = InMemoryBroker(), Clock()
    node = AuthenticatedBroker(server.connect(), Sealer(SECRET, clock))
    peer = AuthenticatedBroker(server.connect(), Sealer(SECRET, clock))
    outsider = server.connect()  # can publish on the NATS server, lacks the secret
    stranger = AuthenticatedBroker(server.connect(), Sealer("x" * 32, clock))
    inbox = Inbox()
    await node.subscribe("p.node.a.call", inbox.handler)
    await node.subscribe("p.directory", inbox.handler)
    with structlog.testing.capture_logs() as logs:
        await outsider.publish("p.node.a.call", b'{"action":"Reset"}')
        await stranger.publish("p.node.a.call", b'{"action":"Reset"}')
        sealed = Sealer(SECRET, clock).seal(b"p.directory", b'{"claim"}')
        await outsider.publish("p.node.a.call", sealed)  # sealed for another subject
        clock.t += MAX_AGE_S + 1
        await outsider.publish("p.directory", sealed)  # a replay, too old
        await _settle()
        assert inbox.got == []
        await peer.publish("p.directory", b'{"claim"}')
        await asyncio.wait_for(inbox.arrived.wait(), 1.0)
    assert inbox.got == [b'{"claim"}']
    dropped = [e for e in logs if "not authenticated" in e["event"]]
    assert dropped and all("Reset" not in repr(e) and "claim" not in repr(e) for e in dropped)


async def test_a_reply_is_authenticated_and_answers_its_own_request_only() -> None:
    server, clock = InMemoryBroker(), Clock()
    node = AuthenticatedBroker(server.connect(), Sealer(SECRET, clock))
    peer = AuthenticatedBroker(server.connect(), Sealer(SECRET, clock))
    await node.subscribe("p.node.a.call", Inbox().handler)
    assert await peer.request("p.node.a.call", b"ping", 1.0) == b"pong:ping"

    async def forger(data: bytes, reply: Any) -> None:  # answers without the secret
        await reply(b"forged")

    outsider = server.connect()
    await outsider.subscribe("p.node.b.call", forger)
    with pytest.raises(BrokerError, match="not authenticated"):
        await peer.request("p.node.b.call", b"ping", 1.0)
    for conn in (node, peer, outsider):
        await conn.close()
