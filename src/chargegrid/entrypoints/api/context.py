"""What the API's handlers reach: the node's services, handed to them by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from litestar.di import NamedDependency
from prometheus_client import CollectorRegistry

from chargegrid.service.access import AccessControl
from chargegrid.service.balancing import LoadBalancer
from chargegrid.service.central import CentralSystem
from chargegrid.service.certificates import Certificates
from chargegrid.service.commands import Commands
from chargegrid.service.firmware import Firmware
from chargegrid.service.live import LiveView
from chargegrid.service.message_log import MessageLog
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.oscp import FlexibilityProvider
from chargegrid.service.ports import Store
from chargegrid.service.reservations import Reservations
from chargegrid.service.security import SecurityProfiles
from chargegrid.service.sites import Sites
from chargegrid.service.webhooks import WebhookDispatcher


class Connections(Protocol):
    """Which stations have a live OCPP connection to this node, and in which version."""

    def connected(self, station_id: str) -> str | None:
        """The OCPP version of the station's live connection, or None."""
        ...

    def disconnect(self, station_id: str, reason: str) -> bool:
        """Close the station's live connection, if it has one."""
        ...


@dataclass(frozen=True)
class ApiContext:
    store: Store
    central: CentralSystem
    ocpp: OcppService
    commands: Commands
    access: AccessControl
    connections: Connections
    reservations: Reservations
    security_profiles: SecurityProfiles
    firmware: Firmware
    metrics: CollectorRegistry | None = None  # what GET /metrics shows
    message_log: MessageLog | None = None  # None: the message log is off
    live: LiveView | None = None  # what GET /api/v1/overview shows
    webhooks: WebhookDispatcher | None = None  # None: no webhooks on this node
    certificates: Certificates | None = None  # None: no CA on this node
    sites: Sites | None = None
    balancer: LoadBalancer | None = None
    oscp: FlexibilityProvider | None = None


#: How a route handler asks for the context (Litestar injects it by name).
Ctx = NamedDependency[ApiContext]
