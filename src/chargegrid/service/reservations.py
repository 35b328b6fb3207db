"""Reservations an operator makes: OCPP 1.6 Reservation profile (ReserveNow 5.13,
CancelReservation 5.1) and OCPP 2.0.1 H01 / H02, the same for both versions.

The central system picks the reservation id (both versions leave it to the CSMS), sends
ReserveNow in the station's version and keeps the reservation once the station accepts it (see
:mod:`.ocpp.effects`). A station's other answers (Occupied, Faulted, Unavailable, Rejected) are
returned and nothing is kept. The station later reports an expired or removed reservation
(2.0.1 ReservationStatusUpdate) and the transaction that uses it carries its id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from chargegrid.domain.model import Reservation
from chargegrid.protocols.ocppj.times import utc
from chargegrid.service.commands import CommandResult, Commands
from chargegrid.service.ports import ListQuery, Store


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    station_id: str
    id_token: str
    expires_at: datetime
    connector_id: int = 0  # 1.6 connector / 2.0.1 EVSE id; 0: any
    connector_type: str | None = None  # 2.0.1 only
    token_type: str = "ISO14443"  # noqa: S105 - 2.0.1 IdTokenType, not a secret


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    """The station's status; ``reservation`` is what is kept (None unless Accepted)."""

    status: str
    reservation: Reservation | None
    answer: CommandResult


class Reservations:
    def __init__(self, commands: Commands, store: Store) -> None:
        self.commands = commands
        self.store = store
        self._allocating = asyncio.Lock()
        self._last_id = 0

    async def reserve(
        self, ocpp_version: str, request: ReservationRequest, timeout: float | None = None
    ) -> ReservationOutcome:
        """Raises the errors of :meth:`Commands.send` (offline, invalid, timeout, CALLERROR)."""
        reservation_id = await self._next_id()
        stamp = utc(request.expires_at).isoformat().replace("+00:00", "Z")
        if ocpp_version == "1.6":
            payload: dict[str, object] = {
                "connectorId": request.connector_id,
                "expiryDate": stamp,
                "idTag": request.id_token,
                "reservationId": reservation_id,
            }
        else:
            payload = {
                "id": reservation_id,
                "expiryDateTime": stamp,
                "idToken": {"idToken": request.id_token, "type": request.token_type},
            }
            if request.connector_id:
                payload["evseId"] = request.connector_id
            if request.connector_type:
                payload["connectorType"] = request.connector_type
        answer = await self.commands.send(request.station_id, "ReserveNow", payload, timeout)
        status = str(answer.response.get("status", ""))
        kept = await self.store.get_reservation(reservation_id) if status == "Accepted" else None
        return ReservationOutcome(status, kept, answer)

    async def cancel(
        self, reservation: Reservation, timeout: float | None = None
    ) -> ReservationOutcome:
        answer = await self.commands.send(
            reservation.station_id,
            "CancelReservation",
            {"reservationId": reservation.id},
            timeout,
        )
        status = str(answer.response.get("status", ""))
        return ReservationOutcome(status, await self.store.get_reservation(reservation.id), answer)

    async def _next_id(self) -> int:
        """One more than any id kept (or handed out by this process), under a lock."""
        async with self._allocating:
            latest, _ = await self.store.page_reservations(
                ListQuery(sort="id", descending=True, limit=1)
            )
            self._last_id = max(self._last_id, latest[0].id if latest else 0) + 1
            return self._last_id
