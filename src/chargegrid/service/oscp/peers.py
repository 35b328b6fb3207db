"""A Capacity Provider as chargegrid keeps it: stored (:class:`OscpPeer`, :class:`PeerStore`) and
in memory (:class:`Live`: what is not stored), the :class:`Transport` messages go out by, and the
errors the operator sees."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from chargegrid.protocols import oscp
from chargegrid.service import oscp_signals as signals

_INTERMITTENT = oscp.MeasurementConfiguration.INTERMITTENT
_CONTINUOUS = oscp.MeasurementConfiguration.CONTINUOUS


class PeerError(Exception):
    """A peer the operator cannot add: the message says why."""


class NotDelivered(Exception):
    """A message the operator asked for that the peer did not take (unreachable, or answered
    other than 204): the message says which."""


@dataclass
class OscpPeer:
    id: str
    base_url: str  # the CP's 2.0 base URL
    token_out: str = field(repr=False)  # what chargegrid presents to the CP: a secret
    token_in_sha256: str  # what the CP presents to chargegrid, hashed
    groups: dict[str, str]  # group id -> "site" or "site/circuit"
    state: str  # "registering", "registered", "handshaken"
    heartbeat_interval_s: float | None
    updated_at: datetime


class PeerStore(Protocol):
    async def all(self) -> list[OscpPeer]: ...

    async def add(self, peer: OscpPeer) -> None: ...

    async def save(self, peer: OscpPeer) -> None: ...

    async def delete(self, peer_id: str) -> bool: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        """The HTTP status the peer answered; raises OSError when it cannot be reached."""
        ...

    async def close(self) -> None: ...


@dataclass
class Segments:
    """The segments of a forecast received so far."""

    forecast_type: oscp.CapacityForecastType
    count: int
    last_request_id: str
    blocks: list[oscp.ForecastedBlock]


@dataclass
class Live:
    """What is not stored: when each thing was last sent, energy counted since."""

    heartbeat_sent: datetime | None = None
    heartbeat_seen: datetime | None = None
    offline_mode_at: datetime | None = None
    measured_at: datetime | None = None
    counting_since: datetime | None = None
    configuration: tuple[oscp.MeasurementConfiguration, ...] = ()  # the CP's Handshake's
    energy_wh: dict[str, Decimal] = field(default_factory=dict)  # group -> since measured_at
    total_wh: dict[str, Decimal] = field(default_factory=dict)  # group -> since counting_since
    asset_wh: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (group, EVSE) ->
    asset_total_wh: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    requests: OrderedDict[tuple[str, str], bytes] = field(default_factory=OrderedDict)  # -> body
    segments: dict[str, Segments] = field(default_factory=dict)  # group ->
    forecasts: dict[str, list[signals.Held]] = field(default_factory=dict)  # group -> in use
    asked_at: dict[str, datetime] = field(default_factory=dict)  # group -> last adjustment
    asking: set[str] = field(default_factory=set)  # groups whose adjustment is being weighed
    reported: dict[str, set[oscp.ForecastedBlock]] = field(default_factory=dict)  # group ->

    @property
    def continuous(self) -> bool:
        return _CONTINUOUS in self.configuration and _INTERMITTENT not in self.configuration


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
