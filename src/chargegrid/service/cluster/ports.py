"""What cluster mode needs from the outside: a message broker and a lease.

Implementations: :mod:`chargegrid.adapters.cluster` (NATS, a PostgreSQL advisory lock) and the
in-memory ones of :mod:`chargegrid.testing.cluster`.

Errors of :class:`Broker` (every implementation raises only these)::

    BrokerError               the broker cannot be reached, or the connection is closed
     +-- NoRespondersError    a request found nobody listening on its subject (at once)
     +-- RequestTimeoutError  a request got no reply within its timeout
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class BrokerError(Exception):
    """The broker could not carry the message."""


class NoRespondersError(BrokerError):
    """Nobody listens on the request's subject: the node it was for is gone."""


class RequestTimeoutError(BrokerError):
    """No reply within the request's timeout."""


#: Called with each message's data and, for a request, the function that sends the reply.
Handler = Callable[[bytes, Callable[[bytes], Awaitable[None]] | None], Awaitable[None]]


class Broker(Protocol):
    """Publish/subscribe and request/reply between nodes (core NATS semantics: at most once,
    in order from one publisher to one subscriber, no persistence)."""

    @property
    def secure(self) -> bool:
        """Whether what crosses the broker is encrypted (TLS to the NATS server)."""
        ...

    async def publish(self, subject: str, data: bytes) -> None: ...

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes: ...

    async def subscribe(self, subject: str, handler: Handler) -> None:
        """Call ``handler`` with every message on ``subject``, one at a time, in order."""
        ...

    async def close(self) -> None: ...


class Lease(Protocol):
    """One holder at a time in the whole cluster; lost with the holder's connection."""

    async def acquire(self) -> bool:
        """Try once to take the lease; True if this node holds it now."""
        ...

    async def check(self) -> bool:
        """Whether this node still holds the lease it took."""
        ...

    async def release(self) -> None: ...
