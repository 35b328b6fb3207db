"""End-to-end fixtures: a real chargegrid node on loopback, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from api_client import ADMIN_TOKEN, Api

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


@pytest.fixture
def api_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The end-to-end settings with an admin token and an API port; ``request.param`` (indirect
    parametrization) changes more."""
    changes: dict[str, Any] = getattr(request, "param", {})
    return replace(settings, admin_token=ADMIN_TOKEN, api_port=0, **changes)


@pytest.fixture
async def node(api_settings: Settings) -> AsyncIterator[App]:
    """A running node with its REST API (a test module may build its own ``node``)."""
    app = await build(api_settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def api(node: App) -> AsyncIterator[Api]:
    """The node's API as the admin (``api.as_(token)`` for anyone else)."""
    base = f"http://127.0.0.1:{node.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield Api(client, ADMIN_TOKEN)
