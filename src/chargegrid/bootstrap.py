"""Wiring: the one place that builds the store, the use cases and the servers from settings.

Nothing is created at import time anywhere in chargegrid; :func:`build` does it all, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog
from sqlalchemy import exc as sa_exc

from chargegrid.adapters import openadr3 as openadr3_http
from chargegrid.adapters.openadr2 import ClientOptions, OpenAdr2Link
from chargegrid.adapters.oscp import HttpTransport
from chargegrid.adapters.pki.contract_provider import TestPkiContractProvider
from chargegrid.adapters.pki.http import (
    HttpOcsp,
    OpcpContractProvider,
    TrustFileError,
    load_trust,
)
from chargegrid.adapters.pki.local_ca import LocalCa
from chargegrid.adapters.storage.certificates import open_certificate_store
from chargegrid.adapters.storage.message_log import open_message_log_store
from chargegrid.adapters.storage.migrate import normalize_url, upgrade
from chargegrid.adapters.storage.oscp import open_peer_store
from chargegrid.adapters.storage.sites import open_site_store
from chargegrid.adapters.storage.store import SqlStore, open_store
from chargegrid.adapters.storage.webhooks import open_webhook_store
from chargegrid.adapters.transport.tls import TlsFiles, server_context
from chargegrid.adapters.transport.websocket import OcppServer, ServerOptions
from chargegrid.domain.model import UnknownStationPolicy
from chargegrid.entrypoints.api import metrics
from chargegrid.entrypoints.api.app import create_api
from chargegrid.entrypoints.api.context import ApiContext
from chargegrid.entrypoints.api.server import ApiServer
from chargegrid.entrypoints.settings import Settings, ca_folder, openadr2_levels
from chargegrid.protocols.ocpp16.dialect import DIALECT as OCPP16
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.service import central
from chargegrid.service.access import AccessControl
from chargegrid.service.balancing import LoadBalancer
from chargegrid.service.certificates import CertificateOptions, Certificates
from chargegrid.service.commands import Commands
from chargegrid.service.firmware import Firmware
from chargegrid.service.live import LiveView
from chargegrid.service.message_log import LogOptions, MessageLog
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.openadr2 import MappingOptions, Ven
from chargegrid.service.openadr3 import OpenAdr3Ven, VenOptions
from chargegrid.service.oscp import FlexibilityProvider
from chargegrid.service.plug_and_charge import ContractProvider, PlugAndCharge
from chargegrid.service.ports import StorageError, Store
from chargegrid.service.reservations import Reservations
from chargegrid.service.security import SecurityProfiles
from chargegrid.service.sites import Sites
from chargegrid.service.webhooks import WebhookDispatcher

if TYPE_CHECKING:
    from chargegrid.bootstrap_cluster import Joined
    from chargegrid.service.cluster.node import ClusterNode
    from chargegrid.service.cluster.routing import ClusterLinks

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
    message_log: MessageLog | None = None
    reservations: Reservations | None = None
    webhooks: WebhookDispatcher | None = None
    security_profiles: SecurityProfiles | None = None
    certificates: Certificates | None = None
    plug_and_charge: PlugAndCharge | None = None
    sites: Sites | None = None
    balancer: LoadBalancer | None = None
    oscp: FlexibilityProvider | None = None
    openadr3: OpenAdr3Ven | None = None  # the OpenADR 3 VEN
    openadr2: OpenAdr2Link | None = None  # the OpenADR 2.0b VEN
    # Cluster mode: this node's part; the balancer, OSCP and the VENs are then its lease's jobs
    cluster: ClusterNode | None = None

    async def start(self) -> None:
        """Start serving. If a part fails to start (a port is taken, say), everything opened so
        far is closed again, the stores included, and the error is raised: nothing is left to
        the garbage collector."""
        try:
            await self.ocpp.load()
            if self.sites is not None:
                await self.sites.load()
            if self.webhooks is not None:
                await self.webhooks.start()  # before stations connect: their events are sent
            if self.cluster is not None:
                await self.cluster.start()  # before stations connect: they are claimed
            await self.server.start()
            if self.balancer is not None:
                await self.balancer.start(self.central.events)
            if self.certificates is not None:
                await self.certificates.start()
            if self.message_log is not None:
                await self.message_log.start()  # frames tapped before this just wait
            await self.api.start()
            if self.oscp is not None:
                own_oscp_url(self.settings, self.oscp, self.api.port)
                await self.oscp.start(self.central.events)
            if self.openadr3 is not None:
                await self.openadr3.start(self.central.events)
            if self.openadr2 is not None:
                await self.openadr2.start()
            if self.cluster is not None:
                await self.cluster.start_jobs()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every part, in order; each part's stop is safe if it never started."""
        if self.cluster is not None:
            await self.cluster.stop_jobs()
        if self.openadr3 is not None:
            await self.openadr3.stop()
        if self.openadr2 is not None:
            await self.openadr2.stop()
        if self.oscp is not None:
            await self.oscp.stop()
        await self.api.stop()
        if self.balancer is not None:
            await self.balancer.stop()
        await self.server.stop()
        if self.cluster is not None:
            await self.cluster.stop()  # after the server: its stations' releases are sent
        if self.sites is not None:
            await self.sites.store.close()
        if self.certificates is not None:
            await self.certificates.stop()  # closes its store
        if self.plug_and_charge is not None:
            await self.plug_and_charge.close()
        if self.message_log is not None:
            await self.message_log.stop()  # after the server: its last frames are saved too
        if self.webhooks is not None:
            await self.webhooks.stop()  # after the server: its last events are kept pending
            await self.webhooks.store.close()
        await self.store.close()
        log.info("stopped")


