"""``POST /api/v1/stations/{id}/security-profile``: move a connected station up a security profile
through the station itself (:mod:`chargegrid.service.security` gives the sequence per version).

Statuses: 200 every step accepted and the new profile kept; 404 no such station; 409 the station
is not connected, a prerequisite is missing or the station declined a step (``extra.steps``: what
it answered); 422 a payload the version's schema refuses; 502 / 504 as for any command.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody

from chargegrid.entrypoints.api.auth import ADMIN
from chargegrid.entrypoints.api.commands import http_errors
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import CommandOut, StationOut
from chargegrid.service.commands import CommandResult
from chargegrid.service.security import ProfileChange, ProfileChangeRefused

Slot = Annotated[int, msgspec.Meta(ge=0, le=99)]


class SecurityProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    """The profile to move to; the rest is OCPP 2.0.1's NetworkConnectionProfile (ignored for
    1.6, whose stations keep their URL)."""

    profile: Annotated[int, msgspec.Meta(ge=1, le=3)]
    csms_url: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    configuration_slot: Slot = 1
    # items checked by the handler (422): Litestar leaves an array's item bounds out of the schema
    fallback_slots: Annotated[list[int], msgspec.Meta(max_length=8)] = []
    message_timeout: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 30


class SecurityProfileOut(msgspec.Struct):
    station: StationOut
    steps: list[CommandOut]


@post(
    "/{station_id:str}/security-profile",
    summary="Move a connected station up a security profile (1.6 ChangeConfiguration "
    "SecurityProfile; 2.0.1 SetNetworkProfile, SetVariables, Reset)",
    opt=ADMIN,
    status_code=200,
)
async def raise_security_profile(
    ctx: Ctx, station_id: FromPath[str], data: JSONBody[SecurityProfileIn]
) -> SecurityProfileOut:
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    if any(not 0 <= slot <= 99 for slot in data.fallback_slots):
        raise ClientException("fallback_slots are configuration slots, 0 to 99", status_code=422)
    version = ctx.connections.connected(station_id)
    if version is None:
        raise ClientException(f"station {station_id} is not connected", status_code=409)
    change = ProfileChange(
        station_id,
        data.profile,
        csms_url=data.csms_url,
        configuration_slot=data.configuration_slot,
        fallback_slots=tuple(data.fallback_slots),
        message_timeout_s=data.message_timeout,
    )
    with http_errors():
        try:
            changed = await ctx.security_profiles.raise_profile(version, change)
        except ProfileChangeRefused as exc:
            steps = [msgspec.to_builtins(_out(s)) for s in exc.steps]
            raise ClientException(str(exc), status_code=409, extra={"steps": steps}) from exc
    station = await ctx.store.get_station(station_id)
    assert station is not None
    return SecurityProfileOut(
        StationOut.of(station, connected=True), [_out(s) for s in changed.steps]
    )


def _out(step: CommandResult) -> CommandOut:
    return CommandOut(step.action, step.request, step.response)


handlers = [raise_security_profile]
