"""Use cases of the central system, the same for every OCPP version.

The OCPP routers (:mod:`chargegrid.service.ocpp`) turn each version's messages into calls here and
the results back into that version's responses. Everything a station is told has been committed
through the :class:`~chargegrid.service.ports.Store` before it is told: a use case's awaited write
is committed when the await returns, or, inside the unit of work the OCPP service runs each
message in, before the answer is released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from msgspec.structs import replace

from chargegrid.domain import autocharge, events
from chargegrid.domain.authorization import authorize
from chargegrid.domain.boot_pacing import BootPacer
from chargegrid.domain.metering import energy_register_wh, power_w
from chargegrid.domain.model import (
    Authorization,
    MeterReading,
    Registration,
    SecurityEvent,
    Station,
    StationReport,
    StatusChange,
    Transaction,
    TransactionState,
    UnknownStationPolicy,
)
from chargegrid.domain.security import CRITICAL_SECURITY_EVENTS
from chargegrid.service.events import EventBus
from chargegrid.service.ports import Clock, NewTransaction, Store

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a BootNotification says, in either version."""

    station_id: str
    ocpp_version: str
    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BootDecision:
    registration: Registration
    interval_s: int


@dataclass(frozen=True, slots=True)
class Settings:
    """Policy the use cases follow."""

    unknown_stations: UnknownStationPolicy = UnknownStationPolicy.PENDING
    heartbeat_interval_s: int = 300
    pending_retry_s: int = 60
    # boots taken per second before the others are answered Pending (see BootPacer); 0: all
    boot_rate: float = 0.0


