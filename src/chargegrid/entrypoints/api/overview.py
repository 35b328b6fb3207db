"""What the operator dashboard asks of the node besides the resources: who the caller is
(``GET /api/v1/me``) and the network at a glance (``GET /api/v1/overview``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

from chargegrid.domain.access import Role
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import ApiError, storable
from chargegrid.service.access import digest

ENV_ADMIN = "admin (CHARGEGRID_ADMIN_TOKEN)"


class Me(msgspec.Struct):
    """The caller's API token: its role and its name."""

    role: str
    name: str


class OverviewOut(msgspec.Struct):
    """The network now. Power in W and energy in Wh are decimal strings (exact)."""

    at: datetime
    stations: int
    stations_by_registration: dict[str, int]
    stations_online: int
    stations_offline: int
    connectors_by_status: dict[str, int]
    active_transactions: int
    power_w: str
    energy_today_wh: str
    energy_since: datetime


@get("/me", summary="The caller's role and token name")
async def me(ctx: Ctx, request: Request[Role, Any, Any]) -> Me:
    role: Role = request.user
    secret = request.headers.get("authorization", "").partition(" ")[2].strip()
    token = await ctx.store.find_api_token(digest(secret))
    # The authentication middleware let the caller in: a token the store does not know is
    # the environment's admin token.
    return Me(role.value, token.name if token is not None else ENV_ADMIN)


@get(
    "/overview",
    summary="Stations, connectors, transactions, power now and energy today",
    description=(
        "Counts of stations by registration and connection, of connectors by their latest "
        "status (connector 0, the station itself, not counted), the active transactions, the "
        "sum of their latest active import power, and the energy of the transactions started "
        "since `since` (default: midnight UTC today)."
    ),
    responses={
        503: ResponseSpec(
            ApiError, description="No live view on this node", generate_examples=False
        )
    },
)
async def overview(
    ctx: Ctx,
    since: Annotated[
        str | None,
        QueryParameter(format="date-time", description="start of 'today' (RFC 3339, with offset)"),
    ] = None,
) -> OverviewOut:
    if ctx.live is None:
        raise HTTPException("this node keeps no live view", status_code=503)
    start = _time("since", since) if since is not None else None
    view = await ctx.live.overview(lambda s: ctx.connections.connected(s) is not None, start)
    return OverviewOut(
        at=view.at,
        stations=view.stations,
        stations_by_registration=view.stations_by_registration,
        stations_online=view.stations_online,
        stations_offline=view.stations_offline,
        connectors_by_status=view.connectors_by_status,
        active_transactions=view.active_transactions,
        power_w=str(view.power_w),
        energy_today_wh=str(view.energy_today_wh),
        energy_since=view.energy_since,
    )


def _time(name: str, text: str) -> datetime:
    try:
        value = msgspec.convert(text, datetime)  # strict: RFC 3339 text only
    except msgspec.ValidationError as exc:
        raise ValidationException(f"{name} is not an RFC 3339 time: {exc}") from exc
    if value.tzinfo is None:
        raise ValidationException(f"{name} needs a UTC offset (e.g. 2026-03-01T00:00:00+01:00)")
    return storable(value)  # year 1 at +01:00 has no UTC equivalent: the nearest that has


handlers = [me, overview]
