"""The cluster's :class:`~chargegrid.service.cluster.ports.Lease`: a PostgreSQL advisory lock.

Why PostgreSQL and not a NATS key with a time-to-live: the lock lives on the database the
leased jobs write to, held by a session of its own. A node that dies loses it the moment its
connection closes (the kernel closes the socket of a killed process at once); a node cut off
from the database could not do the jobs anyway; and no clock or renewal interval has to be right
for two holders never to overlap. A holder checks its connection every few seconds and stops the
jobs when the check fails; the server ends a session it cannot reach after TCP keepalives give up.
"""

from __future__ import annotations

import contextlib
import hashlib

import asyncpg
from sqlalchemy.engine import make_url

LOCK_NAME = "chargegrid.cluster.lease"
_TIMEOUT_S = 5.0


def lock_key(name: str = LOCK_NAME) -> int:
    """The advisory lock's 64-bit key (signed, as PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as asyncpg's DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgLease:
    def __init__(self, url: str, key: int | None = None) -> None:
        self.dsn = asyncpg_dsn(url)
        self.key = lock_key() if key is None else key
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=_TIMEOUT_S)
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
