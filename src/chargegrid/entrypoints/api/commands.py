"""``POST /api/v1/stations/{id}/commands/{operation}``: any CSMS-initiated operation of the
station's OCPP version, with the OCPP request payload as the JSON body (the version's own field
names). The answer is the station's response payload; every outcome is also recorded.

Statuses: 200 answered (whatever the station decided, e.g. ``{"status": "Rejected"}``), 404 no
such station, 409 not connected, 422 the payload fails the version's schema (``extra.errors``),
502 the station answered with a CALLERROR, 504 no answer in time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from litestar import get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromPath, QueryParameter

from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import CommandOut
from chargegrid.service.commands import (
    CommandInvalidError,
    CommandRejectedError,
    CommandTimeoutError,
    StationOfflineError,
)

TIMEOUT_S = 30.0


@get("/{station_id:str}/operations", summary="The operations this station can be sent now")
async def operations(ctx: Ctx, station_id: FromPath[str]) -> list[str]:
    version = await connected_version(ctx, station_id)
    return ctx.commands.operations(version)


@post(
    "/{station_id:str}/commands/{operation:str}",
    summary="Send an operation to a station and return its answer",
    opt=OPERATOR,
    status_code=200,
)
async def send_command(
    ctx: Ctx,
    station_id: FromPath[str],
    operation: FromPath[str],
    data: Annotated[dict[str, Any], Body(description="the OCPP request payload")],
    timeout: Annotated[float, QueryParameter(gt=0, le=300, description="seconds")] = TIMEOUT_S,
) -> CommandOut:
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    with http_errors():  # not connected: StationOfflineError, so the attempt is recorded
        result = await ctx.commands.send(station_id, operation, data, timeout)
    return CommandOut(operation, result.request, result.response)


@contextmanager
def http_errors() -> Iterator[None]:
    """The errors of sending an operation, as the HTTP errors the API documents for them."""
    try:
        yield
    except StationOfflineError as exc:
        raise ClientException(str(exc), status_code=409) from exc
    except CommandInvalidError as exc:
        raise ClientException(str(exc), status_code=422, extra={"errors": exc.errors}) from exc
    except CommandTimeoutError as exc:
        raise HTTPException(str(exc), status_code=504) from exc
    except CommandRejectedError as exc:
        raise HTTPException(
            f"the station answered with a CALLERROR: {exc}",
            status_code=502,
            extra={"code": exc.code, "description": exc.description, "details": exc.details},
        ) from exc


async def connected_version(ctx: Ctx, station_id: FromPath[str]) -> str:
    """The OCPP version of the station's live connection: 404 no such station, 409 offline."""
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    version = ctx.connections.connected(station_id)
    if version is None:
        raise ClientException(f"station {station_id!r} is not connected", status_code=409)
    return version


handlers = [operations, send_command]
