"""Reservations: list, read, make (ReserveNow) and cancel (CancelReservation), in the station's
OCPP version (see :mod:`chargegrid.service.reservations`).

Making one answers 201 with the kept reservation when the station accepts it, and 409 with the
station's status (``Occupied``, ``Faulted``, ``Unavailable``, ``Rejected``) when it does not;
a station that is not connected is 409 too, and the errors of a command apply (422, 502, 504).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import delete, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from chargegrid.domain.model import Reservation
from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.commands import TIMEOUT_S, http_errors
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import RecordId, StationId
from chargegrid.service.ports import Filter
from chargegrid.service.reservations import ReservationRequest

Limit = Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Timeout = Annotated[float, QueryParameter(gt=0, le=300, description="seconds")]


class ReservationOut(msgspec.Struct):
    id: int
    station_id: str
    connector_id: int | None  # 1.6 connector (0: any) / 2.0.1 EVSE (null: any)
    id_token: str
    expires_at: datetime
    connector_type: str | None
    status: str  # Accepted, Cancelled, Used, Expired, Removed

    @classmethod
    def of(cls, r: Reservation) -> ReservationOut:
        return cls(
            r.id, r.station_id, r.evse_id, r.id_token, r.expires_at, r.connector_type, r.status
        )


class ReservationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Reserve a connector (1.6) or EVSE (2.0.1) of a connected station for a driver's token."""

    station_id: StationId
    id_token: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
    expires_at: AwareDatetime
    connector_id: Annotated[
        int, msgspec.Meta(ge=0, le=2**31 - 1, description="1.6 connector / 2.0.1 EVSE; 0: any")
    ] = 0
    connector_type: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    token_type: Annotated[str, msgspec.Meta(max_length=20)] = "ISO14443"  # noqa: S105 - a type


class ReservationAnswer(msgspec.Struct):
    status: str
    reservation: ReservationOut | None


@get("/", summary="List reservations")
async def list_reservations(
    ctx: Ctx,
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    sort: Annotated[
        Literal["id", "-id", "expires_at", "-expires_at"], QueryParameter(description="sort")
    ] = "-id",
    station_id: Annotated[str | None, QueryParameter()] = None,
    id_token: Annotated[str | None, QueryParameter()] = None,
    status: Annotated[str | None, QueryParameter()] = None,
) -> paging.Page[ReservationOut]:
    filters = [
        Filter(name, "eq", value)
        for name, value in (("station_id", station_id), ("id_token", id_token), ("status", status))
        if value is not None
    ]
    q = paging.query(
        sort=sort,
        allowed={"id": int, "expires_at": datetime},
        limit=limit,
        cursor=cursor,
        filters=filters,
        key=int,
    )
    found, more = await ctx.store.page_reservations(q)
    return paging.page(found, more, q, lambda r: r.id, ReservationOut.of)


@get("/{reservation_id:int}", summary="A reservation")
async def get_reservation(ctx: Ctx, reservation_id: RecordId) -> ReservationOut:
    return ReservationOut.of(await _reservation(ctx, reservation_id))


@post("/", summary="Reserve (ReserveNow)", opt=OPERATOR, status_code=HTTP_201_CREATED)
async def make_reservation(
    ctx: Ctx, data: JSONBody[ReservationIn], timeout: Timeout = TIMEOUT_S
) -> ReservationAnswer:
    if await ctx.store.get_station(data.station_id) is None:
        raise NotFoundException(f"no station {data.station_id!r}")
    version = ctx.connections.connected(data.station_id)
    if version is None:
        raise ClientException(f"station {data.station_id!r} is not connected", status_code=409)
    if version == "1.6" and data.connector_type is not None:
        raise ClientException("connector_type is OCPP 2.0.1 only", status_code=422)
    request = ReservationRequest(
        data.station_id,
        data.id_token,
        data.expires_at,
        data.connector_id,
        data.connector_type,
        data.token_type,
    )
    with http_errors():
        outcome = await ctx.reservations.reserve(version, request, timeout)
    if outcome.reservation is None:
        raise ClientException(
            f"the station answered {outcome.status}", status_code=409, extra=outcome.answer.response
        )
    return ReservationAnswer(outcome.status, ReservationOut.of(outcome.reservation))


@delete(
    "/{reservation_id:int}",
    summary="Cancel a reservation (CancelReservation)",
    opt=OPERATOR,
    status_code=200,
)
async def cancel_reservation(
    ctx: Ctx, reservation_id: RecordId, timeout: Timeout = TIMEOUT_S
) -> ReservationAnswer:
    reservation = await _reservation(ctx, reservation_id)
    if reservation.status != "Accepted":
        raise ClientException(f"the reservation is {reservation.status}", status_code=409)
    with http_errors():
        outcome = await ctx.reservations.cancel(reservation, timeout)
    kept = outcome.reservation
    return ReservationAnswer(outcome.status, ReservationOut.of(kept) if kept else None)


async def _reservation(ctx: Ctx, reservation_id: int) -> Reservation:
    found = await ctx.store.get_reservation(reservation_id)
    if found is None:
        raise NotFoundException(f"no reservation {reservation_id}")
    return found


handlers = [list_reservations, get_reservation, make_reservation, cancel_reservation]
