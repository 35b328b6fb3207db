"""The cluster's :class:`~chargegrid.service.cluster.ports.Lease`: a PostgreSQL advisory lock.

Why PostgreSQL and not a NATS key with a time-to-live: the lock lives on the database the
leased jobs write to, held by a session of its own. A node that dies loses it the moment its
connection closes (the kernel closes the socket of a killed process at once); a node cut off
from the database could not do the jobs anyway.

A holder cut off without a FIN or RST (a partition, a host that lost power) is another matter:
the server keeps its session, and the lock, until TCP tells it the peer is gone, which with the
kernel's defaults takes over two hours. So the lease's session sets its own keepalives on the
server's side (:data:`SESSION_SETTINGS`: idle 5 s, then 3 probes 2 s apart, and 10 s for sent
data to be acknowledged), and the client's socket the same, so that the server drops a silent
holder's session after about 11 s. The holder stops its jobs sooner: it checks every 2 s, with a
5 s timeout. Another node, trying every 2 s, takes the lease within about 15 s of the cut.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

LOCK_NAME = "chargegrid.cluster.lease"
_TIMEOUT_S = 5.0
_KEEPALIVE_IDLE_S = 5
_KEEPALIVE_INTERVAL_S = 2
_KEEPALIVE_COUNT = 3
_USER_TIMEOUT_MS = 10_000

#: Per-session settings of the lease's connection: the server gives up on a silent peer (and
#: frees the lock) after about 5 + 3 x 2 = 11 s idle, or 10 s with data unacknowledged.
SESSION_SETTINGS = {
    "tcp_keepalives_idle": str(_KEEPALIVE_IDLE_S),
    "tcp_keepalives_interval": str(_KEEPALIVE_INTERVAL_S),
    "tcp_keepalives_count": str(_KEEPALIVE_COUNT),
    "tcp_user_timeout": str(_USER_TIMEOUT_MS),
    "application_name": "chargegrid cluster lease",
}


def lock_key(name: str = LOCK_NAME) -> int:
    """The advisory lock's 64-bit key (signed, as PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as asyncpg's DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def keepalive(sock: Any) -> None:
    """TCP keepalives on the client's ``sock`` as the server's (where the platform has them)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", _KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", _KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", _KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", _USER_TIMEOUT_MS),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def open_session(dsn: str) -> asyncpg.Connection:
    """A connection for the lease, with :data:`SESSION_SETTINGS` and client keepalives."""
    conn = await asyncpg.connect(dsn, timeout=_TIMEOUT_S, server_settings=SESSION_SETTINGS)
    # asyncpg has no option for socket options; its transport is the one way to the socket
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            keepalive(sock)
        except OSError:
            await conn.close(timeout=_TIMEOUT_S)
            raise
    return conn


class PgLease:
    def __init__(self, url: str, key: int | None = None) -> None:
        self.dsn = asyncpg_dsn(url)
        self.key = lock_key() if key is None else key
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._conn = await open_session(self.dsn)
        try:
            taken = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.key, timeout=_TIMEOUT_S
            )
        except (TimeoutError, asyncpg.PostgresError, OSError):
            await self._drop()
            raise
        return bool(taken)

    async def check(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=_TIMEOUT_S)
        except (TimeoutError, asyncpg.PostgresError, OSError):
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(TimeoutError, asyncpg.PostgresError, OSError):
                await conn.execute("SELECT pg_advisory_unlock($1)", self.key, timeout=_TIMEOUT_S)
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # no goodbye: the server ends the session, and the lock with it
