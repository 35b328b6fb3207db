"""Domain events: facts the central system has committed, for whoever listens.

Each event is a frozen struct tagged by its ``type`` (``station.online``, ``transaction.started``,
...), which is also its name on the event stream and in webhook deliveries. An event is
published only once what it tells is stored (see :mod:`chargegrid.service.events`), so a listener
that reads the store after an event finds what the event announced.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import get_args

import msgspec


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """What every event has: the station it is about and when the central system saw it."""

    station_id: str
    at: datetime


class StationOnline(DomainEvent, frozen=True, kw_only=True, tag="station.online"):
    """The station's WebSocket connected (a known station; OCPP-J section 3)."""


class StationOffline(DomainEvent, frozen=True, kw_only=True, tag="station.offline"):
    """The station's WebSocket closed and no newer connection replaced it."""


class StationBooted(DomainEvent, frozen=True, kw_only=True, tag="station.booted"):
    """BootNotification (OCPP 1.6 4.2 / 2.0.1 B01) and how it was answered."""

    registration: str
    vendor: str
    model: str
    firmware_version: str | None = None
    reason: str | None = None


class StationRegistration(DomainEvent, frozen=True, kw_only=True, tag="station.registration"):
    """An operator accepted, rejected or set pending a station."""

    registration: str


class StatusChanged(DomainEvent, frozen=True, kw_only=True, tag="connector.status"):
    """StatusNotification (OCPP 1.6 4.9 / 2.0.1 G01); connector 0 / EVSE 0 is the station."""

    evse_id: int
    connector_id: int
    status: str
    error_code: str | None = None
    info: str | None = None


class TransactionEvent(DomainEvent, frozen=True, kw_only=True):
    """What the three transaction events share."""

    transaction_id: int
    station_tx_id: str
    evse_id: int
    connector_id: int
    id_token: str | None
    started_at: datetime
    energy_wh: Decimal | None = None  # energy so far (ended: the whole session's)


class TransactionStarted(TransactionEvent, frozen=True, kw_only=True, tag="transaction.started"):
    """A new transaction (1.6 StartTransaction / 2.0.1 TransactionEvent Started)."""

    meter_start_wh: Decimal | None = None


class TransactionUpdated(TransactionEvent, frozen=True, kw_only=True, tag="transaction.updated"):
    """Meter values of a running transaction; ``power_w`` is the latest active import power."""

    power_w: Decimal | None = None
    meter_wh: Decimal | None = None


class TransactionEnded(TransactionEvent, frozen=True, kw_only=True, tag="transaction.ended"):
    """The transaction stopped (1.6 StopTransaction / 2.0.1 TransactionEvent Ended)."""

    stopped_at: datetime
    reason: str | None = None


class ChargingNeeds(DomainEvent, frozen=True, kw_only=True, tag="transaction.needs"):
    """What a car on an EVSE needs (2.0.1 NotifyEVChargingNeeds, K15, from ISO 15118; or a
    driver's or operator's word through the API): the energy still wanted by a departure time,
    and the current range it accepts (A per phase). What is not known is None."""

    evse_id: int
    energy_wh: float | None = None
    departure: datetime | None = None
    min_current_a: float | None = None
    max_current_a: float | None = None
    phases: int | None = None
    priority: int | None = None
    source: str = "ev"  # "ev" (ISO 15118 through the station) or "api"


class SecurityEventReported(DomainEvent, frozen=True, kw_only=True, tag="security.event"):
    """SecurityEventNotification (1.6 security whitepaper 4.6 / 2.0.1 A04)."""

    kind: str
    tech_info: str | None = None
    critical: bool = False  # one the specs mark critical (domain.security)


AnyEvent = (
    StationOnline
    | StationOffline
    | StationBooted
    | StationRegistration
    | StatusChanged
    | TransactionStarted
    | TransactionUpdated
    | TransactionEnded
    | ChargingNeeds
    | SecurityEventReported
)

#: Every event type, as named on the stream and in webhook subscriptions.
EVENT_TYPES: tuple[str, ...] = tuple(str(kind.__struct_config__.tag) for kind in get_args(AnyEvent))
