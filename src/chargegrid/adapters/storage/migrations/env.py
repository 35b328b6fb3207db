"""Alembic environment for the packaged migrations (run by :mod:`..migrate`, not by a CLI ini).

The URL comes in ``config.attributes["url"]``; the async driver's connection runs the
migrations through ``run_sync``. On SQLite the whole upgrade is one transaction (SQLite has
transactional DDL once SQLAlchemy emits the BEGIN, see :mod:`..engine`).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from chargegrid.adapters.storage.engine import make_engine, make_sync_engine
from chargegrid.adapters.storage.migrate import normalize_url
from chargegrid.adapters.storage.tables import metadata


def _url() -> str:
    url = context.config.attributes.get("url")
    if not isinstance(url, str):
        raise RuntimeError("run the migrations with chargegrid.adapters.storage.migrate.upgrade()")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = make_engine(_url(), writer=True, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_online_sqlite() -> None:
    # SQLite through its synchronous driver: aiosqlite, when it cannot open the file, leaves a
    # close queued on its thread that reports to an event loop asyncio.run has already closed.
    engine = make_sync_engine(_url(), writer=True)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif normalize_url(_url()).startswith("sqlite"):
    _run_online_sqlite()
else:
    asyncio.run(_run_online())
