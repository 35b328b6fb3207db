"""Engines for the store and the migrations, set up the same way on every connection.

SQLite: WAL lets readers work beside the one writer; ``synchronous=NORMAL`` is durable in WAL mode
except against power loss between a commit and the next checkpoint; ``busy_timeout`` waits for a
lock instead of failing; foreign keys are off by default in SQLite. Python's ``sqlite3`` does not
begin a transaction before a SELECT or DDL ("legacy transaction control"), so SQLAlchemy emits the
BEGIN itself: ``BEGIN IMMEDIATE`` for the writer, which takes the write lock up front so that
``busy_timeout`` applies, instead of failing when a read turns into a write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chargegrid.adapters.storage.migrate import normalize_url

SQLITE_BUSY_TIMEOUT_MS = 10_000

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)


def make_engine(url: str, *, writer: bool = False, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (normalized); ``writer`` makes SQLite transactions IMMEDIATE."""
    engine = create_async_engine(normalize_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        if engine.url.database in (None, "", ":memory:"):
            engine.sync_engine.dispose()
            raise ValueError("the store needs a SQLite file: an in-memory database has no WAL")
        _setup_sqlite(engine, "BEGIN IMMEDIATE" if writer else "BEGIN")
    return engine


def make_sync_engine(url: str, *, writer: bool = False) -> Engine:
    """A synchronous engine on the same SQLite file, for use on one thread of its own."""
    engine = create_engine(make_url(normalize_url(url)).set(drivername="sqlite"), pool_size=1)
    _setup_sqlite(engine, "BEGIN IMMEDIATE" if writer else "BEGIN")
    return engine


def _setup_sqlite(engine: AsyncEngine | Engine, begin: str) -> None:
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see the module doc
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(sync, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)
