"""Wiring: the one place that builds the store, the use cases and the servers from settings.

Nothing is created at import time anywhere in chargegrid; :func:`build` does it all, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import exc as sa_exc

from chargegrid.adapters.storage.migrate import normalize_url, upgrade
from chargegrid.adapters.storage.store import SqlStore, open_store
from chargegrid.adapters.transport.websocket import OcppServer, ServerOptions
from chargegrid.domain.model import UnknownStationPolicy
from chargegrid.entrypoints.api import metrics
from chargegrid.entrypoints.api.app import create_api
from chargegrid.entrypoints.api.context import ApiContext
from chargegrid.entrypoints.api.server import ApiServer
from chargegrid.entrypoints.settings import Settings
from chargegrid.protocols.ocpp16.dialect import DIALECT as OCPP16
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.service import central
from chargegrid.service.access import AccessControl
from chargegrid.service.commands import Commands
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.ports import StorageError, Store

log = structlog.get_logger(__name__)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class App:
    """A running chargegrid node."""

    settings: Settings
    store: Store
    central: central.CentralSystem
    ocpp: OcppService
    server: OcppServer
    commands: Commands
    access: AccessControl
    api: ApiServer

    async def start(self) -> None:
        await self.ocpp.load()
        await self.server.start()
        try:
            await self.api.start()
        except BaseException:
            await self.server.stop()
            raise

    async def stop(self) -> None:
        await self.api.stop()
        await self.server.stop()
        await self.store.close()
        log.info("stopped")


async def prepare_database(url: str) -> str:
    """Migrate the database to the current schema; return the async URL to open it with."""
    async_url = normalize_url(url)
    try:
        await asyncio.to_thread(upgrade, async_url)
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise StorageError(f"cannot open the database: {exc.__cause__ or exc}") from exc
    return async_url


async def build(settings: Settings) -> App:
    url = await prepare_database(settings.db)
    store = await open_store(url)
    try:
        return _wire(settings, store)
    except BaseException:
        await store.close()
        raise


def _wire(settings: Settings, store: Store) -> App:
    clock = SystemClock()
    system = central.CentralSystem(
        store,
        clock,
        central.Settings(
            unknown_stations=UnknownStationPolicy(settings.unknown_stations),
            heartbeat_interval_s=settings.heartbeat_interval,
        ),
    )
    ocpp = OcppService(system, require_auth=settings.require_auth)
    server = OcppServer(
        ocpp,
        [OCPP201, OCPP16],
        ServerOptions(
            host=settings.host,
            port=settings.ocpp_port,
            path_prefixes=settings.path_prefixes,
            ping_interval_s=settings.ping_interval,
            call_timeout_s=settings.call_timeout,
        ),
    )
    commands = Commands(server, store, clock)
    access = AccessControl(store, clock, admin_token=settings.admin_token or None)
    api = ApiServer(
        create_api(
            ApiContext(
                store,
                system,
                ocpp,
                commands,
                access,
                server,
                metrics.registry(server, store if isinstance(store, SqlStore) else None),
            )
        ),
        settings.host,
        settings.api_port,
    )
    return App(settings, store, system, ocpp, server, commands, access, api)
