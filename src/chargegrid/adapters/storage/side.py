"""Stores beside the main one: engines of their own on the store's (migrated) database, for
traffic that is small next to the stations' and so does not go through the group-commit writer
(webhooks, certificates).

Each has a pooled reader and a writer of one connection (on SQLite its transactions take the
write lock up front, and wait for the main store's group commits through ``busy_timeout``).
Statement parameters may hold secrets: SQLAlchemy is told to leave them out of its logs and
errors, and aiosqlite, which logs every call with its parameters at DEBUG, is kept at INFO.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from chargegrid.adapters.storage.engine import make_engine
from chargegrid.adapters.storage.errors import StorageError

T = TypeVar("T")


def engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """A reader and a writer on the migrated database at ``url`` (they connect on first use)."""
    aiosqlite = logging.getLogger("aiosqlite")
    aiosqlite.setLevel(max(logging.INFO, aiosqlite.level))
    return (
        make_engine(url, pool_size=2, max_overflow=2, hide_parameters=True),
        make_engine(url, writer=True, pool_size=1, max_overflow=0, hide_parameters=True),
    )


class SideStore:
    """Each query runs in a task of its own that a cancelled caller does not cancel: a query
    stopped half-way would leave its connection checked out, past :meth:`close`, for the
    garbage collector. :meth:`close` waits for the queries under way, then closes the engines."""

    what = "store"  # in error messages

    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self._reader = reader
        self._writer = writer
        self._under_way: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        if self._under_way:
            await asyncio.wait(list(self._under_way))
        await self._reader.dispose()
        await self._writer.dispose()

    async def _whole(self, query: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(query)
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)
        return await asyncio.shield(task)

    async def _read(self, statement: Any) -> list[Any]:
        async def read() -> list[Any]:
            async with self._reader.connect() as conn:
                return list(await conn.execute(statement))

        try:
            return await self._whole(read())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} read failed: {exc}") from exc

    async def _write(self, statement: Any, params: Any = None) -> Any:
        async def write() -> Any:
            async with self._writer.begin() as conn:
                return await conn.execute(statement, params)

        try:
            return await self._whole(write())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} write failed: {exc}") from exc
