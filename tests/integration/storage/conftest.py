"""Stores for the storage contract tests: FakeStore, SqlStore on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from chargegrid.adapters.storage.store import SqlStore, open_store
from chargegrid.testing.fakes import FakeStore

AnyStore = FakeStore | SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, fresh_db_url: Callable[[str], str]) -> str:
    """The URL of an empty, migrated database: SQLite, then PostgreSQL."""
    return fresh_db_url(request.param)


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, fresh_db_url: Callable[[str], str]) -> str | None:
    """Like ``sql_url``, with None first, for the in-memory FakeStore."""
    return None if request.param == "fake" else fresh_db_url(request.param)


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator[AnyStore]:
    """An empty store of each kind: FakeStore, SqlStore on SQLite, SqlStore on PostgreSQL."""
    opened: AnyStore = FakeStore() if store_url is None else await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()
