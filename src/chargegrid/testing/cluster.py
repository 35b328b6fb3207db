"""In-memory stand-ins for cluster mode's ports: a broker shared by several nodes of one
process, and a lease. For tests and demos of :mod:`chargegrid.service.cluster`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from chargegrid.service.cluster.ports import (
    BrokerError,
    Handler,
    NoRespondersError,
    RequestTimeoutError,
)


class InMemoryBroker:
    """The server: :meth:`connect` gives each node its own connection. Like core NATS,
    messages reach each subscription in order, and a request to a subject nobody listens on
    fails at once."""

    def __init__(self) -> None:
        self._subs: dict[str, list[_Subscription]] = {}

    def connect(self, *, secure: bool = False) -> BrokerConnection:
        """A node's connection; ``secure``: as if it were TLS to the server."""
        return BrokerConnection(self, secure=secure)

    def _deliver(
        self, subject: str, data: bytes, reply: Callable[[bytes], Awaitable[None]] | None
    ) -> int:
        subs = self._subs.get(subject, [])
        for sub in subs:
            sub.queue.put_nowait((data, reply))
        return len(subs)


class _Subscription:
    def __init__(self, handler: Handler) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Callable[[bytes], Awaitable[None]] | None]] = (
            asyncio.Queue()
        )
        self.task = asyncio.get_running_loop().create_task(self._run(handler))

    async def _run(self, handler: Handler) -> None:
        while True:
            data, reply = await self.queue.get()
            with contextlib.suppress(Exception):
                await handler(data, reply)


class BrokerConnection:
    """One node's connection (a :class:`~chargegrid.service.cluster.ports.Broker`)."""

    def __init__(self, server: InMemoryBroker, *, secure: bool = False) -> None:
        self.server = server
        self.secure = secure
        self.closed = False
        self._subs: list[tuple[str, _Subscription]] = []

    async def publish(self, subject: str, data: bytes) -> None:
        if self.closed:
            raise BrokerError("connection closed")
        self.server._deliver(subject, data, None)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        if self.closed:
            raise BrokerError("connection closed")
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def reply(payload: bytes) -> None:
            if not answer.done():
                answer.set_result(payload)

        if not self.server._deliver(subject, data, reply):
            raise NoRespondersError(subject)
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError as exc:
            raise RequestTimeoutError(f"no reply within {timeout:g} s") from exc

    async def subscribe(self, subject: str, handler: Handler) -> None:
        sub = _Subscription(handler)
        self._subs.append((subject, sub))
        self.server._subs.setdefault(subject, []).append(sub)

    async def close(self) -> None:
        """Leave: as a node that dies, its subscriptions are gone at once."""
        self.closed = True
        for subject, sub in self._subs:
            self.server._subs[subject].remove(sub)
            sub.task.cancel()
        await asyncio.gather(*(sub.task for _, sub in self._subs), return_exceptions=True)
        self._subs = []


class LockTable:
    """The database side of :class:`FakeLease`: who holds the one lock."""

    def __init__(self) -> None:
        self.holder: FakeLease | None = None


class FakeLease:
    """A lease on a shared :class:`LockTable`; ``cut()`` loses it as a broken connection does."""

    def __init__(self, table: LockTable) -> None:
        self.table = table
        self.reachable = True

    async def acquire(self) -> bool:
        if not self.reachable:
            raise OSError("database unreachable")
        if self.table.holder is None:
            self.table.holder = self
        return self.table.holder is self

    async def check(self) -> bool:
        return self.reachable and self.table.holder is self

    async def release(self) -> None:
        if self.table.holder is self:
            self.table.holder = None

    def cut(self) -> None:
        """The connection broke: the database ends the session and frees the lock."""
        self.reachable = False
        if self.table.holder is self:
            self.table.holder = None
