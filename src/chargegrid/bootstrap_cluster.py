"""Wiring of cluster mode (``--cluster``), kept apart so that a single node imports none of it.

:func:`connect` reaches NATS; :func:`cluster_node` builds this node's part around the OCPP
server; :func:`lease_jobs` hands the jobs one node runs for the cluster to the lease, taking
them from the App (which then neither starts nor stops them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import make_url

from chargegrid.adapters.cluster import nats_broker
from chargegrid.adapters.cluster.pg_lease import PgLease
from chargegrid.adapters.storage.store import SqlStore
from chargegrid.adapters.transport.websocket import OcppServer
from chargegrid.entrypoints.settings import Settings
from chargegrid.service.cluster import wire
from chargegrid.service.cluster.auth import AuthenticatedBroker, Sealer
from chargegrid.service.cluster.lease import HolderOnlyCommands, Job, LeaseKeeper
from chargegrid.service.cluster.node import ClusterNode, new_node_id
from chargegrid.service.cluster.ports import Broker
from chargegrid.service.commands import DIALECTS
from chargegrid.service.events import EventBus
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.ports import Store

if TYPE_CHECKING:  # bootstrap imports this module
    from chargegrid.bootstrap import App

log = structlog.get_logger(__name__)

WEBHOOK_POLL_S = 15.0


@dataclass(frozen=True)
class Joined:
    """This process's node id and its connection to the cluster's broker."""

    node_id: str
    broker: Broker

    async def close(self) -> None:
        await self.broker.close()


async def connect(settings: Settings) -> Joined:
    node_id = new_node_id()
    structlog.contextvars.bind_contextvars(node=node_id)  # on the lines of this process's tasks
    security = nats_broker.Security(
        tls_ca=settings.cluster_tls_ca,
        tls_cert=settings.cluster_tls_cert,
        tls_key=settings.cluster_tls_key,
        creds=settings.cluster_creds,
    )
    broker = await nats_broker.connect(settings.cluster, f"chargegrid {node_id}", security)
    return Joined(node_id, AuthenticatedBroker(broker, Sealer(settings.cluster_secret)))


def database_key(db: str) -> str:
    """Host, port and name of the database: the nodes on it form one cluster."""
    url = make_url(db)
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def cluster_node(
    settings: Settings,
    joined: Joined,
    server: OcppServer,
    ocpp: OcppService,
    bus: EventBus,
    store: Store,
) -> ClusterNode:
    if not isinstance(store, SqlStore):
        raise TypeError("cluster mode needs the SQL store")
    node = ClusterNode(
        joined.node_id,
        wire.prefix(database_key(settings.db)),
        joined.broker,
        server,
        ocpp,
        bus,
        store,
        dict(DIALECTS),
        call_timeout_s=settings.call_timeout,
        dead_after_s=settings.cluster_dead_after,
    )
    server.hooks = node.hooks
    return node


def lease_jobs(app: App, node: ClusterNode) -> None:
    """The balancer, OSCP, the OpenADR VENs, webhook sending and the message log's trimming
    run on the node holding the lease (see service/cluster/lease.py for why)."""
    settings, events = app.settings, app.central.events
    jobs: list[Job] = []
    balancer, oscp, openadr3, openadr2 = app.balancer, app.oscp, app.openadr3, app.openadr2
    app.balancer = app.oscp = app.openadr3 = app.openadr2 = None
    if balancer is not None:
        jobs.append(Job("load balancer", lambda: balancer.start(events), balancer.stop))
    if oscp is not None:

        async def start_oscp() -> None:
            from chargegrid.bootstrap import own_oscp_url

            own_oscp_url(settings, oscp, app.api.port)
            await oscp.start(events)

        jobs.append(Job("OSCP", start_oscp, oscp.stop))
    if openadr3 is not None:
        jobs.append(Job("OpenADR 3 VEN", lambda: openadr3.start(events), openadr3.stop))
    if openadr2 is not None:
        jobs.append(Job("OpenADR 2.0b VEN", openadr2.start, openadr2.stop))
    if app.webhooks is not None:
        webhooks = app.webhooks
        webhooks.sends = False
        # other nodes' notes of deliveries stored are hints: the holder looks in the store too
        webhooks.options = replace(webhooks.options, poll_store_s=WEBHOOK_POLL_S)
        node.webhooks = webhooks
        jobs.append(Job("webhook sending", webhooks.start_sending, webhooks.stop_sending))
    keeper = LeaseKeeper(PgLease(settings.db), jobs)
    node.keeper = keeper
    if balancer is not None:  # a balancer an API call wakes on another node sends nothing
        balancer.commands = HolderOnlyCommands(balancer.commands, lambda: keeper.held)
        balancer.active = lambda: keeper.held  # ... nor runs
        balancer.on_limits_saved = node.limits_changed  # the holder reads limits set here
        node.reload_limits = balancer.reload_limits
        balancer.resync_s = 60.0  # events over NATS may be lost: the database has the last word

        async def resync() -> None:  # ... and at once when a lost batch of events is seen
            if keeper.held:
                await balancer.resync()

        node.on_events_lost = resync
    if app.message_log is not None:
        app.message_log.prunes = lambda: keeper.held
    app.cluster = node