def own_oscp_url(settings: Settings, oscp: FlexibilityProvider, api_port: int) -> None:
    if not settings.oscp_url:
        host = settings.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        oscp.own_url = f"http://{host}:{api_port}/oscp/fp/2.0"


def contract_provider(settings: Settings) -> ContractProvider | None:
    """An OPCP pool at an http(s) URL; the built-in provider for a test PKI folder."""
    where = settings.contract_provider
    if not where:
        return None
    if where.startswith(("http://", "https://")):
        return OpcpContractProvider(where, settings.contract_provider_token or None)
    try:
        return TestPkiContractProvider(Path(where))
    except (OSError, ValueError, KeyError) as exc:
        raise TrustFileError(f"no test PKI for the contract provider in {where}: {exc}") from exc


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
    store = await open_store(url, shared=bool(settings.cluster))
    joined = None
    try:
        if settings.cluster:  # NATS is imported, and needed, in cluster mode only
            from chargegrid.bootstrap_cluster import connect

            joined = await connect(settings)
        return _wire(settings, store, joined)
    except BaseException:
        if joined is not None:
            await joined.close()
        await store.close()
        raise


def _wire(settings: Settings, store: Store, joined: Joined | None = None) -> App:
    clock = SystemClock()
    system = central.CentralSystem(
        store,
        clock,
        central.Settings(
            unknown_stations=UnknownStationPolicy(settings.unknown_stations),
            heartbeat_interval_s=settings.heartbeat_interval,
            boot_rate=settings.boot_rate,
        ),
    )
    organization = settings.station_organization or None
    certificates = Certificates(
        open_certificate_store(settings.db),
        clock,
        LocalCa(ca_folder(settings), organization),
        CertificateOptions(organization=organization),
    )
    provider = contract_provider(settings)
    pnc = PlugAndCharge(
        HttpOcsp(),
        load_trust(Path(settings.v2g_trust)) if settings.v2g_trust else [],
        provider,
    )
    ocpp = OcppService(
        system,
        require_auth=settings.require_auth,
        organization=organization,
        certificates=certificates,
        plug_and_charge=pnc,
    )
    tls = None
    if settings.tls_cert:
        tls = server_context(
            TlsFiles(
                Path(settings.tls_cert),
                Path(settings.tls_key),
                Path(settings.tls_client_ca) if settings.tls_client_ca else None,
            )
        )
    message_log = None
    if settings.message_log_days > 0:
        message_log = MessageLog(
            open_message_log_store(settings.db),
            clock,
            LogOptions(retention_days=settings.message_log_days),
        )
    server = OcppServer(
        ocpp,
        [OCPP201, OCPP16],
        ServerOptions(
            host=settings.host,
            port=settings.ocpp_port,
            path_prefixes=settings.path_prefixes,
            ping_interval_s=settings.ping_interval,
            call_timeout_s=settings.call_timeout,
            tls_port=settings.tls_port if tls is not None else None,
        ),
        ssl=tls,
        tap=None if message_log is None else message_log.tap,
    )
    links: OcppServer | ClusterLinks = server
    node = None
    if joined is not None:
        from chargegrid.bootstrap_cluster import cluster_node

        node = cluster_node(settings, joined, server, ocpp, system.events, store)
        links = node.links
    commands = Commands(links, store, clock)
    certificates.bind(commands, server.connected)
    security_profiles = SecurityProfiles(
        commands, ocpp, tls=tls is not None, client_ca=bool(settings.tls_client_ca)
    )
    reservations = Reservations(commands, store)
    access = AccessControl(store, clock, admin_token=settings.admin_token or None)
    live = LiveView(store, clock)  # the dashboard's overview, kept from the event bus
    live.attach(system.events)
    webhooks = WebhookDispatcher(open_webhook_store(settings.db), system.events, clock)
    site_store = open_site_store(settings.db)
    sites = Sites(site_store, clock)
    balancer = LoadBalancer(sites, commands, store, links.connected, clock, limit_store=site_store)
    system.steers = lambda station_id, evse_id: _steered(sites, station_id, evse_id)
    flexibility = FlexibilityProvider(
        open_peer_store(settings.db),
        balancer,
        sites,
        HttpTransport(),
        clock,
        settings.oscp_url,
        measurement_interval_s=settings.oscp_measurement_interval,
        asset_measurements=settings.oscp_asset_measurements,
    )
    api = ApiServer(
        create_api(
            ApiContext(
                store,
                system,
                ocpp,
                commands,
                access,
                links,
                reservations,
                security_profiles,
                Firmware(commands, store),
                metrics.registry(
                    server,
                    store if isinstance(store, SqlStore) else None,
                    message_log,
                    node_id=node.node_id if node is not None else "",
                    cluster=node,
                ),
                live=live,
                message_log=message_log,
                webhooks=webhooks,
                certificates=certificates,
                sites=sites,
                balancer=balancer,
                oscp=flexibility,
            )
        ),
        settings.host,
        settings.api_port,
    )
    app = App(
        settings,
        store,
        system,
        ocpp,
        server,
        commands,
        access,
        api,
        message_log,
        reservations=reservations,
        webhooks=webhooks,
        security_profiles=security_profiles,
        certificates=certificates,
        plug_and_charge=pnc,
        sites=sites,
        balancer=balancer,
        oscp=flexibility,
        openadr2=_openadr2(settings, balancer, sites, clock),
        openadr3=_openadr3(settings, balancer, sites, clock),
    )
    if node is not None:
        from chargegrid.bootstrap_cluster import lease_jobs

        lease_jobs(app, node)  # they run on the lease holder; the App starts them no more
    return app


