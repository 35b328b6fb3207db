"""The cluster's :class:`~chargegrid.service.cluster.ports.Broker` on core NATS (nats-py).

Core NATS only (no JetStream): what must survive a node is in PostgreSQL, and what goes over
NATS (calls, events for the live streams, directory updates) is worthless once late. nats-py's
exceptions are translated here into the port's errors. The client reconnects by itself, forever;
while it is cut off, publishes are buffered by it and requests fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats import errors as nats_errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from chargegrid.service.cluster.ports import (
    BrokerError,
    Handler,
    NoRespondersError,
    RequestTimeoutError,
)

log = structlog.get_logger(__name__)


async def connect(servers: str, name: str) -> NatsBroker:
    """Connect to the NATS server(s) at ``servers`` (comma-separated ``nats://`` URLs)."""

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error", error=str(exc))

    broker = NatsBroker(Client())

    async def on_disconnect() -> None:
        if not broker.closing:
            log.warning("NATS connection lost; reconnecting")

    async def on_reconnect() -> None:
        log.info("NATS connection back")

    try:
        await broker.client.connect(
            servers=[s.strip() for s in servers.split(",") if s.strip()],
            name=name,
            connect_timeout=5,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    except (OSError, TimeoutError, nats_errors.Error) as exc:
        raise BrokerError(f"cannot reach the NATS server at {servers}: {exc}") from exc
    return broker


class NatsBroker:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.closing = False

    async def publish(self, subject: str, data: bytes) -> None:
        try:
            await self.client.publish(subject, data)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        try:
            msg = await self.client.request(subject, data, timeout=timeout)
        except nats_errors.NoRespondersError as exc:
            raise NoRespondersError(subject) from exc
        except nats_errors.TimeoutError as exc:
            raise RequestTimeoutError(f"no reply within {timeout:g} s") from exc
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc
        return bytes(msg.data)

    async def subscribe(self, subject: str, handler: Handler) -> None:
        async def on_message(msg: Msg) -> None:
            reply: Callable[[bytes], Awaitable[None]] | None = None
            if msg.reply:
                reply = _replier(self.client, msg.reply)
            try:
                await handler(bytes(msg.data), reply)
            except Exception:  # one bad message does not end the subscription
                log.exception("cluster message handler failed", subject=subject)

        try:
            await self.client.subscribe(subject, cb=on_message, pending_msgs_limit=1_000_000)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        self.closing = True
        try:
            await self.client.drain()
        except Exception as exc:  # closing: whatever it says, the connection is gone
            log.debug("NATS drain", error=repr(exc))
            await _close_quietly(self.client)


def _replier(client: Client, subject: str) -> Callable[[bytes], Awaitable[None]]:
    async def reply(data: bytes) -> None:
        try:
            await client.publish(subject, data)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    return reply


async def _close_quietly(client: Any) -> None:
    try:
        await client.close()
    except Exception as exc:
        log.debug("NATS close", error=repr(exc))
