"""Databases shared by the integration and end-to-end tests: a migrated SQLite file per test, and
one PostgreSQL database per session (emptied before each test) when a server answers at
``CHARGEGRID_TEST_PG_URL``; tests that need it skip with the reason when none does.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from chargegrid.adapters.storage.engine import make_engine
from chargegrid.adapters.storage.migrate import upgrade
from chargegrid.adapters.storage.tables import metadata
from chargegrid.entrypoints import logs

PG_ADMIN_URL = os.environ.get(
    "CHARGEGRID_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def _loggers_left_unbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that runs the ``chargegrid`` command configures logging; with loggers cached on
    first use, every module logger used then would stay bound to that set-up, and later tests
    that capture structlog lines (``structlog.testing.capture_logs``) would see none."""
    monkeypatch.setattr(logs, "configure", functools.partial(logs.configure, cache_loggers=False))
    yield
    structlog.reset_defaults()


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL server, or skip."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_empty_database(pg_server: str) -> Iterator[str]:
    """A new, empty database, dropped after the test."""
    name = f"chargegrid_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(pg_server, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[str]:
    """A migrated database for the whole session, dropped at the end."""
    name = f"chargegrid_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(pg_server, name)
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _empty(url: str) -> None:
    """Delete every row and restart the id sequences (faster than TRUNCATE on small tables)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
                if "id" in table.c and table.c.id.autoincrement is True:
                    sequence = func.pg_get_serial_sequence(table.name, "id")
                    await conn.execute(select(func.setval(sequence, 1, False)))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating takes longer than copying)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_empty(url))
    return url


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``fresh_db_url("sqlite" | "postgres")``: the URL of an empty, migrated database."""
    return lambda backend: _fresh_url(backend, request, tmp_path)
