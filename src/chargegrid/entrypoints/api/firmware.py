"""Firmware updates: ``POST /api/v1/stations/{id}/firmware`` starts one (signed: 2.0.1
UpdateFirmware, 1.6 SignedUpdateFirmware; unsigned 1.6: UpdateFirmware), ``GET`` lists them
with where each stands (:mod:`chargegrid.service.firmware`).

Statuses of the POST: 200 the station answered (``status``: Accepted, Rejected,
AcceptedCanceled, InvalidCertificate, RevokedCertificate; 1.6 UpdateFirmware answers nothing, so
Accepted); 404 no such station; 409 not connected; 422 the certificate or signature is unusable
or the payload fails the version's schema; 502 / 504 as for any command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody

from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.commands import connected_version, http_errors
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import NO_NUL
from chargegrid.service.firmware import FirmwareRequest, FirmwareRequestInvalid

Location = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=NO_NUL)]


class FirmwareIn(msgspec.Struct, forbid_unknown_fields=True):
    location: Location
    retrieve_at: Annotated[datetime, msgspec.Meta(tz=True)]
    install_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    # bounds checked by the handler (422): Litestar leaves a minimum of 0 out of a union's schema
    retries: int | None = None  # 0-100
    retry_interval: int | None = None  # seconds, 0-86400
    signing_certificate: Annotated[str, msgspec.Meta(max_length=5500)] | None = None
    signature: Annotated[str, msgspec.Meta(max_length=800)] | None = None


class FirmwareStarted(msgspec.Struct):
    request_id: int | None
    operation: str
    status: str
    response: dict[str, Any]


class FirmwareReportOut(msgspec.Struct):
    status: str
    at: datetime | None


class FirmwareUpdateOut(msgspec.Struct):
    request_id: int | None
    operation: str
    sent_at: datetime
    location: str | None
    answer: dict[str, Any] | None
    status: str
    ended: bool
    reports: list[FirmwareReportOut]


@post(
    "/{station_id:str}/firmware",
    summary="Update a station's firmware (signed where its version allows)",
    opt=OPERATOR,
    status_code=200,
)
async def update_firmware(
    ctx: Ctx, station_id: FromPath[str], data: JSONBody[FirmwareIn]
) -> FirmwareStarted:
    for name, value, most in (
        ("retries", data.retries, 100),
        ("retry_interval", data.retry_interval, 86400),
    ):
        if value is not None and not 0 <= value <= most:
            raise ClientException(f"{name} must be 0 to {most}", status_code=422)
    version = await connected_version(ctx, station_id)
    request = FirmwareRequest(
        station_id,
        data.location,
        data.retrieve_at,
        install_at=data.install_at,
        retries=data.retries,
        retry_interval_s=data.retry_interval,
        signing_certificate=data.signing_certificate,
        signature=data.signature,
    )
    with http_errors():
        try:
            request_id, answer = await ctx.firmware.update(version, request)
        except FirmwareRequestInvalid as exc:
            raise ClientException(str(exc), status_code=422) from exc
    status = str(answer.response.get("status", "Accepted"))
    return FirmwareStarted(request_id, answer.action, status, answer.response)


@get("/{station_id:str}/firmware", summary="The station's firmware updates, newest first")
async def firmware_updates(ctx: Ctx, station_id: FromPath[str]) -> list[FirmwareUpdateOut]:
    if await ctx.store.get_station(station_id) is None:
        raise NotFoundException(f"no station {station_id!r}")
    out = []
    for update in await ctx.firmware.history(station_id):
        image = update.sent.request.get("firmware")
        location = (
            image.get("location")
            if isinstance(image, dict)
            else update.sent.request.get("location")
        )
        out.append(
            FirmwareUpdateOut(
                update.request_id,
                update.sent.action,
                update.sent.sent_at,
                location if isinstance(location, str) else None,
                update.sent.response,
                update.status,
                update.ended,
                [FirmwareReportOut(r.status, r.timestamp) for r in update.reports],
            )
        )
    return out


handlers = [update_firmware, firmware_updates]
