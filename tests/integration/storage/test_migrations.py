"""The packaged migrations build exactly the schema of ``tables.metadata``, on both databases."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Text, inspect
from sqlalchemy.engine import Connection

from chargegrid.adapters.storage.engine import make_engine
from chargegrid.adapters.storage.migrate import alembic_config, normalize_url, upgrade
from chargegrid.adapters.storage.tables import metadata


def _differences(url: str, target: MetaData = metadata) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))

    async def run() -> list[Any]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _table_names(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("pg_empty_database")
    return url


def test_migrated_schema_matches_metadata(empty_url: str) -> None:
    upgrade(empty_url)
    assert _differences(empty_url) == []
    assert _table_names(empty_url) == set(metadata.tables) | {"alembic_version"}


def test_upgrade_is_idempotent(empty_url: str) -> None:
    upgrade(empty_url)
    upgrade(empty_url)
    assert _differences(empty_url) == []


def test_comparison_sees_a_missing_column(empty_url: str) -> None:
    upgrade(empty_url)
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["stations"].append_column(Column("nickname", Text))
    kinds = [diff[0] for diff in _differences(empty_url, changed)]
    assert kinds == ["add_column"]


def test_downgrade_to_base_and_back(empty_url: str) -> None:
    upgrade(empty_url)
    command.downgrade(alembic_config(empty_url), "base")
    assert _table_names(empty_url) == {"alembic_version"}
    upgrade(empty_url)
    assert _differences(empty_url) == []


def test_scripts_are_found_in_the_package() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite:///x.db"))
    package = resources.files("chargegrid.adapters.storage")
    assert Path(scripts.dir) == Path(str(package / "migrations"))
    assert scripts.get_heads() == ["0013"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("postgresql://u:p%40@h:5432/db", "postgresql+asyncpg://u:p%40@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_normalize_url_refuses_what_is_not_a_url() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        normalize_url("x.db")
