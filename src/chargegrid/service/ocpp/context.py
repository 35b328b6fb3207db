"""What an OCPP handler knows about the connection it serves, and the router type."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from chargegrid.domain.model import Registration
from chargegrid.protocols.ocppj.errors import OcppError


class CallFailedError(Exception):
    """A call to a station did not get a valid answer: CALLERROR, timeout, or disconnect."""

    def __init__(self, error: OcppError, *, timed_out: bool = False, error_code: str = "") -> None:
        super().__init__(error.description or error.kind.value)
        self.error = error
        self.timed_out = timed_out
        self.error_code = error_code


class StationNotConnectedError(Exception):
    """The station has no live connection to this node."""


class StationLink(Protocol):
    """A live connection to one station, able to send it CSMS-initiated calls."""

    station_id: str
    ocpp_version: str

    async def call(self, request: msgspec.Struct, timeout: float | None = None) -> msgspec.Struct:
        """Send ``request``; return the station's response or raise ``CallFailedError``."""
        ...


class StationLinks(Protocol):
    """The stations connected to this node."""

    def get(self, station_id: str) -> StationLink | None: ...


@dataclass(slots=True)
class StationContext:
    """Per-connection state a handler may read and update."""

    station_id: str
    ocpp_version: str
    registration: Registration | None = None
    # cluster mode: done once the station's state is read on this node (service.cluster.node)
    ready: asyncio.Future[None] | None = None


Handler = Callable[[StationContext, Any], Awaitable[msgspec.Struct]]
Router = Mapping[str, Handler]