class CentralSystem:
    """The use cases. One instance per process, shared by all connections."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or Settings()
        self.events = events or EventBus()
        self.boot_pacer = BootPacer(self.settings.boot_rate)
        # whether the load balancer steers an EVSE (station id, EVSE id): bootstrap sets it
        self.steers: Callable[[str, int], bool] = lambda station_id, evse_id: False

    # --- provisioning (B01-B03 / 1.6 4.2) ---------------------------------------------------

    async def boot(self, info: BootInfo) -> BootDecision:
        now = self.clock.now()
        wait_s = self.boot_pacer.retry_after_s(info.station_id, now.timestamp())
        if wait_s:  # a boot storm: come back later, nothing read or written meanwhile
            log.debug("boot paced", station_id=info.station_id, retry_s=wait_s)
            return BootDecision(Registration.PENDING, wait_s)
        station = await self.station_or_new(info.station_id)
        station.ocpp_version = info.ocpp_version
        station.vendor = info.vendor
        station.model = info.model
        station.serial_number = info.serial_number
        station.firmware_version = info.firmware_version
        station.boot_reason = info.reason
        station.online = True
        station.last_seen = now
        await self.store.save_station(station)
        await self.store.record_boot(info.station_id, info.reason, now)
        interval = (
            self.settings.heartbeat_interval_s
            if station.registration is Registration.ACCEPTED
            else self.settings.pending_retry_s
        )
        log.info("boot", station_id=info.station_id, registration=station.registration.value)
        self.events.publish(
            events.StationBooted(
                station_id=info.station_id,
                at=now,
                registration=station.registration.value,
                vendor=info.vendor,
                model=info.model,
                firmware_version=info.firmware_version,
                reason=info.reason,
            )
        )
        return BootDecision(station.registration, interval)

    async def station_or_new(self, station_id: str) -> Station:
        """The stored station, or a new one registered as the unknown-station policy says."""
        station = await self.store.get_station(station_id)
        if station is None:
            registration = {
                UnknownStationPolicy.ACCEPT: Registration.ACCEPTED,
                UnknownStationPolicy.PENDING: Registration.PENDING,
                UnknownStationPolicy.REJECT: Registration.REJECTED,
            }[self.settings.unknown_stations]
            station = Station(station_id, registration=registration)
        return station

    async def registration(self, station_id: str) -> Registration | None:
        station = await self.store.get_station(station_id)
        return station.registration if station is not None else None

    async def set_registration(self, station_id: str, registration: Registration) -> Station:
        """An operator accepts (or rejects) a station; creates it if unknown."""
        station = await self.store.get_station(station_id) or Station(station_id)
        station.registration = registration
        await self.store.save_station(station)
        self.events.publish(
            events.StationRegistration(
                station_id=station_id, at=self.clock.now(), registration=registration.value
            )
        )
        return station

    async def set_place(self, station_id: str, **place: float | str | None) -> Station:
        """Set what is given of ``latitude``, ``longitude`` and ``location``; None clears."""
        station = await self.store.get_station(station_id) or Station(station_id)
        station = replace(station, **place)
        await self.store.save_station(station)
        return station

    async def connected(self, station_id: str) -> None:
        now = self.clock.now()
        await self.store.touch_station(station_id, now, online=True)
        self.events.publish(events.StationOnline(station_id=station_id, at=now))

    async def disconnected(self, station_id: str) -> None:
        now = self.clock.now()
        await self.store.touch_station(station_id, now, online=False)
        self.events.publish(events.StationOffline(station_id=station_id, at=now))

    async def heartbeat(self, station_id: str) -> None:
        await self.store.touch_station(station_id, self.clock.now(), online=True)

    async def status(self, change: StatusChange) -> None:
        await self.store.record_status(change)
        self.events.publish(
            events.StatusChanged(
                station_id=change.station_id,
                at=change.timestamp,
                evse_id=change.evse_id,
                connector_id=change.connector_id,
                status=change.status,
                error_code=change.error_code,
                info=change.info,
            )
        )

    # --- authorization (C01 / 1.6 5.2) ------------------------------------------------------

    async def authorize(self, token_value: str, *, own_transaction: bool = False) -> Authorization:
        """``own_transaction``: the token is presented within the transaction it runs (a stop,
        a 2.0.1 TransactionEvent), so that transaction does not make it ConcurrentTx. A vehicle
        MAC (``VID:...``, Autocharge) is looked up in its canonical form."""
        token_value = autocharge.canonical(token_value)
        token = await self.store.get_token(token_value)
        active = (
            token is not None
            and not own_transaction
            and await self.store.has_active_transaction(token_value)
        )
        return authorize(token, self.clock.now(), in_active_transaction=active)

    # --- transactions (E01-E15 / 1.6 5.16, 5.17, 5.10) ----------------------------------------

    async def start_transaction(
        self, new: NewTransaction
    ) -> tuple[Transaction, Authorization | None]:
        """Record a transaction the station started; say what we think of its token.

        A resent start (same station, connector, time, token and meter) gets the first one's id.
        """
        if new.id_token:
            new = replace(new, id_token=autocharge.canonical(new.id_token))
        auth = await self.authorize(new.id_token) if new.id_token else None
        existing = await self.store.find_same_start(new)
        if existing is not None:
            return existing, auth
        tx = await self.store.start_transaction(new)
        log.info("transaction started", station_id=new.station_id, transaction_id=tx.id)
        if new.reservation_id is not None:  # 1.6 5.13 / 2.0.1 H01.FR.16: the reservation ends
            reservation = await self.store.get_reservation(new.reservation_id)
            if reservation is not None and reservation.station_id == new.station_id:
                await self.store.save_reservation(replace(reservation, status="Used"))
        self.events.publish(
            events.TransactionStarted(
                **_tx_fields(tx, tx.started_at), meter_start_wh=tx.meter_start_wh
            )
        )
        return tx, auth

    async def find_transaction(self, station_id: str, station_tx_id: str) -> Transaction | None:
        return await self.store.find_transaction(station_id, station_tx_id)

    async def get_transaction(self, transaction_id: int) -> Transaction | None:
        return await self.store.get_transaction(transaction_id)

    async def meter_values(
        self,
        station_id: str,
        tx: Transaction | None,
        evse_id: int,
        connector_id: int,
        readings: Sequence[MeterReading],
    ) -> None:
        if not readings:
            return
        await self.store.record_meter_values(
            station_id, tx.id if tx else None, evse_id, connector_id, readings
        )
        latest = energy_register_wh(readings)
        if tx is not None and latest is not None and latest != tx.last_meter_wh:
            tx.last_meter_wh = latest
            await self.store.update_transaction(tx)
        if tx is not None:
            self.events.publish(
                events.TransactionUpdated(
                    **_tx_fields(tx, max(r.timestamp for r in readings)),
                    power_w=power_w(readings),
                    meter_wh=latest,
                )
            )

    async def save_transaction(self, tx: Transaction) -> None:
        await self.store.update_transaction(tx)

    async def stop_transaction(
        self,
        tx: Transaction,
        *,
        stopped_at: datetime,
        meter_stop_wh: Decimal | None,
        reason: str | None,
    ) -> Transaction:
        if tx.state is TransactionState.ENDED:
            return tx
        ended = replace(
            tx,
            state=TransactionState.ENDED,
            stopped_at=stopped_at,
            meter_stop_wh=meter_stop_wh if meter_stop_wh is not None else tx.last_meter_wh,
            stop_reason=reason,
        )
        await self.store.update_transaction(ended)
        log.info("transaction ended", station_id=tx.station_id, transaction_id=tx.id)
        self.events.publish(
            events.TransactionEnded(
                **_tx_fields(ended, self.clock.now()), stopped_at=stopped_at, reason=reason
            )
        )
        return ended

    # --- what stations report (firmware, logs, diagnostics, security events) ----------------

    async def report(
        self, station_id: str, topic: str, status: str, request_id: int | None = None
    ) -> None:
        await self.store.record_report(
            StationReport(station_id, topic, status, request_id, self.clock.now())
        )

    async def security_event(
        self, station_id: str, kind: str, at: datetime | None, tech_info: str | None
    ) -> None:
        event = SecurityEvent(station_id, kind, at or self.clock.now(), tech_info)
        await self.store.record_security_event(event)
        critical = kind in CRITICAL_SECURITY_EVENTS
        if critical:
            log.warning("critical security event", station_id=station_id, kind=kind)
        self.events.publish(
            events.SecurityEventReported(
                station_id=station_id,
                at=event.timestamp,
                kind=kind,
                tech_info=tech_info,
                critical=critical,
            )
        )


def _tx_fields(tx: Transaction, at: datetime) -> dict[str, Any]:
    """What every transaction event says of ``tx``; energy so far from its meter readings."""
    end = tx.meter_stop_wh if tx.state is TransactionState.ENDED else tx.last_meter_wh
    energy = end - tx.meter_start_wh if end is not None and tx.meter_start_wh is not None else None
    return {
        "station_id": tx.station_id,
        "at": at,
        "transaction_id": tx.id,
        "station_tx_id": tx.station_tx_id,
        "evse_id": tx.evse_id,
        "connector_id": tx.connector_id,
        "id_token": tx.id_token,
        "started_at": tx.started_at,
        "energy_wh": energy,
    }
