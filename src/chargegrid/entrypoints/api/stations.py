"""Stations: register, accept or reject, update, delete, list with live status, and what each
has told us (connectors, status history, configuration, security events, recorded commands)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from chargegrid.domain.access import Role
from chargegrid.domain.model import Registration, Station
from chargegrid.domain.passwords import PasswordRuleError, check_rules
from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import (
    ConnectorOut,
    StationDetail,
    StationId,
    StationIn,
    StationOut,
    StationPatch,
)
from chargegrid.protocols.ocppj.validation import Deviation
from chargegrid.service.ports import Filter

Limit = Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)]


async def _station(ctx: Ctx, station_id: FromPath[str]) -> Station:
    station = await ctx.store.get_station(station_id)
    if station is None:
        raise NotFoundException(f"no station {station_id!r}")
    return station


def _out(ctx: Ctx, station: Station) -> StationOut:
    return StationOut.of(station, ctx.connections.connected(station.id) is not None)


@get("/", summary="List stations")
async def list_stations(
    ctx: Ctx,
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    sort: Annotated[Literal["id", "-id"], QueryParameter(description="id or -id")] = "id",
    registration: Annotated[
        str | None, QueryParameter(description="Accepted, Pending, Rejected")
    ] = None,
    online: Annotated[
        bool | None, QueryParameter(description="online by the last heartbeat")
    ] = None,
    ocpp_version: Annotated[str | None, QueryParameter()] = None,
    vendor: Annotated[str | None, QueryParameter()] = None,
) -> paging.Page[StationOut]:
    filters = [
        Filter(name, "eq", value)
        for name, value in (
            ("registration", registration),
            ("online", online),
            ("ocpp_version", ocpp_version),
            ("vendor", vendor),
        )
        if value is not None
    ]
    q = paging.query(sort=sort, allowed={"id": str}, limit=limit, cursor=cursor, filters=filters)
    found, more = await ctx.store.page_stations(q)
    return paging.page(found, more, q, lambda s: s.id, lambda s: _out(ctx, s))


@post("/", summary="Register a station", opt=OPERATOR, status_code=HTTP_201_CREATED)
async def register_station(ctx: Ctx, data: JSONBody[StationIn]) -> StationOut:
    if await ctx.store.get_station(data.id) is not None:
        raise ClientException(f"station {data.id!r} exists", status_code=409)
    _check_password(data.password)  # before anything is stored: a refusal changes nothing
    station = await ctx.central.set_registration(data.id, Registration(data.registration))
    await _apply(
        ctx,
        station.id,
        password=data.password,
        lenient=data.lenient,
        security_profile=data.security_profile,
    )
    if (data.latitude, data.longitude, data.location) != (None, None, None):
        await ctx.central.set_place(
            data.id, latitude=data.latitude, longitude=data.longitude, location=data.location
        )
    return _out(ctx, await _station(ctx, data.id))


@get("/{station_id:str}", summary="A station with its connectors and active transactions")
async def get_station(ctx: Ctx, station_id: FromPath[str]) -> StationDetail:
    station = await _station(ctx, station_id)
    connectors = await ctx.store.connector_statuses(station_id)
    active = await ctx.store.active_transactions(station_id)
    return StationDetail(
        _out(ctx, station), [ConnectorOut.of(c) for c in connectors], [t.id for t in active]
    )


@patch(
    "/{station_id:str}",
    summary="Change a station's registration, password, security profile, lenient mode or place",
    opt=OPERATOR,
)
async def update_station(
    ctx: Ctx,
    station_id: FromPath[str],
    data: JSONBody[StationPatch],
    request: Request[Any, Any, Any],
) -> StationOut:
    before = await _station(ctx, station_id)
    _check_password(data.password)  # before anything is stored: a refusal changes nothing
    # Lowering a station's security (its profile, or its password) is an admin's decision.
    lowers = (
        data.security_profile is not msgspec.UNSET
        and data.security_profile < before.security_profile
    ) or (data.password is None and before.password_hash is not None)
    if lowers and not request.user.allows(Role.ADMIN):
        raise PermissionDeniedException("lowering a station's security needs the admin role")
    if data.registration is not msgspec.UNSET:
        await ctx.central.set_registration(station_id, Registration(data.registration))
    await _apply(
        ctx,
        station_id,
        password=data.password,
        lenient=data.lenient,
        security_profile=data.security_profile,
    )
    place = {
        name: value
        for name, value in (
            ("latitude", data.latitude),
            ("longitude", data.longitude),
            ("location", data.location),
        )
        if value is not msgspec.UNSET
    }
    if place:
        await ctx.central.set_place(station_id, **place)
    if (
        data.security_profile is not msgspec.UNSET
        and data.security_profile > before.security_profile
    ):  # a connection made under the old profile may not go on under the new one
        ctx.connections.disconnect(station_id, "security profile raised")
    return _out(ctx, await _station(ctx, station_id))


@post(
    "/{station_id:str}/accept", summary="Accept a (pending) station", opt=OPERATOR, status_code=200
)
async def accept_station(ctx: Ctx, station_id: FromPath[str]) -> StationOut:
    await _station(ctx, station_id)
    return _out(ctx, await ctx.central.set_registration(station_id, Registration.ACCEPTED))


@post("/{station_id:str}/reject", summary="Reject a station", opt=OPERATOR, status_code=200)
async def reject_station(ctx: Ctx, station_id: FromPath[str]) -> StationOut:
    await _station(ctx, station_id)
    return _out(ctx, await ctx.central.set_registration(station_id, Registration.REJECTED))


@delete(
    "/{station_id:str}",
    summary="Forget a station and drop its connection (its history stays)",
    opt=OPERATOR,
    status_code=HTTP_204_NO_CONTENT,
)
async def delete_station(ctx: Ctx, station_id: FromPath[str]) -> None:
    if not await ctx.store.delete_station(station_id):
        raise NotFoundException(f"no station {station_id!r}")
    await ctx.ocpp.forget(station_id)
    ctx.connections.disconnect(station_id, "station deleted")


@get("/{station_id:str}/status-history", summary="Status changes, newest first")
async def status_history(
    ctx: Ctx, station_id: FromPath[str], limit: Limit = 100
) -> list[ConnectorOut]:
    await _station(ctx, station_id)
    return [ConnectorOut.of(c) for c in await ctx.store.status_history(station_id, limit)]


@get(
    "/{station_id:str}/configuration",
    summary="Configuration keys (1.6) and device-model variables (2.0.1)",
)
async def configuration(ctx: Ctx, station_id: FromPath[str]) -> list[dict[str, Any]]:
    await _station(ctx, station_id)
    return [msgspec.to_builtins(v) for v in await ctx.store.config(station_id)]


@get("/{station_id:str}/security-events", summary="Security events, newest first")
async def security_events(
    ctx: Ctx, station_id: FromPath[str], limit: Limit = 100
) -> list[dict[str, Any]]:
    await _station(ctx, station_id)
    return [msgspec.to_builtins(e) for e in await ctx.store.security_events(station_id, limit)]


@get(
    "/{station_id:str}/reports",
    summary="Firmware, log and diagnostics status reports, newest first",
)
async def reports(ctx: Ctx, station_id: FromPath[str], limit: Limit = 100) -> list[dict[str, Any]]:
    await _station(ctx, station_id)
    return [msgspec.to_builtins(r) for r in await ctx.store.reports(station_id, limit)]


@get(
    "/{station_id:str}/command-log",
    summary="Operations sent to the station and their outcomes, newest first",
)
async def command_log(
    ctx: Ctx, station_id: FromPath[str], limit: Limit = 100
) -> list[dict[str, Any]]:
    await _station(ctx, station_id)
    return [msgspec.to_builtins(c) for c in await ctx.store.commands(station_id, limit)]


def _check_password(password: str | msgspec.UnsetType | None) -> None:
    """422 unless the password (if one is given) follows the OCPP rules."""
    if isinstance(password, str):
        try:
            check_rules(password)
        except PasswordRuleError as exc:
            raise ClientException(str(exc), status_code=422) from exc


async def _apply(
    ctx: Ctx,
    station_id: FromPath[str],
    *,
    password: str | msgspec.UnsetType | None,
    lenient: Sequence[str] | msgspec.UnsetType,
    security_profile: int | msgspec.UnsetType,
) -> None:
    if password is not msgspec.UNSET:
        try:
            await ctx.ocpp.set_password(station_id, password)
        except PasswordRuleError as exc:
            raise ClientException(str(exc), status_code=422) from exc
    if lenient is not msgspec.UNSET:
        await ctx.ocpp.set_lenient(station_id, frozenset(Deviation(d) for d in lenient))
    if security_profile is not msgspec.UNSET:
        await ctx.ocpp.set_security_profile(station_id, security_profile)


_ = StationId  # the path parameter's rules are documented in StationIn

handlers = [
    list_stations,
    register_station,
    get_station,
    update_station,
    accept_station,
    reject_station,
    delete_station,
    status_history,
    configuration,
    security_events,
    reports,
    command_log,
]
