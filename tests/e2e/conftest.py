"""End-to-end fixtures: a real chargegrid node on loopback, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, fresh_db_url: Callable[[str], str]) -> Settings:
    """A node's settings on an empty database: every end-to-end test runs on SQLite and on
    PostgreSQL (skipped with the reason when no PostgreSQL server answers)."""
    return Settings(
        host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        db=fresh_db_url(request.param),
        unknown_stations="accept",
        ping_interval=0,
        call_timeout=5,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    node = await build(settings)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


@pytest.fixture(params=["1.6", "2.0.1"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)
