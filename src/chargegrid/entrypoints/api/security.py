"""``POST /api/v1/stations/{id}/security-profile``: move a connected station up a security profile
through the station itself (:mod:`chargegrid.service.security` gives the sequence per version).

Statuses: 200 every step accepted and the new profile kept; 404 no such station; 409 the station
is not connected, a prerequisite is missing or the station declined a step (``extra.steps``: what
it answered); 422 a payload the version's schema refuses; 502 / 504 as for any command.

``POST /api/v1/stations/{id}/password``: a generated Basic-auth password, sent to the station
first when it is connected (:mod:`chargegrid.service.station_passwords`). Statuses: 201 stored
(the password is in the answer, and nowhere else); 404 no such station; 409 the station declined
it (``extra.steps``); 422 / 502 / 504 as for any command. In every error the old password stands;
after a 504 or a 502 for a lost connection the new one is accepted too (``password_pending`` on
the station) until the station connects with it, since it may have taken it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED

from chargegrid.entrypoints.api.auth import ADMIN, OPERATOR
from chargegrid.entrypoints.api.commands import connected_version, http_errors
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import ApiError, CommandOut, StationOut
from chargegrid.service.commands import CommandResult
from chargegrid.service.security import ProfileChange, ProfileChangeRefused
from chargegrid.service.station_passwords import PasswordRefused, StationPasswords

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
    if any(not 0 <= slot <= 99 for slot in data.fallback_slots):
        raise ClientException("fallback_slots are configuration slots, 0 to 99", status_code=422)
    version = await connected_version(ctx, station_id)
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


class PasswordOut(msgspec.Struct):
    """The station's new Basic-auth password, shown here once and never again. ``sent``: the
    station was connected and accepted it (``steps``: what it answered); otherwise it is stored
    only, for the operator to configure at the station. ``pending``: the station takes it at its
    next start (RebootRequired), so its old password is accepted until it connects with this."""

    station_id: str
    password: str
    sent: bool
    steps: list[CommandOut]
    pending: bool


@post(
    "/{station_id:str}/password",
    summary="Give a station a generated Basic-auth password (sent to it first when connected: "
    "1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables BasicAuthPassword)",
    opt=OPERATOR,
    status_code=HTTP_201_CREATED,
    response_headers=[ResponseHeader(name="Cache-Control", value="no-store")],
)
async def renew_station_password(ctx: Ctx, station_id: FromPath[str]) -> PasswordOut:
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    with http_errors():
        try:
            new = await StationPasswords(ctx.ocpp, ctx.commands).renew(station_id)
        except PasswordRefused as exc:
            steps = [msgspec.to_builtins(_out(exc.step))]
            raise ClientException(str(exc), status_code=409, extra={"steps": steps}) from exc
    steps = [_out(new.step)] if new.step is not None else []
    return PasswordOut(station_id, new.password, new.sent, steps, new.pending)


class CertificateOut(msgspec.Struct):
    """A certificate chargegrid's CA issued to the station; ``status``: issued, installed (the
    station accepted it), rejected (it refused it), undelivered."""

    id: int
    use: str
    serial: str
    subject: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    status: str
    chain_pem: str


class CaOut(msgspec.Struct):
    """The CPO CA's certificate: the root to install on stations (InstallCertificate
    CSMSRootCertificate / V2GRootCertificate, 1.6 CentralSystemRootCertificate) and to give
    ``--tls-client-ca`` for security profile 3."""

    certificate: str


@get("/{station_id:str}/certificates", summary="Certificates issued to the station, newest first")
async def station_certificates(ctx: Ctx, station_id: FromPath[str]) -> list[CertificateOut]:
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    if ctx.certificates is None:
        return []
    return [
        CertificateOut(
            c.id or 0,
            c.use.value,
            c.serial,
            c.subject,
            c.not_before,
            c.not_after,
            c.issued_at,
            c.status,
            c.chain_pem,
        )
        for c in await ctx.certificates.store.of_station(station_id)
    ]


@get(
    "/certificate-authority",
    summary="The CPO CA's certificate (made on first use)",
    responses={404: ResponseSpec(ApiError, description="This node has no CA")},
)
async def certificate_authority(ctx: Ctx) -> CaOut:
    ca = None if ctx.certificates is None else ctx.certificates.ca
    if ca is None:
        raise NotFoundException("this node has no certificate authority")
    return CaOut(await asyncio.to_thread(ca.root_pem))


def _out(step: CommandResult) -> CommandOut:
    return CommandOut(step.action, step.request, step.response)


handlers = [raise_security_profile, renew_station_password, station_certificates]
