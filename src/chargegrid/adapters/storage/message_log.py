"""The message log's store (:class:`~chargegrid.service.message_log.MessageLogStore`) in SQL.

Table ``ocpp_messages`` (see :mod:`.tables`), migrated with the rest of the schema. It has
engines of its own, apart from the main store's: the log's batches never wait behind the
stations' writes in the group commit, nor those behind the log. On SQLite the synchronous driver
runs on two threads of its own, one writing (appends and retention deletes, in order) and one
reading; on PostgreSQL an async engine with a small pool. Every query is parameterised; the
search text is matched with ``LIKE`` with its wildcards escaped.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Row, delete, func, insert, make_url, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from chargegrid.adapters.storage.engine import make_engine, make_sync_engine
from chargegrid.adapters.storage.errors import StorageError
from chargegrid.adapters.storage.migrate import normalize_url
from chargegrid.adapters.storage.tables import ocpp_messages
from chargegrid.domain.message_log import LoggedMessage
from chargegrid.service.message_log import MessageQuery

T = TypeVar("T")

_t = ocpp_messages
_c = ocpp_messages.c
_INSERT = insert(ocpp_messages)


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere (``\\`` is the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def open_message_log_store(url: str) -> SqlMessageLogStore:
    """The log's store on the (migrated) database at ``url``; connects on first use."""
    if make_url(normalize_url(url)).get_backend_name() == "sqlite":
        # Only the synchronous driver is used on SQLite (see the module's documentation).
        return SqlMessageLogStore(None, make_sync_engine(url, writer=True), make_sync_engine(url))
    return SqlMessageLogStore(make_engine(url, pool_size=2, max_overflow=2), None, None)


class SqlMessageLogStore:
    def __init__(
        self, engine: AsyncEngine | None, sync_writer: Engine | None, sync_reader: Engine | None
    ) -> None:
        self._engine = engine
        self._sync_writer = sync_writer
        self._sync_reader = sync_reader
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="message-log-writer")
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="message-log-reader")

    async def _run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """``work`` in one database transaction; driver errors become StorageError."""
        try:
            if self._engine is not None:
                async with self._engine.begin() as conn:
                    return await conn.run_sync(work)
            engine = self._sync_writer if write else self._sync_reader
            assert engine is not None

            def run() -> T:
                with engine.begin() as conn:
                    return work(conn)

            pool = self._write_thread if write else self._read_thread
            return await asyncio.get_running_loop().run_in_executor(pool, run)
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StorageError(f"message log: {exc}") from exc

    async def append(self, entries: Sequence[LoggedMessage]) -> None:
        if not entries:
            return
        if self._engine is None:
            await self._run(lambda conn: _insert_sqlite(conn, entries), write=True)
            return
        rows = [
            {
                "station_id": e.station_id,
                "at": e.at,
                "direction": e.direction,
                "message_type": e.message_type,
                "unique_id": e.unique_id,
                "action": e.action,
                "payload": e.payload,
                "truncated": e.truncated,
            }
            for e in entries
        ]
        await self._run(lambda conn: conn.execute(_INSERT, rows), write=True)

    async def page(self, query: MessageQuery) -> tuple[list[LoggedMessage], bool]:
        conditions: list[Any] = [_c.station_id == query.station_id]
        if query.before_id is not None:
            conditions.append(_c.id < query.before_id)
        for column, value in (
            (_c.direction, query.direction),
            (_c.message_type, query.message_type),
            (_c.action, query.action),
            (_c.unique_id, query.unique_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if query.since is not None:
            conditions.append(_c.at >= query.since)
        if query.until is not None:
            conditions.append(_c.at < query.until)
        if query.text:
            conditions.append(_c.payload.ilike(escape_like(query.text), escape="\\"))
        statement = select(_t).where(*conditions).order_by(_c.id.desc()).limit(query.limit + 1)
        found = await self._run(lambda conn: list(conn.execute(statement)), write=False)
        return [_entry(r) for r in found[: query.limit]], len(found) > query.limit

    async def has_station(self, station_id: str) -> bool:
        statement = select(_c.id).where(_c.station_id == station_id).limit(1)
        found = await self._run(lambda conn: conn.execute(statement).first(), write=False)
        return found is not None

    async def delete_older(self, cutoff: datetime, limit: int) -> int:
        oldest = select(_c.id).where(_c.at < cutoff).order_by(_c.id).limit(limit)
        statement = delete(_t).where(_c.id.in_(oldest.scalar_subquery()))
        return await self._run(lambda conn: conn.execute(statement).rowcount, write=True)

    async def keep_newest(self, rows: int, limit: int) -> int:
        def work(conn: Connection) -> int:
            top = conn.execute(select(func.max(_c.id))).scalar()
            if top is None or top <= rows:
                return 0
            # Ids only grow: everything at or below top - rows is beyond the newest ``rows``.
            beyond = select(_c.id).where(_c.id <= top - rows).order_by(_c.id).limit(limit)
            return conn.execute(delete(_t).where(_c.id.in_(beyond.scalar_subquery()))).rowcount

        return await self._run(work, write=True)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        # Waits for a write under way (at shutdown, the last batch) before closing its engine.
        await loop.run_in_executor(None, self._write_thread.shutdown, True)
        await loop.run_in_executor(None, self._read_thread.shutdown, True)
        for sync in (self._sync_writer, self._sync_reader):
            if sync is not None:
                sync.dispose()
        if self._engine is not None:
            await self._engine.dispose()


_COLUMNS = (
    "station_id",
    "at",
    "direction",
    "message_type",
    "unique_id",
    "action",
    "payload",
    "truncated",
)
_SQLITE_INSERT = str(_INSERT.compile(dialect=sqlite.dialect(), column_keys=list(_COLUMNS)))


def _insert_sqlite(conn: Connection, entries: Sequence[LoggedMessage]) -> None:
    """The batch through the driver's ``executemany``, the statement compiled once: SQLAlchemy's
    per-row parameter processing cost as much as SQLite's insert. Times are written as
    SQLAlchemy's SQLite ``DATETIME`` writes them (naive UTC text), so they read back alike."""
    rows = [
        (
            e.station_id,
            e.at.astimezone(UTC).isoformat(" ", "microseconds")[:26],  # a quarter of strftime
            e.direction,
            e.message_type,
            e.unique_id,
            e.action,
            e.payload,
            e.truncated,
        )
        for e in entries
    ]
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, rows)
    except sqlite3.Error as exc:
        raise StorageError(f"message log: {exc}") from exc
    finally:
        cursor.close()


def _entry(row: Row[Any]) -> LoggedMessage:
    return LoggedMessage(
        id=row.id,
        station_id=row.station_id,
        at=row.at,
        direction=row.direction,
        message_type=row.message_type,
        unique_id=row.unique_id,
        action=row.action,
        payload=row.payload,
        truncated=row.truncated,
    )
