"""Database URLs and schema upgrades (Alembic, run from code: no ``alembic.ini`` needed).

The migration scripts ship inside the package (``chargegrid/adapters/storage/migrations``), so an
installed wheel can upgrade its database: call :func:`upgrade` before :func:`open_store
<chargegrid.adapters.storage.store.open_store>`. :func:`upgrade` runs its own event loop; from
async code call it as ``await asyncio.to_thread(upgrade, url)``.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = "chargegrid.adapters.storage:migrations"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_url(url: str) -> str:
    """Give a plain ``sqlite://`` or ``postgresql://`` URL its asyncio driver.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db``; ``postgresql://`` and
    ``postgres://`` become ``postgresql+asyncpg://``. A URL that names a driver is left alone.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    driver = _ASYNC_DRIVERS.get(scheme.lower())
    return f"{driver}://{rest}" if driver else url


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the packaged migrations and the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Not set_main_option("sqlalchemy.url"): ConfigParser would read "%" in a password as an
    # interpolation.
    config.attributes["url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (``alembic upgrade head``); idempotent."""
    command.upgrade(alembic_config(url), revision)