def _steered(sites: Sites, station_id: str, evse_id: int) -> bool:
    """Whether the load balancer steers the EVSE: it is on a site, and smart."""
    found = sites.slot(station_id, evse_id)
    return found is not None and found[1].smart


def _openadr2(
    settings: Settings, balancer: LoadBalancer, sites: Sites, clock: SystemClock
) -> OpenAdr2Link | None:
    """The OpenADR 2.0b VEN, when a VTN URL is set."""
    url = settings.openadr2_vtn_url
    if not url:
        return None
    ven = Ven(
        balancer,
        sites,
        clock,
        urlsplit(url).netloc,
        settings.openadr2_site,
        opt_in=settings.openadr2_opt == "in",
        options=MappingOptions(simple_levels=openadr2_levels(settings)),
    )
    options = ClientOptions(
        url,
        settings.openadr2_ven_name,
        settings.openadr2_ven_id,
        settings.openadr2_cert,
        settings.openadr2_key,
        settings.openadr2_ca,
        settings.openadr2_vtn_fingerprint,
        settings.openadr2_report_interval,
    )
    return OpenAdr2Link(ven, options)


def _openadr3(
    settings: Settings, balancer: LoadBalancer, sites: Sites, clock: SystemClock
) -> OpenAdr3Ven | None:
    """The OpenADR 3 VEN, when a VTN URL is set."""
    if not settings.openadr3_vtn_url:
        return None
    options = VenOptions(
        settings.openadr3_vtn_url,
        settings.openadr3_site,
        client_id=settings.openadr3_client_id,
        client_secret=settings.openadr3_client_secret,
        token_url=settings.openadr3_token_url,
        program_names=settings.openadr3_programs,
        ven_name=settings.openadr3_ven_name,
        poll_interval_s=settings.openadr3_poll_interval,
        report_interval_s=settings.openadr3_report_interval,
    )
    return OpenAdr3Ven(options, balancer, sites, openadr3_http.HttpTransport(), clock)
