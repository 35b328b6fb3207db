"""What the API's handlers reach: the node's services, handed to them by dependency injection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from litestar.di import NamedDependency
from prometheus_client import CollectorRegistry

from chargegrid.service.access import AccessControl
from chargegrid.service.central import CentralSystem
from chargegrid.service.commands import Commands
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.ports import Store


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
    metrics: CollectorRegistry | None = None  # what GET /metrics shows


#: How a route handler asks for the context (Litestar injects it by name).
Ctx = NamedDependency[ApiContext]
